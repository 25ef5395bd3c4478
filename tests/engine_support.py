"""Shared helpers for the engine tests: one warmed pool per test module on the session Ray, a
migrated SQLite database, teams configured through the real config service, a Slack recorder.

``tests/engine/conftest.py`` offers the ``engine`` fixture to the engine tests (another folder imports
it into its own conftest the same way); each test adds its own team (``await engine.add_team(config)``)
so tests share the pool's actors, which keeps actor start-up (seconds each on 2 cores) out of every
test.
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from typing import Any

import pytest
import ray

from actors.engine.pool import get_pool
from actors.engine.pool_config import PoolConfig
from actors.engine.runner import InvestigationRunner
from cli.demo.slack_recorder import SlackRecorder
from incidentfox.contracts import RunStatus, ThreadRef, Trigger
from incidentfox.db import make_async_engine, session_factory, upgrade
from incidentfox.runs import store
from incidentfox.settings import Settings

TOKEN = "xoxb-engine-test-token-123456"
ORG = "acme"


class Engine:
    def __init__(self, url: str, settings: Settings, slack: SlackRecorder) -> None:
        self.url = url
        self.settings = settings
        self.slack = slack
        self.db = make_async_engine(url)
        self.sessions = session_factory(self.db)
        self.runner: InvestigationRunner | None = None
        self.pool: Any = None
        self._teams = 0

    async def add_team(self, config: dict[str, Any]) -> str:
        """A new team under org ``acme`` with ``config`` (written through the config service)."""
        from config_service.db.models import Org
        from config_service.services import config as config_service
        from config_service.services import nodes, orgs

        self._teams += 1
        team = f"team-{self._teams}-{uuid.uuid4().hex[:4]}"
        async with self.sessions() as s:
            if await s.get(Org, ORG) is None:
                await orgs.create_org(s, org_id=ORG, name="Acme", actor="test")
            await nodes.create_node(s, org_id=ORG, node_id=team, parent_id=None, kind="team", name=team,
                                    actor="test")
            await config_service.patch_config(s, settings=self.settings, org_id=ORG, node_id=team,
                                              patch=config, actor="test")
        return team

    async def create_run(self, team: str, *, trigger: Trigger | None = None, deadline_s: float | None = None,
                         channel: str = "C1") -> str:
        trigger = trigger or Trigger(source="slack", delivery_id=uuid.uuid4().hex, event_kind="app_mention",
                                     title="checkout is returning 500s", text="<@UBOT> why is checkout failing?",
                                     services=["checkout"], human=True,
                                     thread=ThreadRef(channel=channel, ts=f"{uuid.uuid4().int % 10**6}.1"))
        async with self.sessions() as s:
            run = await store.create_run(s, org_id=ORG, team_id=team, trigger=trigger, deadline_s=deadline_s)
            await s.commit()
            return run.id

    async def start(self, team: str, **kw: Any) -> str:
        run_id = await self.create_run(team, **kw)
        await self.runner.submit(run_id=run_id, org_id=ORG, team_id=team)
        return run_id

    async def run(self, run_id: str):
        async with self.sessions() as s:
            return await store.get_run(s, run_id)

    async def wait_status(self, run_id: str, statuses: set[str], *, timeout: float = 60.0):
        """Wait (bounded) until the run's status is one of ``statuses``."""
        async with asyncio.timeout(timeout):
            while True:
                run = await self.run(run_id)
                if run is not None and run.status in statuses:
                    return run
                await asyncio.sleep(0.05)   # polling the database, bounded by the timeout above

    async def wait_terminal(self, run_id: str, *, timeout: float = 60.0):
        return await self.wait_status(run_id, {s.value for s in RunStatus if s.terminal}, timeout=timeout)

    async def tool_calls(self, run_id: str) -> list[Any]:
        async with self.sessions() as s:
            return await store.list_tool_calls(s, run_id=run_id)

    async def evidence(self, run_id: str) -> dict[str, Any] | None:
        async with self.sessions() as s:
            return await store.run_evidence(s, run_id)

    async def events(self, run_id: str) -> list[Any]:
        async with self.sessions() as s:
            return await store.list_events(s, run_id=run_id)

    def slack_calls(self, channel: str, method: str | None = None) -> list[Any]:
        return [c for c in self.slack.calls if c.args.get("channel") == channel
                and (method is None or c.method == method)]


def demo_config(*, channel: str | None = "C1", latency_ms: Any = 0, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"integrations": {"demo": {"enabled": True, "latency_ms": latency_ms}},
                           "investigation": {"deadline_s": 60}}
    if channel:
        cfg["integrations"]["slack"] = {"bot_token": TOKEN}
        cfg["slack"] = {"default_channel": channel}
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return cfg


def pool_overrides() -> dict[str, Any]:
    """Small pools for tests: one actor of each kind (async actors are concurrent anyway)."""
    return {"subagent_workers": 1, "tool_executors": 1, "min_actors": 1, "max_actors": 2}


@pytest.fixture(scope="module")
async def engine(ray_session, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('engine') / 'engine.db'}"
    upgrade(url)
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    settings = Settings(secret_key=key, token_pepper="pepper-for-tests", database_url=url,
                        object_store_root=tmp_path_factory.mktemp("objects"))
    rec = SlackRecorder()
    await rec.start()
    eng = Engine(url, settings, rec)
    cfg = PoolConfig(database_url=url, settings=settings, name="t" + uuid.uuid4().hex[:8], lease_s=6.0,
                     slack_api_url=rec.url, idle_s=3600, **pool_overrides())
    eng.runner = InvestigationRunner(url, pool_config=cfg)
    eng.pool = get_pool(cfg)
    eng.runner._pool = eng.pool
    await eng.pool.warmup.remote("shared")
    yield eng
    await eng.pool.shutdown.remote()
    ray.kill(eng.pool, no_restart=True)
    await rec.stop()
    await eng.db.dispose()
