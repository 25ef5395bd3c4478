"""GitHub App authentication, shared by every GitHub App caller (answering back, the revert tool).

GitHub docs ("Generating a JSON Web Token (JWT) for a GitHub App", "Authenticating as a GitHub App
installation"): the App signs a JWT with its private key, RS256, claims ``iat`` (60 s in the past,
for clock drift), ``exp`` (at most 10 minutes after) and ``iss`` (the App id); it trades it at
``POST /app/installations/{installation_id}/access_tokens`` for an installation token that expires
within an hour (``expires_at``). A caller passes its own ``post`` (its HTTP path: egress check,
error mapping) and token cache; a token is reused until a minute before it expires.

The key, the JWT and the token never leave this module except as the ``Authorization`` header of a
request; errors name the config path and the problem, never the value.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any

import jwt

JWT_LIFETIME_S = 540          # GitHub allows 600; less leaves room for clock skew
JWT_BACKDATE_S = 60
TOKEN_MARGIN_S = 60
API_VERSION = "2022-11-28"

# (url, headers) → the decoded JSON body of a POST; raises the caller's own typed error.
Post = Callable[[str, dict[str, str]], Awaitable[Any]]


class GitHubAppError(Exception):
    """``bad_config`` (the key cannot sign) or ``upstream_error`` (no token in the answer)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def app_jwt(*, app_id: int | str, private_key: str, now: float) -> str:
    """The App's RS256 JWT (``bad_config`` when the key is not a usable RSA private key)."""
    claims = {"iat": int(now) - JWT_BACKDATE_S, "exp": int(now) + JWT_LIFETIME_S, "iss": str(app_id)}
    try:
        return jwt.encode(claims, private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.exceptions.PyJWTError):
        raise GitHubAppError("bad_config", "integrations.github.private_key is not a PEM RSA private key") from None


def headers(token: str) -> dict[str, str]:
    return {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
            "Authorization": f"Bearer {token}", "User-Agent": "incidentfox"}


def _expiry(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


async def installation_token(post: Post, cache: MutableMapping[str, Any], *, now: float, api_url: str,
                             app_id: int | str, private_key: str, installation_id: int) -> str:
    """A cached or fresh installation access token."""
    key = f"github:{api_url}:{app_id}:{installation_id}"
    cached = cache.get(key)
    if cached is not None and cached[1] - TOKEN_MARGIN_S > now:
        return str(cached[0])
    body = await post(f"{api_url}/app/installations/{installation_id}/access_tokens",
                      headers(app_jwt(app_id=app_id, private_key=private_key, now=now)))
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise GitHubAppError("upstream_error", "github answered no installation token")
    cache[key] = (token, _expiry(body.get("expires_at")) or now + 3000)
    return token


__all__ = ["GitHubAppError", "app_jwt", "headers", "installation_token"]
