"""Audit log of an org, newest first, filtered and paged (org admin)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query

from config_service.api.deps import OrgAdminDep, SessionDep
from config_service.services import audit

router = APIRouter(prefix="/api/v1/orgs/{org}", tags=["audit"])
_FILTER = r"^[\x20-\x7e]{1,200}$"  # printable ASCII: filters are compared to stored ids and names


@router.get("/audit")
async def list_audit(org: str, principal: OrgAdminDep, session: SessionDep,
                     action: str | None = Query(None, pattern=_FILTER, description="exact, or prefix with *"),
                     target: str | None = Query(None, pattern=_FILTER, description="e.g. node:acme/payments"),
                     actor: str | None = Query(None, pattern=_FILTER, description="e.g. admin, token:tok_…"),
                     since: datetime | None = None, until: datetime | None = None,
                     limit: int = Query(50, ge=1, le=200),
                     cursor: int | None = Query(None, ge=0, lt=2**63)) -> dict:
    """``{items: [{id, at, actor, action, target, diff}], next_cursor}``; pass ``cursor`` for the next page."""
    return await audit.list_events(session, org_id=org, action=action, target=target, actor=actor, since=since,
                                   until=until, limit=limit, cursor=cursor)
