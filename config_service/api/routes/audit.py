"""Audit log of an org, newest first, filtered and paged (org admin)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query

from config_service.api.deps import OrgAdminDep, SessionDep
from config_service.services import audit
from incidentfox.errors import Unprocessable
from incidentfox.pagination import PageDep, envelope, page_responses

router = APIRouter(prefix="/api/v1/orgs/{org}", tags=["audit"])
_FILTER = r"^[\x20-\x7e]{1,200}$"  # printable ASCII: filters are compared to stored ids and names


@router.get("/audit", responses=page_responses("AuditPage"))
async def list_audit(org: str, principal: OrgAdminDep, session: SessionDep, page: PageDep,
                     action: str | None = Query(None, pattern=_FILTER, description="exact, or prefix with *"),
                     target: str | None = Query(None, pattern=_FILTER, description="e.g. node:acme/payments"),
                     actor: str | None = Query(None, pattern=_FILTER, description="e.g. admin, token:tok_…"),
                     node: str | None = Query(None, pattern=r"^[a-z0-9][a-z0-9-]{0,30}$",
                                              description="entries about this node (target node:{org}/{node})"),
                     since: datetime | None = None, until: datetime | None = None) -> dict:
    """``{items: [{id, at, actor, action, target, diff}], next_cursor}``; pass ``cursor`` for the next page.
    ``node=`` is ``target=node:{org}/{node}`` (422 ``conflicting_filters`` when both differ)."""
    if node is not None:
        node_target = f"node:{org}/{node}"
        if target is not None and target != node_target:
            raise Unprocessable("node and target name different targets", code="conflicting_filters")
        target = node_target
    return envelope(await audit.list_events(session, org_id=org, action=action, target=target, actor=actor,
                                            since=since, until=until, page=page))
