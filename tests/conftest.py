"""Shared test fixtures.

* ``sqlite_url`` / ``pg_url`` / ``db_url``: a migrated, throwaway database. ``db_url`` is
  parametrised over SQLite and PostgreSQL, so a test that takes it runs on both. The PostgreSQL
  copy is a fresh database on 127.0.0.1:5432, dropped afterwards; tests skip where it is down.
* ``shared_dir``: ``../shared`` beside the checkout (fixtures, benchmarks, CRDs); skips if absent.
* ``ray_session``: one local Ray instance for the whole test session (never on port 6379).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from incidentfox import throwaway_db
from incidentfox.throwaway_db import PG_ADMIN_DSN  # noqa: F401 - re-exported for tests

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

# Tests never time things: Hypothesis's per-example deadline would turn a loaded CI machine into
# failures, so it is off (and so is its "too slow" health check).
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

hypothesis_settings.register_profile("incidentfox", deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("incidentfox")

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# The suite points tools, LLM providers and MCP servers at local servers on 127.0.0.1, which the egress
# policy refuses by default: this session allow-lists that loopback address explicitly (before any
# Settings is built; Ray workers inherit it). tests/security builds policies without it.
os.environ.setdefault("INCIDENTFOX_EGRESS_ALLOW", "127.0.0.1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.hookimpl(tryfirst=True)   # before xdist's own hook, which turns the mark into the id's suffix
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Two xdist groups for `make test` (``-n 2 --dist loadgroup``): the tests that start a platform of
    their own in a subprocess (``@pytest.mark.platform``: the demo, ``incidentfox up``, the multi-node
    cluster) run on one worker while everything else runs in order on the other, with the one shared
    Ray instance. Those tests mostly wait on their subprocess, so the two overlap. Without xdist the
    marks are inert and the suite runs as one process."""
    for item in items:
        group = "platform" if item.get_closest_marker("platform") else "suite"
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(optionalhook=True)   # `-p no:xdist` runs the suite in one process
def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:
    """Refuse to run ungrouped (on the controller, as each worker reports its collection): pytest-xdist
    groups a test by appending ``@group`` to its node id, and where a pytest release keeps ids where
    xdist cannot append (pytest 9.2 with xdist 3.8) every group spreads over both workers. Two
    platforms and two browsers then start at once, and the suite runs four times slower until
    start-ups time out. Better one clear error than that."""
    if node.config.getvalue("dist") != "loadgroup":
        return
    ungrouped = [i for i in ids if "@" not in i.rpartition("]")[2]]
    if ungrouped:
        pytest.exit(f"pytest-xdist did not group {len(ungrouped)} tests (first: {ungrouped[0][:200]}): pytest "
                    f"{pytest.__version__} drops xdist's group suffix, so `--dist loadgroup` would run the "
                    "platform tests on both workers at once. Run `make install` (pyproject.toml pins a "
                    "pytest that keeps it) or `make test XDIST=`.", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED


@pytest.fixture(scope="session")
def fixtures_dir(shared_dir: Path) -> Path:
    d = shared_dir / "fixtures"
    if not d.is_dir():
        pytest.skip("../shared/fixtures is absent")
    return d


_PG_OK: bool | None = None


def pg_available() -> bool:
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = throwaway_db.pg_available()
    return _PG_OK


create_pg_database = throwaway_db.create_pg_database
drop_pg_database = throwaway_db.drop_pg_database


def _remove_session_cgroups(db_url: str) -> None:
    """Remove the idle session cgroups a test's sandbox sessions left under this database's platform
    tag: a host sweeps only its own platform's, and every test is a platform of its own."""
    from actors.sandbox.cgroups import cgroup_support
    from actors.sandbox.limits import platform_tag, sweep_cgroups

    sweep_cgroups(cgroup_support(), platform=platform_tag(db_url), keep=set())


def _forget_database(db_url: str) -> None:
    """A database a test is done with: its sandbox cgroups go, and this process's egress policy (which
    a test's in-process engine pointed at it) stops reloading from it and applying its allow-list."""
    _remove_session_cgroups(db_url)
    from incidentfox.egress.guard import process_policy

    if not process_policy.cache_info().currsize:    # never built in this process: nothing to forget
        return
    source = process_policy()
    from sqlalchemy.engine import make_url

    if source.database_url and make_url(source.database_url).database == make_url(db_url).database:  # any driver
        source.set_loader(None)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    from incidentfox.db import upgrade

    url = f"sqlite:///{tmp_path / 'test.db'}"
    upgrade(url)
    yield url
    _forget_database(url)


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not pg_available():
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    from incidentfox.db import upgrade

    name, url = create_pg_database()
    try:
        upgrade(url)
        yield url
        _forget_database(url)
    finally:
        drop_pg_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One Ray instance for the test session. Tests needing another cluster shape use a subprocess."""
    import ray

    if not ray.is_initialized():
        # `shared`: the custom resource shared teams' actors request (actors/engine/placement.py).
        # address="local": always a private instance, never a cluster someone else started here.
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 resources={"shared": 1000}, configure_logging=False, namespace="incidentfox-tests")
    yield
    ray.shutdown()


@pytest.fixture
def root() -> Iterator[Path]:
    """A sandbox root for one test (the ``test_sandbox_*`` files), removed afterwards."""
    from tests.sandbox_helpers import make_root, remove_root

    r = make_root()
    yield r
    remove_root(r)
