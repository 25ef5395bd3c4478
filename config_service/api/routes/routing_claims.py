"""A node's routing claims and a dry-run check of proposed ones, conflicts explained without
naming another tenant (see :mod:`config_service.services.claims`)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from config_service.api.body import body_doc, read_json
from config_service.api.deps import OrgAdminDep, SessionDep, TeamReaderDep
from config_service.api.schemas import ClaimCheck
from config_service.services import claims
from incidentfox.pagination import LongPageDep, envelope, page_responses

router = APIRouter(prefix="/api/v1/orgs/{org}/nodes/{node}/routing-claims", tags=["routing"])


@router.get("", responses=page_responses("RoutingClaimPage"))
async def list_claims(org: str, node: str, principal: TeamReaderDep, session: SessionDep,
                      page: LongPageDep) -> dict:
    """``{items: [{kind, key, value, claimed_at}], next_cursor}``: the identifiers this node routes
    (org admin, or the team's own token)."""
    return envelope(await claims.list_node_claims(session, org_id=org, node_id=node, page=page))


@router.post("/check", openapi_extra=body_doc(ClaimCheck))
async def check(org: str, node: str, request: Request, principal: OrgAdminDep, session: SessionDep) -> dict:
    """Dry run of claiming ``routing`` (the config's claim lists) for this team: ``{items: [{kind, key,
    value, status: held|available|conflict, owner_org_id?, owner_team_node_id?, claimed_elsewhere?}],
    conflicts}``. The owner of a conflict is named only when the caller administers its org; otherwise
    ``claimed_elsewhere`` is true. Writes nothing (org admin)."""
    body = await read_json(request, ClaimCheck)
    return await claims.check_claims(session, org_id=org, node_id=node, routing=body.routing, viewer=principal)
