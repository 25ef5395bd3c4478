"""Tokens: issue org admin and team tokens, list, revoke; mint impersonation tokens (global admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from config_service.api.body import body_doc, read_json
from config_service.api.deps import GlobalAdminDep, OrgAdminDep, SessionDep, SettingsDep
from config_service.api.schemas import ImpersonationCreate, TokenCreate
from config_service.core.impersonation import DEFAULT_AUDIENCE
from config_service.services import tokens
from incidentfox.pagination import LongPageDep, envelope, page_responses

router = APIRouter(prefix="/api/v1/orgs/{org}", tags=["tokens"])


@router.post("/tokens", status_code=201, openapi_extra=body_doc(TokenCreate, required=False))
async def issue_org_token(org: str, request: Request, principal: OrgAdminDep, session: SessionDep,
                          settings: SettingsDep) -> dict:
    """Issue an org admin token ``{org}.{random}``; returns ``{token, token_id, expires_at}`` once (org admin)."""
    body = await read_json(request, TokenCreate, allow_empty=True)
    return await tokens.issue_token(session, settings=settings, org_id=org, label=body.label,
                                    expires_in_s=body.expires_in_s, actor=principal.subject)


@router.post("/teams/{team}/tokens", status_code=201, openapi_extra=body_doc(TokenCreate, required=False))
async def issue_team_token(org: str, team: str, request: Request, principal: OrgAdminDep, session: SessionDep,
                           settings: SettingsDep) -> dict:
    """Issue a team token ``{org}.{team}.{random}`` (org admin)."""
    body = await read_json(request, TokenCreate, allow_empty=True)
    return await tokens.issue_token(session, settings=settings, org_id=org, team_node_id=team, label=body.label,
                                    expires_in_s=body.expires_in_s, actor=principal.subject)


@router.get("/tokens", responses=page_responses("TokenPage"))
async def list_tokens(org: str, principal: OrgAdminDep, session: SessionDep, page: LongPageDep) -> dict:
    """Token metadata, never the tokens, newest first (org admin)."""
    return envelope(await tokens.page_tokens(session, org_id=org, page=page))


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(org: str, token_id: str, principal: OrgAdminDep, session: SessionDep) -> dict:
    """Revoke a token of this org; it is refused (401 ``token_revoked``) from then on (org admin)."""
    return await tokens.revoke_token(session, org_id=org, token_id=token_id, actor=principal.subject)


@router.post("/teams/{team}/impersonation-tokens", status_code=201,
             openapi_extra=body_doc(ImpersonationCreate, required=False))
@router.post("/teams/{team}/impersonation-token", status_code=201, deprecated=True,
             operation_id="impersonation_token_alias", summary="Impersonation Token (older path)",
             openapi_extra=body_doc(ImpersonationCreate, required=False))
async def impersonation_token(org: str, team: str, request: Request, principal: GlobalAdminDep, session: SessionDep,
                              settings: SettingsDep) -> dict:
    """Mint a signed team-scoped token, TTL ≤ 15 min, audience-checked (global admin only)."""
    body = await read_json(request, ImpersonationCreate, allow_empty=True)
    return await tokens.mint_impersonation_token(session, settings=settings, org_id=org, team_node_id=team,
                                                 ttl_s=body.ttl_s, audience=body.audience or DEFAULT_AUDIENCE,
                                                 actor=principal.subject)
