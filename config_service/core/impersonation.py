"""Short-lived, signed, team-scoped impersonation tokens (pure: key and clock are passed in).

Format: ``imp_v1.<b64url(json claims)>.<b64url(HMAC-SHA256(key, "imp_v1." + claims))>``. The
``imp_v1`` prefix holds an underscore, which no org id may contain, so an impersonation token can
never be mistaken for an org or team token. Claims: ``org``, ``team``, ``aud``, ``iat``, ``exp``,
``jti``. Verification checks the signature in constant time, then the audience, then the clock,
and refuses lifetimes over :data:`MAX_TTL_S` even when correctly signed.

They are stateless: nothing is stored per token, so they cannot be revoked one by one; they expire
within 15 minutes, and rotating the token pepper invalidates all of them at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from config_service.core.ids import is_valid_id

PREFIX = "imp_v1"
DEFAULT_AUDIENCE = "incidentfox"
MAX_TTL_S = 900
_CLOCK_SKEW_S = 30


class ImpersonationError(ValueError):
    """Verification failed; ``reason`` is a snake_case code (never includes the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImpersonationClaims:
    org_id: str
    team_node_id: str
    audience: str
    issued_at: datetime
    expires_at: datetime
    jti: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, signing_input: str) -> bytes:
    return hmac.new(key, signing_input.encode(), hashlib.sha256).digest()


def is_impersonation_token(token: str) -> bool:
    return token.startswith(PREFIX + ".")


def sign_impersonation(*, key: bytes, org_id: str, team_node_id: str, ttl_s: int, now: datetime,
                       audience: str = DEFAULT_AUDIENCE, jti: str | None = None) -> tuple[str, ImpersonationClaims]:
    """Mint a token valid for ``ttl_s`` seconds (1..900) from ``now``."""
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be within 1..{MAX_TTL_S}")
    iat = int(now.timestamp())
    claims = {"org": org_id, "team": team_node_id, "aud": audience, "iat": iat, "exp": iat + ttl_s,
              "jti": jti or "imp_" + secrets.token_hex(8)}
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{PREFIX}.{body}"
    token = f"{signing_input}.{_b64(_sign(key, signing_input))}"
    return token, _claims(claims)


def _claims(c: dict) -> ImpersonationClaims:
    return ImpersonationClaims(
        org_id=c["org"], team_node_id=c["team"], audience=c["aud"], jti=c["jti"],
        issued_at=datetime.fromtimestamp(c["iat"], UTC),
        expires_at=datetime.fromtimestamp(c["exp"], UTC),
    )


def verify_impersonation(token: str, *, key: bytes, now: datetime,
                         audience: str = DEFAULT_AUDIENCE) -> ImpersonationClaims:
    """Return the claims of a valid token or raise :class:`ImpersonationError`."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise ImpersonationError("malformed")
    signing_input = f"{parts[0]}.{parts[1]}"
    try:
        signature = _unb64(parts[2])
    except (ValueError, TypeError):
        raise ImpersonationError("malformed") from None
    # Only the canonical encoding is accepted: base64 decoders ignore stray characters and the
    # unused low bits of the last one, which would let several strings carry one signature.
    if _b64(signature) != parts[2] or not hmac.compare_digest(signature, _sign(key, signing_input)):
        raise ImpersonationError("bad_signature")
    try:
        raw = json.loads(_unb64(parts[1]))
        iat, exp = int(raw["iat"]), int(raw["exp"])
        org, team, aud, jti = raw["org"], raw["team"], raw["aud"], raw["jti"]
    except (ValueError, TypeError, KeyError):
        raise ImpersonationError("malformed") from None
    if not (is_valid_id(org) and is_valid_id(team) and isinstance(jti, str) and isinstance(aud, str)):
        raise ImpersonationError("malformed")
    if not hmac.compare_digest(aud.encode(), audience.encode()):
        raise ImpersonationError("wrong_audience")
    if exp - iat > MAX_TTL_S or exp <= iat:
        raise ImpersonationError("ttl_too_long")
    ts = now.timestamp()
    if ts >= exp:
        raise ImpersonationError("expired")
    if iat > ts + _CLOCK_SKEW_S:
        raise ImpersonationError("not_yet_valid")
    return _claims(raw)
