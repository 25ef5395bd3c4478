"""CLI: `incidentfox db upgrade` (also concurrently, on PostgreSQL) and `incidentfox config-service`
serving the API from INCIDENTFOX_DATABASE_URL and INCIDENTFOX_ADMIN_TOKEN in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app as cli_app
from incidentfox.db import make_sync_engine, upgrade
from incidentfox.ports import free_port
from incidentfox.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]


def _tables(url: str) -> set[str]:
    engine = make_sync_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_db_upgrade_command_is_idempotent(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("INCIDENTFOX_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        for _ in range(2):
            result = CliRunner().invoke(cli_app, ["db", "upgrade"])
            assert result.exit_code == 0, result.output
    finally:
        get_settings.cache_clear()
    assert {"orgs", "config_nodes", "config_versions", "api_tokens", "routing_claims", "routing_epoch",
            "audit_events"} <= _tables(url)
    for args in (["db", "--help"], ["db", "upgrade", "--help"], ["secrets", "--help"], ["config-service", "--help"]):
        assert CliRunner().invoke(cli_app, args).exit_code == 0, args


@pytest.mark.postgres
def test_concurrent_upgrades_on_postgres_are_safe():
    from incidentfox.throwaway_db import create_pg_database, drop_pg_database, pg_available

    if not pg_available():
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    name, url = create_pg_database()
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            for future in [pool.submit(upgrade, url) for _ in range(3)]:
                future.result(timeout=120)
        engine = make_sync_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT epoch FROM routing_epoch WHERE id = 1")).scalar_one() == 0
                assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        finally:
            engine.dispose()
    finally:
        drop_pg_database(name)


def test_config_service_command_serves_the_api(tmp_path):
    port = free_port()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTFOX_")}
    env.update(INCIDENTFOX_DATABASE_URL=f"sqlite:///{tmp_path / 'svc.db'}", INCIDENTFOX_ADMIN_TOKEN="cli-admin-token",
               INCIDENTFOX_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "config-service", "--port", str(port),
                             "--log-level", "warning"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # poll until the server answers (startup includes the migration)
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "config-service did not come up"
            time.sleep(0.1)
        admin = {"Authorization": "Bearer cli-admin-token"}
        r = httpx.post(base + "/api/v1/orgs", json={"org_id": "acme", "name": "Acme"}, headers=admin)
        assert r.status_code == 201, r.text
        assert httpx.get(base + "/api/v1/auth/whoami", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert httpx.get(base + "/docs").status_code == 200
        # first local start generated the pepper and Fernet key, readable only by the owner
        for name in ("token_pepper", "secret_key"):
            assert (home / name).stat().st_mode & 0o077 == 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
