"""Routing: identifier lookup, the routing epoch and the full claim table (global admin only).

Lookups reveal which org owns an identifier across all orgs, so only the platform's own services
(which hold the global admin token: gateway, router) may call them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from config_service.api.body import body_doc, read_json
from config_service.api.deps import GlobalAdminDep, SessionDep
from config_service.api.schemas import RoutingLookup
from config_service.services import routing

router = APIRouter(prefix="/api/v1/routing", tags=["routing"])


@router.post("/lookup", openapi_extra=body_doc(RoutingLookup))
async def lookup(request: Request, principal: GlobalAdminDep, session: SessionDep) -> dict:
    """``{found, org_id, team_node_id, matched_by, matched_value, epoch}``; first match in the order
    slack_channel_id > pagerduty_service_id > incidentio_team_id > alertmanager_receiver > github_repo > service."""
    body = await read_json(request, RoutingLookup)
    return await routing.lookup(session, identifiers=body.identifiers)


@router.get("/epoch")
async def epoch(principal: GlobalAdminDep, session: SessionDep) -> dict:
    """``{epoch}``: changes whenever any routing claim changes; key lookup caches on it."""
    return {"epoch": await routing.get_routing_epoch(session)}


@router.get("/table")
async def table(principal: GlobalAdminDep, session: SessionDep) -> dict:
    """``{epoch, claims: [{kind, value, org_id, team_node_id}]}``, for a router's last good table."""
    return await routing.routing_table(session)
