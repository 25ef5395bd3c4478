"""API tokens: org admin (``{org}.{random}``), team (``{org}.{team}.{random}``) and impersonation.

The random part is 256 bits (``secrets.token_urlsafe(32)``). Only HMAC-SHA256(pepper, token) is
stored; the token is returned once, at issue. Issue, revoke and impersonation mints are audited.
Impersonation tokens are signed and stateless (:mod:`config_service.core.impersonation`): minted
by the global admin for one team, TTL at most 15 minutes, audience checked on use.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core.crypto import derive_key, hash_token, new_token_secret, settings_pepper
from config_service.core.ids import require_id
from config_service.core.impersonation import DEFAULT_AUDIENCE, MAX_TTL_S, sign_impersonation
from config_service.core.jsondoc import check_string
from config_service.db.models import ApiToken
from config_service.services import audit
from config_service.services.nodes import get_node
from config_service.services.orgs import get_org
from config_service.services.tx import rolls_back_on_error
from incidentfox.db import utcnow
from incidentfox.errors import NotFound, Unprocessable
from incidentfox.pagination import Page, PageRequest, fetch_page
from incidentfox.settings import Settings

MAX_TOKEN_TTL_S = 10 * 365 * 24 * 3600
TOKEN_ID_RE = re.compile(r"^tok_[0-9a-f]{1,36}$")
IMPERSONATION_KEY_PURPOSE = "impersonation:v1"


def token_dict(row: ApiToken) -> dict[str, Any]:
    iso = lambda d: d.isoformat() if d else None
    return {"token_id": row.id, "kind": row.kind, "org_id": row.org_id, "team_node_id": row.team_node_id,
            "label": row.label, "created_by": row.created_by, "created_at": iso(row.created_at),
            "expires_at": iso(row.expires_at), "revoked_at": iso(row.revoked_at),
            "last_used_at": iso(row.last_used_at)}


async def _team(session: AsyncSession, *, org_id: str, team_node_id: str):
    node = await get_node(session, org_id=org_id, node_id=team_node_id)
    if node.kind != "team":
        raise Unprocessable(f"node {team_node_id!r} is a {node.kind}, not a team", code="not_a_team",
                            details={"node_id": team_node_id})
    return node


@rolls_back_on_error
async def issue_token(session: AsyncSession, *, settings: Settings, org_id: str, actor: str,
                      team_node_id: str | None = None, label: str = "",
                      expires_in_s: int | None = None) -> dict[str, Any]:
    """Issue an org admin token (``team_node_id`` None) or a team token. Commits.

    Returns ``{token, token_id, expires_at, kind, org_id, team_node_id}``; ``token`` is shown only here.
    """
    await get_org(session, org_id=org_id)
    if team_node_id is not None:
        await _team(session, org_id=org_id, team_node_id=team_node_id)
    if expires_in_s is not None and not (isinstance(expires_in_s, int) and 0 < expires_in_s <= MAX_TOKEN_TTL_S):
        raise Unprocessable(f"expires_in_s must be within 1..{MAX_TOKEN_TTL_S}", code="invalid_expiry")
    if not isinstance(label, str) or len(label) > 200:
        raise Unprocessable("label must be a string of at most 200 characters", code="invalid_label")
    check_string(label)
    token = ".".join(p for p in (org_id, team_node_id, new_token_secret()) if p)
    now = utcnow()
    row = ApiToken(id="tok_" + secrets.token_hex(10), org_id=org_id, team_node_id=team_node_id,
                   kind="team" if team_node_id else "org_admin", token_hash=hash_token(settings_pepper(settings), token),
                   label=label, created_by=actor[:128], created_at=now,
                   expires_at=now + timedelta(seconds=expires_in_s) if expires_in_s else None)
    session.add(row)
    audit.record(session, org_id=org_id, actor=actor, action="token.issue", target=f"token:{row.id}",
                 diff={"kind": row.kind, "team_node_id": team_node_id, "label": label,
                       "expires_at": row.expires_at.isoformat() if row.expires_at else None})
    await session.commit()
    return {"token": token, "token_id": row.id, "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "kind": row.kind, "org_id": org_id, "team_node_id": team_node_id}


@rolls_back_on_error
async def revoke_token(session: AsyncSession, *, org_id: str, token_id: str, actor: str) -> dict[str, Any]:
    """Revoke a token of ``org_id`` (idempotent: revoking twice keeps the first time). Commits."""
    require_id(org_id, field="org_id")
    valid = isinstance(token_id, str) and TOKEN_ID_RE.fullmatch(token_id) is not None
    row = await session.get(ApiToken, token_id) if valid else None
    if row is None or row.org_id != org_id:
        raise NotFound("token not found in this org", code="token_not_found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, org_id=org_id, actor=actor, action="token.revoke", target=f"token:{row.id}",
                     diff={"kind": row.kind, "team_node_id": row.team_node_id})
        await session.commit()
    return token_dict(row)


async def list_tokens(session: AsyncSession, *, org_id: str) -> list[dict[str, Any]]:
    """Token metadata (never the token or its hash), newest first."""
    require_id(org_id, field="org_id")
    rows = (await session.scalars(
        select(ApiToken).where(ApiToken.org_id == org_id).order_by(ApiToken.created_at.desc())
    )).all()
    return [token_dict(r) for r in rows]


async def page_tokens(session: AsyncSession, *, org_id: str, page: PageRequest) -> Page[dict[str, Any]]:
    """:func:`list_tokens` one page at a time (newest first, then by id)."""
    require_id(org_id, field="org_id")
    rows = await fetch_page(session, select(ApiToken).where(ApiToken.org_id == org_id),
                            order=[(ApiToken.created_at, True), (ApiToken.id, True)], page=page)
    return Page([token_dict(r) for r in rows.items], rows.next_cursor)


def impersonation_key(settings: Settings) -> bytes:
    return derive_key(settings_pepper(settings), IMPERSONATION_KEY_PURPOSE)


@rolls_back_on_error
async def mint_impersonation_token(session: AsyncSession, *, settings: Settings, org_id: str, team_node_id: str,
                                   actor: str, ttl_s: int | None = None, audience: str = DEFAULT_AUDIENCE,
                                   now: datetime | None = None) -> dict[str, Any]:
    """Mint a signed team-scoped token (TTL ≤ 15 min; default ``settings.impersonation_ttl_s``). Commits
    the audit entry. Returns ``{token, token_id, expires_at, org_id, team_node_id, audience}``.

    Callers (the orchestrator) mint one per event and mint again rather than hold one longer.
    """
    await _team(session, org_id=org_id, team_node_id=team_node_id)
    ttl = settings.impersonation_ttl_s if ttl_s is None else ttl_s
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TTL_S:
        raise Unprocessable(f"ttl_s must be within 1..{MAX_TTL_S}", code="invalid_ttl")
    if not isinstance(audience, str) or not 0 < len(audience) <= 64:
        raise Unprocessable("audience must be a short non-empty string", code="invalid_audience")
    token, claims = sign_impersonation(key=impersonation_key(settings), org_id=org_id, team_node_id=team_node_id,
                                       ttl_s=ttl, now=now or utcnow(), audience=audience)
    audit.record(session, org_id=org_id, actor=actor, action="token.impersonate", target=f"token:{claims.jti}",
                 diff={"team_node_id": team_node_id, "audience": audience,
                       "expires_at": claims.expires_at.isoformat()})
    await session.commit()
    return {"token": token, "token_id": claims.jti, "expires_at": claims.expires_at.isoformat(), "org_id": org_id,
            "team_node_id": team_node_id, "audience": audience}
