"""Audit log: every config write, rollback, node change, token issue/revoke and impersonation.

Entries are written in the same transaction as the change they describe, so a refused or failed
write leaves no entry. ``diff`` is always masked by the caller (secrets never reach this table);
a config write's changes are masked again when read, since those written before secrets inside lists
were masked still hold them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core.ids import require_id
from config_service.core.jsondoc import check_string
from config_service.core.secret_fields import mask_changes
from config_service.db.models import AuditEvent
from incidentfox.db import utcnow
from incidentfox.pagination import FIRST_PAGE, Page, PageRequest, fetch_page


def record(session: AsyncSession, *, org_id: str | None, actor: str, action: str, target: str,
           diff: Any = None) -> AuditEvent:
    """Add an entry to the session's transaction (the caller commits with its change)."""
    event = AuditEvent(org_id=org_id, actor=actor[:128], action=action, target=target[:200],
                       diff=diff if diff is not None else {}, at=utcnow())
    session.add(event)
    return event


def masked_diff(action: str, diff: Any) -> Any:
    """``diff`` with a config write's ``changes`` masked (idempotent; other actions as they are)."""
    if action.startswith("config.") and isinstance(diff, dict) and "changes" in diff:
        return {**diff, "changes": mask_changes(diff["changes"])}
    return diff


def event_dict(event: AuditEvent) -> dict[str, Any]:
    return {"id": event.id, "org_id": event.org_id, "at": event.at.isoformat(), "actor": event.actor,
            "action": event.action, "target": event.target, "diff": masked_diff(event.action, event.diff)}


async def list_events(session: AsyncSession, *, org_id: str, action: str | None = None,
                      target: str | None = None, actor: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, page: PageRequest = FIRST_PAGE) -> Page[dict[str, Any]]:
    """Newest first. ``action`` ending in ``*`` is a prefix match (``config.*``); ``page.cursor`` is
    the ``next_cursor`` of the previous page (a bare entry id, what this list returned before, works too)."""
    require_id(org_id, field="org_id")
    for value in (action, target, actor):
        if value is not None:
            check_string(value)
    stmt = select(AuditEvent).where(AuditEvent.org_id == org_id)
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action[:-1], autoescape=True) if action.endswith("*")
                          else AuditEvent.action == action)
    if target:
        stmt = stmt.where(AuditEvent.target == target)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at < until)
    return await page_events(session, stmt, page)


async def page_events(session: AsyncSession, stmt: Any, page: PageRequest) -> Page[dict[str, Any]]:
    """One page of the audit entries ``stmt`` selects, newest first."""
    rows = await fetch_page(session, stmt, order=[(AuditEvent.id, True)], page=page, legacy_int=True)
    return Page([event_dict(e) for e in rows.items], rows.next_cursor)
