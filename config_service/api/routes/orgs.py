"""Organizations: create (global admin), list (global admin), read (org admin)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from config_service.api.body import body_doc, read_json
from config_service.api.deps import GlobalAdminDep, OrgAdminDep, SessionDep
from config_service.api.schemas import OrgCreate
from config_service.services import orgs
from incidentfox.pagination import LongPageDep, Page, envelope, page_responses

router = APIRouter(prefix="/api/v1/orgs", tags=["orgs"])


@router.post("", status_code=201, openapi_extra=body_doc(OrgCreate))
async def create_org(request: Request, principal: GlobalAdminDep, session: SessionDep) -> dict:
    """Create an org and its root node (global admin)."""
    body = await read_json(request, OrgCreate)
    org = await orgs.create_org(session, org_id=body.org_id, name=body.name, actor=principal.subject)
    return orgs.org_dict(org)


@router.get("", responses=page_responses("OrgPage"))
async def list_orgs(principal: GlobalAdminDep, session: SessionDep, page: LongPageDep,
                    after: str | None = Query(None, description="older paging: start after this org id")) -> dict:
    """All orgs, by id (global admin)."""
    result = await orgs.list_orgs(session, page=page, after=after)
    return envelope(Page([orgs.org_dict(o) for o in result.items], result.next_cursor))


@router.get("/{org}")
async def get_org(org: str, principal: OrgAdminDep, session: SessionDep) -> dict:
    """One org, with its current epoch (org admin)."""
    return orgs.org_dict(await orgs.get_org(session, org_id=org))
