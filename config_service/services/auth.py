"""Bearer-token authentication: token string → :class:`incidentfox.contracts.Principal`.

Order of checks: the global admin token (``INCIDENTFOX_ADMIN_TOKEN``, constant-time compare), then
impersonation tokens (signature, audience, clock; no database), then stored org/team tokens
(looked up by their HMAC, compared in constant time, the ids embedded in the token must match the
row, then revocation and expiry). Every failure raises :class:`incidentfox.errors.Unauthorized`
(401) with a reason code and never echoes the token. There is no other way in: no header, address
or "internal" flag grants trust.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core.crypto import constant_time_equal, hash_token, settings_pepper
from config_service.core.ids import is_valid_id
from config_service.core.impersonation import (
    DEFAULT_AUDIENCE,
    ImpersonationError,
    is_impersonation_token,
    verify_impersonation,
)
from config_service.db.models import ApiToken
from config_service.services.tokens import impersonation_key
from incidentfox.contracts import Principal
from incidentfox.db import utcnow
from incidentfox.errors import Unauthorized
from incidentfox.settings import Settings

MAX_TOKEN_LEN = 1024
LAST_USED_GRANULARITY = timedelta(seconds=60)  # bounds writes on hot tokens


def _invalid(reason: str = "invalid_token") -> Unauthorized:
    return Unauthorized("invalid or unknown token", code=reason)


async def authenticate(session: AsyncSession, *, token: str | None, settings: Settings,
                       audience: str = DEFAULT_AUDIENCE, now: datetime | None = None) -> Principal:
    """Resolve a bearer token to a principal or raise 401.

    Codes: ``missing_token``, ``invalid_token``, ``token_expired``, ``token_revoked``. For stored
    tokens it records ``last_used_at`` (at most once per minute per token) and commits; call it on
    a session with no pending work.
    """
    if not token:
        raise Unauthorized("missing bearer token", code="missing_token")
    if len(token) > MAX_TOKEN_LEN:
        raise _invalid()
    admin = settings.admin_token.get_secret_value() if settings.admin_token else ""
    if admin and constant_time_equal(token, admin):
        return Principal(auth_kind="global_admin", subject="admin")
    now = now or utcnow()
    if is_impersonation_token(token):
        try:
            claims = verify_impersonation(token, key=impersonation_key(settings), now=now, audience=audience)
        except ImpersonationError as exc:
            code = "token_expired" if exc.reason == "expired" else "invalid_token"
            raise Unauthorized("invalid impersonation token", code=code, details={"reason": exc.reason}) from None
        return Principal(auth_kind="impersonation", org_id=claims.org_id, team_node_id=claims.team_node_id,
                         token_id=claims.jti, subject=f"impersonation:{claims.jti}")
    parts = token.split(".")
    if len(parts) not in (2, 3) or not all(is_valid_id(p) for p in parts[:-1]):
        raise _invalid()
    digest = hash_token(settings_pepper(settings), token)
    row = (await session.execute(select(ApiToken).where(ApiToken.token_hash == digest))).scalar_one_or_none()
    if row is None or not constant_time_equal(row.token_hash, digest):
        raise _invalid()
    team = parts[1] if len(parts) == 3 else None
    if row.org_id != parts[0] or row.team_node_id != team or row.kind != ("team" if team else "org_admin"):
        raise _invalid()
    if row.revoked_at is not None:
        raise Unauthorized("token has been revoked", code="token_revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("token has expired", code="token_expired")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY:
        await session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        await session.commit()
    return Principal(auth_kind=row.kind, org_id=row.org_id, team_node_id=row.team_node_id, token_id=row.id,
                     subject=f"token:{row.id}")
