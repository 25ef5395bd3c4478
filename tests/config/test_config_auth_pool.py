"""Authentication and the connection pool: ``PrincipalDep`` returns its connection before the handler
runs, so more concurrent requests than the pool holds all succeed instead of each holding one
connection while waiting for a second; and an exhausted pool is a 503 with ``Retry-After``.

Every app here is built with a small pool (``POOL_SIZE + MAX_OVERFLOW`` connections) by patching
the engine factory :func:`config_service.api.deps.install_auth_state` uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

import httpx
import pytest
from gateway_kit import RecordingRunner, seed_tenants, settings_for
from sqlalchemy import func, select

from config_service.api import deps
from incidentfox.runs.models import Run
from serve_apps.agent_api import create_agent_app

POOL_SIZE, MAX_OVERFLOW = 2, 2
CONNECTIONS = POOL_SIZE + MAX_OVERFLOW


def _small_pool(monkeypatch: pytest.MonkeyPatch, *, pool_timeout: float) -> None:
    # A generous timeout where the test expects success (a slow machine must not fail it); a short
    # one where it expects exhaustion (the test waits for it once).
    monkeypatch.setattr(deps, "make_async_engine", functools.partial(
        deps.make_async_engine, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, pool_timeout=pool_timeout))


@contextlib.asynccontextmanager
async def _agent_api(db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    toks = await seed_tenants(db_url, settings)
    app = create_agent_app(settings=settings, runner=RecordingRunner())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
            yield app, client, {"Authorization": f"Bearer {toks['acme/payments']}"}
        await app.state.dispatch_tasks.drain(10)
    finally:
        await app.state.engine.dispose()


async def test_twice_the_pool_of_concurrent_requests_all_succeed(db_url, tmp_path, monkeypatch):
    _small_pool(monkeypatch, pool_timeout=30)
    async with _agent_api(db_url, tmp_path) as (app, client, auth):
        # Once first, so the concurrent ones find last_used_at fresh and keep their read
        # transaction (and its connection) open, as a hot token does.
        assert (await client.get("/runs", headers=auth)).status_code == 200
        headers = {**auth, "Idempotency-Key": "retry-me"}
        posts = [client.post("/runs", json={"text": "x"}, headers=headers) for _ in range(2 * CONNECTIONS)]
        reads = [client.get("/runs", headers=auth) for _ in range(2 * CONNECTIONS)]
        responses = await asyncio.gather(*posts, *reads)
        statuses = [r.status_code for r in responses]
        assert statuses == [202] * len(posts) + [200] * len(reads), [r.text for r in responses if r.status_code >= 500]
        assert len({r.json()["run_id"] for r in responses[:len(posts)]}) == 1
        async with app.state.session_factory() as s:
            assert await s.scalar(select(func.count()).select_from(Run)) == 1


async def test_an_exhausted_pool_is_503_with_retry_after(db_url, tmp_path, monkeypatch):
    _small_pool(monkeypatch, pool_timeout=0.2)
    async with _agent_api(db_url, tmp_path) as (app, client, auth), contextlib.AsyncExitStack() as held:
        for _ in range(CONNECTIONS):   # every connection checked out elsewhere
            await held.enter_async_context(app.state.engine.connect())
        r = await client.get("/runs", headers=auth)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "database_busy"
        assert int(r.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("down", ["postgresql+psycopg://postgres@127.0.0.1:1/incidentfox",
                                  "postgresql+psycopg://postgres@127.0.0.1:5432/incidentfox_no_such_database"])
async def test_a_database_that_is_down_is_503_with_retry_after(down, tmp_path, caplog):
    """Refused or unknown: the caller hears "retry" (503, ``Retry-After``), never a 500, and neither
    the answer nor the log names the host or the database."""
    app = create_agent_app(settings=settings_for(down, tmp_path), runner=RecordingRunner())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
            for request in (client.get("/runs", headers={"Authorization": "Bearer acme.payments.s3cret"}),
                            client.post("/runs", json={"text": "x"}, headers={"Authorization": "Bearer acme.s3cret"})):
                r = await request
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "database_unavailable"
                assert int(r.headers["Retry-After"]) >= 1
                assert "127.0.0.1" not in r.text and "incidentfox" not in r.text.replace("IncidentFox", "")
    finally:
        await app.state.engine.dispose()
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "database unavailable" in logged and "no_such_database" not in logged and "127.0.0.1" not in logged
