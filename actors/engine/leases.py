"""Run leases as the hosting actor sees them: claim a run, renew the leases of the runs it hosts,
and decide, run by run, what a renewal means.

A run is ``running`` under a lease (``runs.lease_owner`` / ``lease_expires_at``) held by the actor
incarnation that claimed it. The actor renews its runs' leases every ``lease_s/3``; the pool's
recovery sweep (:mod:`actors.engine.recovery`) requeues or fails runs whose lease lapsed. On every
renewal the actor also learns whether a run's cancel was requested or whether the lease is no longer
its own (recovery gave the run to someone else): :func:`lease_actions` turns those rows into
:class:`LeaseAction` s, without I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from actors.engine.pool_config import CALL_TIMEOUT_S
from incidentfox.contracts import RunStatus
from incidentfox.runs import store
from incidentfox.runs.models import Run
from incidentfox.sqlite_writer import retry_locked


class LeaseAction(StrEnum):
    KEEP = "keep"          # ours and not cancelled: carry on
    CANCEL = "cancel"      # a cancel was requested: cancel the run's task (it records ``cancelled``)
    ABANDON = "abandon"    # the lease is no longer ours: stop without touching the run


@dataclass(frozen=True)
class LeaseRow:
    """A hosted run's lease as the database has it after a renewal."""

    run_id: str
    cancel_requested: bool
    owner: str | None
    status: str


def lease_actions(rows: Iterable[LeaseRow], *, owner: str) -> dict[str, LeaseAction]:
    """What the actor ``owner`` must do with each run, given its rows after a renewal."""
    out: dict[str, LeaseAction] = {}
    for row in rows:
        if row.owner != owner or row.status != RunStatus.RUNNING.value:
            out[row.run_id] = LeaseAction.ABANDON
        elif row.cancel_requested:
            out[row.run_id] = LeaseAction.CANCEL
        else:
            out[row.run_id] = LeaseAction.KEEP
    return out


async def claim_run(sessions: Any, *, run_id: str, owner: str, actor_name: str, lease_s: float) -> bool:
    """``queued → running`` under a lease held by ``owner`` (a ``status`` event names the actor);
    False when the run was not claimable (another actor took it, or it was cancelled)."""
    async def txn() -> bool:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            async with sessions() as s:
                claimed = await store.claim(s, run_id=run_id, owner=owner, lease_s=lease_s)
                if claimed:
                    await store.append_event(s, run_id=run_id, kind="status",
                                             data={"status": RunStatus.RUNNING.value, "actor": actor_name})
                await s.commit()
                return claimed
    return await retry_locked(txn)


async def renew_leases(sessions: Any, *, run_ids: list[str], owner: str, lease_s: float) -> list[LeaseRow]:
    """Extend the leases ``owner`` still holds on ``run_ids``; returns every run's lease row."""
    async with asyncio.timeout(CALL_TIMEOUT_S):
        async with sessions() as s:
            await store.renew_lease(s, run_ids=run_ids, owner=owner, lease_s=lease_s)
            rows = (await s.execute(select(Run.id, Run.cancel_requested, Run.lease_owner, Run.status)
                                    .where(Run.id.in_(run_ids)))).all()
            await s.commit()
    return [LeaseRow(run_id=r, cancel_requested=bool(c), owner=o, status=st) for r, c, o, st in rows]
