"""The recovery sweep: no run stuck in ``running``, no queued run forgotten.

Every ``lease_s/3`` the pool calls :func:`sweep`:

* a run whose lease lapsed (its actor died) is requeued once, or failed with the reason after its
  second attempt (:func:`incidentfox.runs.store.recover_expired`); the pool re-dispatches the
  requeued ones;
* an investigation still ``queued`` :data:`LOST_SUBMIT_AFTER_S` after it was created, which the pool
  does not know, was never submitted (a lost submit): the pool submits it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from actors.engine.pool_config import CALL_TIMEOUT_S
from incidentfox.contracts import RunStatus
from incidentfox.runs import store
from incidentfox.runs.models import Run

LOST_SUBMIT_AFTER_S = 10.0   # a queued run this old that the pool never saw is re-submitted
LOST_BATCH = 500


@dataclass
class Sweep:
    """What one sweep found."""

    requeued: list[str] = field(default_factory=list)     # lease lapsed, queued again
    failed: list[str] = field(default_factory=list)       # lease lapsed on the last attempt
    queued: list[tuple[str, str, str]] = field(default_factory=list)   # (run, org, team) queued long ago


async def sweep(sessions: Any, *, now: datetime, lost_after_s: float = LOST_SUBMIT_AFTER_S) -> Sweep:
    """Recover lapsed leases and list old queued investigations (the caller skips those it knows)."""
    async with asyncio.timeout(CALL_TIMEOUT_S):
        async with sessions() as s:
            requeued, failed = await store.recover_expired(s, now=now)
            queued = (await s.execute(
                select(Run.id, Run.org_id, Run.team_id).where(
                    Run.status == RunStatus.QUEUED.value, Run.kind == "investigation",
                    Run.created_at < now - timedelta(seconds=lost_after_s)).limit(LOST_BATCH))).all()
            await s.commit()
    return Sweep(requeued=list(requeued), failed=list(failed), queued=[(r, o, t) for r, o, t in queued])
