"""Approval of mutating tool calls (restart, scale, rollback): nothing changes without a human's yes.

When an agent calls a tool declared ``mutating`` (and the team's allow-list enables it at all), the
ToolExecutor does not run it. :func:`await_approval` instead:

1. inserts a ``tool_approvals`` row (``pending``, arguments masked) and a run event
   ``approval`` ``{approval_id, tool, arguments, status: pending}``;
2. posts Approve / Deny buttons into the run's Slack thread (``value`` carries run and approval id;
   the gateway's interaction handler records the decision and who made it, as an audited run event);
3. waits, bounded by the run's remaining time, for the row to leave ``pending``. A row still pending
   at the end is marked ``expired``.

Only ``approved`` lets the call run (``execute(..., approved=True)``). :func:`decide` is the same
compare-and-set decision the Slack button makes, for the API and tests.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidentfox.sqlite_writer import retry_locked
from incidentfox.db import utcnow
from incidentfox.runs import store
from incidentfox.runs.models import ToolApproval

POLL_S = 0.5


async def decide(session: AsyncSession, *, run_id: str, approval_id: str, approve: bool, by: str) -> bool:
    """pending → approved|denied, recorded with who decided (a run event). False if not pending."""
    status = "approved" if approve else "denied"
    res = await session.execute(
        update(ToolApproval).where(ToolApproval.id == approval_id, ToolApproval.run_id == run_id,
                                   ToolApproval.status == "pending")
        .values(status=status, decided_at=utcnow(), decided_by=by[:128])
        .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        return False
    await store.append_event(session, run_id=run_id, kind="note",
                             data={"approval": approval_id, "decision": status, "by": by[:128]})
    return True


async def await_approval(sessions: async_sessionmaker[AsyncSession], *, run_id: str, tool: str,
                         arguments: dict[str, Any], timeout_s: float,
                         post: Callable[[str], Awaitable[None]] | None = None) -> str:
    """Request approval and wait for it; returns ``approved`` | ``denied`` | ``expired``."""
    approval_id = "apr_" + uuid.uuid4().hex

    async def create() -> None:
        async with sessions() as s:
            s.add(ToolApproval(id=approval_id, run_id=run_id, tool=tool, arguments=arguments, status="pending",
                               requested_at=utcnow()))
            await s.flush()
            await store.append_event(s, run_id=run_id, kind="approval",
                                     data={"approval_id": approval_id, "tool": tool, "arguments": arguments,
                                           "status": "pending"})
            await s.commit()
    await retry_locked(create)
    if post is not None:
        try:
            await post(approval_id)
        except Exception:  # noqa: BLE001 - the API can still approve; the wait below is bounded
            pass
    deadline = time.monotonic() + max(0.0, timeout_s)
    while True:
        async with sessions() as s:
            row = await s.get(ToolApproval, approval_id, populate_existing=True)
            status = row.status if row else "expired"
        if status != "pending":
            return status
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))   # waiting on a human

    async def expire() -> bool:
        async with sessions() as s:
            res = await s.execute(update(ToolApproval).where(ToolApproval.id == approval_id,
                                                             ToolApproval.status == "pending")
                                  .values(status="expired", decided_at=utcnow())
                                  .execution_options(synchronize_session=False))
            await s.commit()
            return res.rowcount == 1
    if await retry_locked(expire):
        return "expired"
    async with sessions() as s:   # decided in the last instant
        row = await s.get(ToolApproval, approval_id, populate_existing=True)
        return row.status if row else "expired"
