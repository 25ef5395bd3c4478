"""Who am I: the principal a bearer token resolves to."""

from __future__ import annotations

from fastapi import APIRouter

from config_service.api.deps import PrincipalDep

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.get("/whoami")
async def whoami(principal: PrincipalDep) -> dict:
    """``{auth_kind, org_id, team_node_id, token_id}`` for any valid token."""
    return {"auth_kind": principal.auth_kind, "org_id": principal.org_id,
            "team_node_id": principal.team_node_id, "token_id": principal.token_id}
