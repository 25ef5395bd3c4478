"""PostgreSQL connections (``incidentfox.pg_connections``): a process's pool is sized by the settings,
a connection the server refuses for its connection limit is waited for instead of failing at once,
and a database error a run records for its team names no host, statement or parameter."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from actors.engine.investigation import investigate
from actors.engine.outcomes import RunOutcome
from actors.engine.run_state import EngineContext, LiveRun
from actors.engine.run_writer import RunWriter
from incidentfox.contracts import RunStatus, Trigger
from incidentfox.db import make_async_engine, session_factory
from incidentfox.errors import failure_reason
from incidentfox.pg_connections import server_full, waiting_connect
from incidentfox.runs import store
from incidentfox.settings import Settings
from incidentfox.throwaway_db import PG_ADMIN_DSN

REFUSED = ('connection failed: connection to server at "10.20.30.40", port 5432 failed: '
           "FATAL:  sorry, too many clients already")


def _db_error(message: str = REFUSED) -> OperationalError:
    return OperationalError("SELECT * FROM runs WHERE token = %(t)s", {"t": "hunter2-secret"},
                            psycopg.OperationalError(message))


@pytest.mark.parametrize(("message", "full"), [
    ("FATAL:  sorry, too many clients already", True),
    ('FATAL:  too many connections for role "incidentfox"', True),
    ('FATAL:  too many connections for database "incidentfox"', True),
    ("FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute", True),
    ("Connection refused\n\tIs the server running on that host", False),
    ('FATAL:  password authentication failed for user "incidentfox"', False),
    ('FATAL:  database "incidentfox" does not exist', False),
])
def test_only_a_full_server_is_waited_for(message: str, full: bool) -> None:
    assert server_full(psycopg.OperationalError(message)) is full


def test_a_database_error_is_described_without_host_statement_or_parameters() -> None:
    reason = failure_reason(_db_error())
    assert reason.startswith("OperationalError: the database's connection limit is reached")
    assert "10.20.30.40" not in reason and "SELECT" not in reason and "hunter2" not in reason
    other = failure_reason(_db_error('FATAL:  database "tenant_db" does not exist'))
    assert other == "OperationalError: the database failed the request (OperationalError)"
    # A statement's values are never read as the driver's words.
    quoted = OperationalError("UPDATE runs SET title = %(t)s", {"t": "too many clients already"},
                              psycopg.OperationalError("server closed the connection unexpectedly"))
    assert failure_reason(quoted) == "OperationalError: the database failed the request (OperationalError)"
    # Anything else: its type and the first line of its message.
    assert failure_reason(ValueError("bad value\nsecond line")) == "ValueError: bad value"


async def test_a_run_whose_config_read_fails_on_the_database_records_no_host(db_url: str) -> None:
    async def load_config(org: str, team: str) -> dict[str, Any]:
        raise _db_error()

    engine = make_async_engine(db_url)
    sessions = session_factory(engine)
    writer = RunWriter(sessions)
    ctx = EngineContext(sessions=sessions, writer=writer, load_config=load_config, slack_api_url="")
    try:
        async with sessions() as s:
            run = await store.create_run(s, org_id="o", team_id="t",
                                         trigger=Trigger(source="api", delivery_id="d-1", event_kind="api"))
            await s.flush()
            assert await store.transition(s, run_id=run.id, to=RunStatus.RUNNING)
            await s.commit()
        outcome = await investigate(ctx, LiveRun(run.id), org_id="o", team_id="t", workers=[], executors=[])
        await writer.flush()
        async with sessions() as s:
            failed = await store.get_run(s, run.id)
            events = [e.data for e in await store.list_events(s, run_id=run.id)]
        assert outcome is RunOutcome.FAILED and failed.status == "failed"
        assert failed.error.startswith("could not load the team's config: OperationalError: the database's")
        recorded = f"{failed.error} {events}"
        assert "10.20.30.40" not in recorded and "hunter2" not in recorded and "SELECT" not in recorded
    finally:
        await writer.aclose()
        await engine.dispose()


@pytest.fixture
def limited_role(pg_url: str):
    """A login role allowed one connection at a time, and its URL for ``pg_url``'s database."""
    role = f"ifx_limited_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 1')
    try:
        yield pg_url.replace("postgres@", f"{role}@", 1)
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


async def _refused_once(caplog: pytest.LogCaptureFixture) -> None:
    while "connection limit is reached" not in caplog.text:
        await asyncio.sleep(0.01)


async def test_a_query_waits_for_a_full_server_instead_of_failing(limited_role: str, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="incidentfox.pg_connections")
    engine = make_async_engine(limited_role)
    settings = Settings()
    assert (engine.pool.size(), engine.pool._max_overflow) == (settings.db_pool_size, settings.db_pool_overflow)
    held = await psycopg.AsyncConnection.connect(limited_role.replace("+psycopg", ""))  # the role's one slot
    try:
        async def query() -> int:
            async with engine.connect() as conn:
                return (await conn.execute(text("SELECT 7"))).scalar_one()

        waiting = asyncio.create_task(query())
        await asyncio.wait_for(_refused_once(caplog), timeout=60)
        assert not waiting.done()            # refused, and still waiting rather than failed
        await held.close()                   # the slot frees: the waiting connect gets it
        assert await asyncio.wait_for(waiting, timeout=60) == 7
    finally:
        await held.close()
        await engine.dispose()


async def test_a_server_that_stays_full_fails_the_connect_after_the_wait(limited_role: str, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="incidentfox.pg_connections")
    held = await psycopg.AsyncConnection.connect(limited_role.replace("+psycopg", ""))
    try:
        connect = waiting_connect(limited_role, wait_s=0.3)
        with pytest.raises(psycopg.OperationalError) as refused:
            await connect()
        assert server_full(refused.value)
        assert "connection limit is reached" in caplog.text
    finally:
        await held.close()


async def test_pool_sizes_follow_the_environment_when_the_engine_is_made(pg_url: str, monkeypatch) -> None:
    """Read when each engine is made, never frozen by an earlier one (or by the process's cached
    settings): a CLI command's engine sees the environment it runs in."""
    first, size_then = make_async_engine(pg_url), Settings().db_pool_size
    monkeypatch.setenv("INCIDENTFOX_DB_POOL_SIZE", "3")
    monkeypatch.setenv("INCIDENTFOX_DB_POOL_OVERFLOW", "2")
    second = make_async_engine(pg_url)
    try:
        assert (second.pool.size(), second.pool._max_overflow) == (3, 2)
        assert first.pool.size() == size_then   # the first engine keeps what it was made with
    finally:
        await first.dispose()
        await second.dispose()
