"""GitHub App authentication for answering back: :mod:`incidentfox.github_app` (the one App client)
over the answer-back HTTP path (:func:`~actors.answerback.http.send`: egress, classification).

Tokens are cached in the :class:`~actors.answerback.http.Outbound` cache; the engine makes one
``Outbound`` per run, so a token never outlives the run that fetched it.
"""

from __future__ import annotations

from typing import Any

from actors.answerback.http import AnswerError, Outbound, json_of, send
from incidentfox import github_app as app
from incidentfox.github_app import headers


def app_jwt(*, app_id: int | str, private_key: str, now: float) -> str:
    """The App's RS256 JWT (``AnswerError("bad_config")`` when the key cannot sign)."""
    try:
        return app.app_jwt(app_id=app_id, private_key=private_key, now=now)
    except app.GitHubAppError as exc:
        raise AnswerError(exc.reason, exc.message) from None


async def installation_token(out: Outbound, *, api_url: str, app_id: int | str, private_key: str,
                             installation_id: int) -> str:
    """A cached or fresh installation access token."""
    async def post(url: str, hdrs: dict[str, str]) -> Any:
        # One try: the caller's retry covers the token request and the call it authorises alike.
        return json_of(await send(out, "POST", url, service="github", headers=hdrs), service="github")

    try:
        return await app.installation_token(post, out.cache, now=out.clock(), api_url=api_url, app_id=app_id,
                                            private_key=private_key, installation_id=installation_id)
    except app.GitHubAppError as exc:
        raise AnswerError(exc.reason, exc.message) from None


__all__ = ["app_jwt", "headers", "installation_token"]
