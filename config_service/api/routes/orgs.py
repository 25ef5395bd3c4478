"""Organizations: create (global admin), list (global admin), read (org admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from config_service.api.body import body_doc, read_json
from config_service.api.deps import GlobalAdminDep, OrgAdminDep, SessionDep
from config_service.api.schemas import OrgCreate
from config_service.services import orgs

router = APIRouter(prefix="/api/v1/orgs", tags=["orgs"])


@router.post("", status_code=201, openapi_extra=body_doc(OrgCreate))
async def create_org(request: Request, principal: GlobalAdminDep, session: SessionDep) -> dict:
    """Create an org and its root node (global admin)."""
    body = await read_json(request, OrgCreate)
    org = await orgs.create_org(session, org_id=body.org_id, name=body.name, actor=principal.subject)
    return orgs.org_dict(org)


@router.get("")
async def list_orgs(principal: GlobalAdminDep, session: SessionDep, limit: int = 500, after: str | None = None) -> dict:
    """All orgs, by id (global admin)."""
    return {"items": [orgs.org_dict(o) for o in await orgs.list_orgs(session, limit=limit, after=after)]}


@router.get("/{org}")
async def get_org(org: str, principal: OrgAdminDep, session: SessionDep) -> dict:
    """One org, with its current epoch (org admin)."""
    return orgs.org_dict(await orgs.get_org(session, org_id=org))
