"""InvestigationRunner: the gateway's :class:`incidentfox.runs.runner.Runner` for investigations.

It hands runs to the pool actor (:mod:`actors.engine.pool`): submit, cancel, attach a correlated
trigger, and read the pool's stats. Every call is bounded by :data:`CALL_TIMEOUT_S`; the pool is
reached by name, so any replica (or a restarted one) talks to the same supervisor.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray

from actors.engine.pool import get_pool
from actors.engine.pool_config import CALL_TIMEOUT_S, NAMESPACE, PoolConfig
from incidentfox.contracts import Trigger
from incidentfox.runs.turns import attach_entry
from incidentfox.settings import get_settings


class InvestigationRunner:
    """The gateway's :class:`incidentfox.runs.runner.Runner`: hands runs to the pool actor."""

    def __init__(self, database_url: str, *, pool_config: PoolConfig | None = None) -> None:
        settings = get_settings()
        if database_url:
            settings = settings.model_copy(update={"database_url": database_url})
        self._cfg = pool_config or PoolConfig.from_settings(settings)
        self._pool: Any | None = None
        if pool_config is None and ray.is_initialized():
            # Built inside a Serve replica at deploy time: start the pool's actors now, so the first
            # investigation does not wait for process start-up (fire and forget; a failure such as
            # a missing `shared` resource is reported again by the first submit). The ref is held
            # so the call is not dropped with it.
            self._warm = self._handle().warmup.remote("shared")

    def _handle(self) -> Any:
        if self._pool is None:
            if not ray.is_initialized():
                ray.init(address="auto", namespace=NAMESPACE, log_to_driver=False)
            self._pool = get_pool(self._cfg)
        return self._pool

    async def submit(self, *, run_id: str, org_id: str, team_id: str) -> None:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            await self._handle().submit.remote(run_id, org_id, team_id)

    async def cancel(self, *, run_id: str) -> None:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            await self._handle().cancel.remote(run_id)

    async def attach(self, *, run_id: str, trigger: Trigger) -> None:
        entry = attach_entry(trigger)
        async with asyncio.timeout(CALL_TIMEOUT_S):
            await self._handle().attach.remote(run_id, entry)

    async def stats(self) -> dict[str, Any]:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            return await self._handle().stats.remote()
