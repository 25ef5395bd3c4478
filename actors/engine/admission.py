"""Admission: whether a submitted run can be queued, under which placement key and quota.

:func:`admit` reads the team's effective config, derives the run's placement key (``shared`` or the
team's dedicated resource, :mod:`actors.engine.placement`) and its ``quotas.max_concurrent_runs``,
and, for a key the pool has no actors for yet, checks that some Ray node offers that resource (an
actor requesting it would otherwise pend forever). A refusal is an :class:`AdmissionRefused` whose
``reason`` the pool writes to the run with :func:`fail_queued`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass
from typing import Any

import ray

from actors.engine.placement import PlacementUnavailable, check_available, placement_key
from actors.engine.pool_config import CALL_TIMEOUT_S
from config_service import TeamConfig, max_concurrent_runs
from incidentfox.contracts import RunStatus
from incidentfox.errors import failure_reason
from incidentfox.runs import store
from incidentfox.sqlite_writer import retry_locked

ConfigLoader = Callable[[str, str], Awaitable[dict[str, Any]]]


class AdmissionRefused(Exception):
    """The run cannot be queued; ``reason`` is the one line stored in ``runs.error``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Admission:
    key: str      # placement key: which group of actors runs it
    limit: int    # the team's concurrent-run quota


async def admit(load_config: ConfigLoader, *, org_id: str, team_id: str, known_keys: Container[str]) -> Admission:
    """The run's placement and quota; raises :class:`AdmissionRefused`."""
    try:
        doc = await load_config(org_id, team_id)
        key = placement_key(TeamConfig(doc, org_id=org_id, team_id=team_id), org_id=org_id, team_id=team_id)
        if key not in known_keys:
            check_available(key, await asyncio.to_thread(ray.cluster_resources))
    except PlacementUnavailable as exc:
        raise AdmissionRefused(str(exc)) from exc
    except Exception as exc:
        raise AdmissionRefused(f"could not load the team's config: {failure_reason(exc)}") from exc
    return Admission(key=key, limit=max_concurrent_runs(doc))


async def fail_queued(sessions: Any, *, run_id: str, reason: str) -> None:
    """``queued → failed`` with ``reason`` (no-op if the run already moved on)."""
    async def txn() -> None:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            async with sessions() as s:
                if await store.transition(s, run_id=run_id, to=RunStatus.FAILED, from_=[RunStatus.QUEUED],
                                          error=reason):
                    await store.append_event(s, run_id=run_id, kind="status",
                                             data={"status": RunStatus.FAILED.value, "reason": reason})
                await s.commit()
    await retry_locked(txn)
