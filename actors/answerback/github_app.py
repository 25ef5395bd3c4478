"""GitHub App authentication: the App's JWT and installation access tokens.

GitHub docs ("Generating a JSON Web Token (JWT) for a GitHub App", "Authenticating as a GitHub App
installation"): the App signs a JWT with its private key, RS256, claims ``iat`` (60 s in the past,
for clock drift), ``exp`` (at most 10 minutes after) and ``iss`` (the App id); it trades it at
``POST /app/installations/{installation_id}/access_tokens`` for an installation token that expires
within an hour (``expires_at``). Tokens are cached per (API, App, installation) in the
:class:`~actors.answerback.http.Outbound` cache until a minute before they expire; the engine makes
one ``Outbound`` per run, so a token never outlives the run that fetched it.

The key, the JWT and the token never leave this module except as the ``Authorization`` header of
a request; errors name the config path and the problem, never the value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jwt

from actors.answerback.http import AnswerError, Outbound, json_of, send

JWT_LIFETIME_S = 540          # GitHub allows 600; less leaves room for clock skew
JWT_BACKDATE_S = 60
TOKEN_MARGIN_S = 60
API_VERSION = "2022-11-28"


def app_jwt(*, app_id: int | str, private_key: str, now: float) -> str:
    """The App's RS256 JWT (``bad_config`` when the key is not a usable RSA private key)."""
    claims = {"iat": int(now) - JWT_BACKDATE_S, "exp": int(now) + JWT_LIFETIME_S, "iss": str(app_id)}
    try:
        return jwt.encode(claims, private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.exceptions.PyJWTError):
        raise AnswerError("bad_config", "integrations.github.private_key is not a PEM RSA private key") from None


def headers(token: str) -> dict[str, str]:
    return {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
            "Authorization": f"Bearer {token}", "User-Agent": "incidentfox"}


def _expiry(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


async def installation_token(out: Outbound, *, api_url: str, app_id: int | str, private_key: str,
                             installation_id: int) -> str:
    """A cached or fresh installation access token."""
    key = f"github:{api_url}:{app_id}:{installation_id}"
    cached = out.cache.get(key)
    if cached is not None and cached[1] - TOKEN_MARGIN_S > out.clock():
        return str(cached[0])

    # One try: the caller's retry covers the token request and the call it authorises alike.
    resp = await send(out, "POST", f"{api_url}/app/installations/{installation_id}/access_tokens",
                      service="github", headers=headers(app_jwt(app_id=app_id, private_key=private_key,
                                                                 now=out.clock())))
    body = json_of(resp, service="github")
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise AnswerError("upstream_error", "github answered no installation token")
    out.cache[key] = (token, _expiry(body.get("expires_at")) or out.clock() + 3000)
    return token


__all__ = ["app_jwt", "headers", "installation_token"]
