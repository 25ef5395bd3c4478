"""Secrets out of memory (issue 12): a run's decrypted integrations are dropped from the shared tool
executors when the run ends, so an executor serving many teams holds only live runs' credentials."""

from __future__ import annotations

import asyncio

import pytest
import ray
from engine_support import demo_config

from actors.engine.pool import NAMESPACE

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _tool_executors() -> list:
    # actors/engine/pool.py names them "{pool}-tools-{placement key}-{i}" in its namespace.
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
             if a["namespace"] == NAMESPACE and "-tools-" in a["name"]]
    return [ray.get_actor(n, namespace=NAMESPACE) for n in names]


async def test_a_finished_runs_credentials_leave_the_tool_executors(engine):
    team = await engine.add_team(demo_config())
    run_id = await engine.start(team)
    run = await engine.wait_terminal(run_id)
    assert run.status == "succeeded"
    assert await engine.tool_calls(run_id), "the run used the executors (else this would prove nothing)"
    executors = _tool_executors()
    assert executors

    async def held() -> bool:
        return any([run_id in await e.held_runs.remote() for e in executors])

    # The status turns terminal before the run's coroutine unwinds (its `finally` drops the context):
    # wait on that condition, bounded, as ray's wait_for_condition does.
    deadline = asyncio.get_running_loop().time() + 30
    while await held():
        assert asyncio.get_running_loop().time() < deadline, "the executor still holds the run's credentials"
        await asyncio.sleep(0.05)


async def test_the_config_cache_never_holds_a_decrypted_secret(sqlite_url: str) -> None:
    """The per-process effective-config cache keeps secrets encrypted: after an engine read that
    decrypted a team's token, no cache entry contains it (each reader decrypts its own copy)."""
    import json

    from config_service.services import config as config_svc
    from config_service.services.cache import EFFECTIVE_CACHE
    from config_service.services.seed import seed_demo
    from incidentfox.db import make_async_engine, session_factory
    from incidentfox.settings import Settings, ensure_local_secrets

    settings = ensure_local_secrets(Settings(database_url=sqlite_url))
    engine = make_async_engine(sqlite_url)
    sessions = session_factory(engine)
    secret = "xoxb-cache-probe-123456"
    try:
        async with sessions() as s:
            await seed_demo(s, settings=settings)
            await config_svc.patch_config(s, settings=settings, org_id="demo", node_id="sre", actor="t",
                                          patch={"integrations": {"slack": {"bot_token": secret}}})
            await s.commit()
        async with sessions() as s:
            revealed = await config_svc.get_effective_config(s, org_id="demo", node_id="sre",
                                                             reveal_secrets=True, settings=settings)
            masked = await config_svc.get_effective_config(s, org_id="demo", node_id="sre")
        assert revealed["integrations"]["slack"]["bot_token"] == secret
        assert masked["integrations"]["slack"]["bot_token"] == "***"
        cached = json.dumps([v for k, v in EFFECTIVE_CACHE._data.items() if k[1] == "demo"])
        assert cached != "[]" and secret not in cached
    finally:
        await engine.dispose()
