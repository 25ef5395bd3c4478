"""Shared helpers for the engine tests: a pool on the session Ray, runs in a throwaway database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import ray

from actors.pool import InvestigationRunner, PoolConfig, get_pool
from incidentfox.contracts import RunStatus, ThreadRef, Trigger
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs import store
from incidentfox.settings import Settings

TOKEN = "xoxb-engine-test-token-123456"


class Db:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_async_engine(url)
        self.sessions = session_factory(self.engine)

    async def create_run(self, *, trigger: Trigger | None = None, org: str = "acme", team: str = "sre",
                         deadline_s: float | None = None) -> str:
        trigger = trigger or Trigger(source="slack", delivery_id=uuid.uuid4().hex, event_kind="app_mention",
                                     title="checkout is returning 500s", text="<@UBOT> why is checkout failing?",
                                     services=["checkout"], human=True, thread=ThreadRef(channel="C1", ts="100.1"))
        async with self.sessions() as s:
            run = await store.create_run(s, org_id=org, team_id=team, trigger=trigger, deadline_s=deadline_s)
            await s.commit()
            return run.id

    async def run(self, run_id: str):  # noqa: ANN201
        async with self.sessions() as s:
            return await store.get_run(s, run_id)

    async def wait_status(self, run_id: str, statuses: set[str], *, timeout: float = 60.0):  # noqa: ANN201
        """Wait (bounded) until the run's status is one of ``statuses``."""
        async with asyncio.timeout(timeout):
            while True:
                run = await self.run(run_id)
                if run is not None and run.status in statuses:
                    return run
                await asyncio.sleep(0.05)   # polling the database, bounded by the timeout above

    async def wait_terminal(self, run_id: str, *, timeout: float = 60.0):  # noqa: ANN201
        return await self.wait_status(run_id, {s.value for s in RunStatus if s.terminal}, timeout=timeout)

    async def tool_calls(self, run_id: str) -> list[Any]:
        async with self.sessions() as s:
            return await store.list_tool_calls(s, run_id=run_id)

    async def events(self, run_id: str) -> list[Any]:
        async with self.sessions() as s:
            return await store.list_events(s, run_id=run_id)

    async def dispose(self) -> None:
        await self.engine.dispose()


def demo_config(*, slack_url: str | None = None, latency_ms: Any = 0, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"integrations": {"demo": {"enabled": True, "latency_ms": latency_ms}},
                           "investigation": {"deadline_s": 60}}
    if slack_url:
        cfg["integrations"]["slack"] = {"bot_token": TOKEN}
        cfg["slack"] = {"default_channel": "C1"}
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return cfg


async def start_pool(db_url: str, config: dict[str, Any], *, slack_url: str = "http://127.0.0.1:9/api/",
                     lease_s: float = 30.0, **kw: Any) -> tuple[InvestigationRunner, Any]:
    name = "t" + uuid.uuid4().hex[:8]
    cfg = PoolConfig(database_url=db_url, settings=Settings(), name=name, lease_s=lease_s,
                     slack_api_url=slack_url, static_config=config, **kw)
    runner = InvestigationRunner(db_url, pool_config=cfg)
    pool = get_pool(cfg)
    runner._pool = pool
    return runner, pool


async def stop_pool(pool: Any) -> None:
    await pool.shutdown.remote()
    ray.kill(pool, no_restart=True)
