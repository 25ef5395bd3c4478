"""Node config: merge-patch writes, raw/effective reads, history and rollback; a team's own config;
the config's JSON Schema."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Query, Request

from config_service.api.body import body_doc, read_body_json, read_json
from config_service.api.deps import (
    OrgAdminDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    TeamPrincipalDep,
    TeamReaderDep,
)
from config_service.api.schemas import CONFIG_PATCH_SCHEMA, Rollback
from config_service.services import config as svc
from config_service.services.claims import redact_conflict
from config_service.services.orgs import org_epoch
from config_service.team_config import team_config_schema
from incidentfox.errors import Conflict
from incidentfox.pagination import PageDep, page_responses

router = APIRouter(prefix="/api/v1", tags=["config"])
NODE = "/orgs/{org}/nodes/{node}/config"


@router.patch(NODE, openapi_extra=body_doc(CONFIG_PATCH_SCHEMA))
async def patch_config(org: str, node: str, request: Request, principal: OrgAdminDep, session: SessionDep,
                       settings: SettingsDep) -> dict:
    """Apply an RFC 7396 merge patch (``null`` removes an override); stores the next version (org admin).

    409 ``path_locked`` names the path and the locking node; 409 ``routing_conflict`` names the owner
    when the caller administers the owner's org, else says ``claimed_elsewhere``.
    """
    patch = await read_body_json(request)
    try:
        return await svc.patch_config(session, settings=settings, org_id=org, node_id=node, patch=patch,
                                      actor=principal.subject)
    except Conflict as exc:
        raise redact_conflict(exc, principal) from None


@router.get(NODE + "/raw")
async def get_raw(org: str, node: str, principal: OrgAdminDep, session: SessionDep) -> dict:
    """The node's own config and version, secrets masked (org admin)."""
    return await svc.get_raw_config(session, org_id=org, node_id=node)


@router.get(NODE + "/effective")
async def get_effective(org: str, node: str, principal: TeamReaderDep, session: SessionDep,
                        explain: bool = False) -> dict:
    """Defaults ← org ← units ← node, secrets masked. ``explain=true`` adds ``sources`` (leaf path →
    node that set it) and ``locks`` (locked path → node). Org admin, or the team's own token."""
    return await _effective(session, org, node, explain)


async def _effective(session, org: str, node: str, explain: bool) -> dict:
    if explain:
        epoch = await org_epoch(session, org_id=org)
        return {"org_id": org, "node_id": node, "epoch": epoch,
                **await svc.explain_effective_config(session, org_id=org, node_id=node)}
    epoch, config = await svc.effective_config_with_epoch(session, org_id=org, node_id=node)
    return {"org_id": org, "node_id": node, "epoch": epoch, "config": config}


@router.get(NODE + "/history", responses=page_responses("ConfigHistoryPage"))
async def get_history(org: str, node: str, principal: OrgAdminDep, session: SessionDep, page: PageDep,
                      before: int | None = Query(None, ge=0, le=2**31 - 1,
                                                 description="older paging: versions below this one")) -> dict:
    """Versions newest first with masked diffs; page with ``cursor=<next_cursor>`` (or, as before,
    ``before=<next_before>``) (org admin)."""
    return await svc.get_history(session, org_id=org, node_id=node, page=page, before=before)


@router.post(NODE + "/rollback", openapi_extra=body_doc(Rollback))
async def rollback(org: str, node: str, request: Request, principal: OrgAdminDep, session: SessionDep,
                   settings: SettingsDep) -> dict:
    """Restore version N's config as a new version (org admin)."""
    body = await read_json(request, Rollback)
    try:
        return await svc.rollback_config(session, settings=settings, org_id=org, node_id=node, version=body.version,
                                         actor=principal.subject)
    except Conflict as exc:
        raise redact_conflict(exc, principal) from None


@router.get("/team/config")
async def team_config(principal: TeamPrincipalDep, session: SessionDep, explain: bool = False) -> dict:
    """The caller's own team's effective config (team or impersonation token)."""
    org, team = principal.org_id, principal.team_node_id
    return await _effective(session, org, team, explain)


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return team_config_schema()


@router.get("/config/schema")
async def config_schema(principal: PrincipalDep) -> dict:
    """The team config's JSON Schema: every key with its type, constraints, default and description
    (the model every config write is validated against). Any valid token: it holds no secrets and no
    tenant data, only the shape; the token requirement keeps the API's one rule (only ``/health`` and
    the OpenAPI docs are public)."""
    return copy.deepcopy(_schema())
