"""The one way IncidentFox builds a Slack Web API client, and the post/update transport over it.

:func:`slack_client` is an async context manager yielding a ``slack_sdk`` ``AsyncWebClient`` with a
bounded timeout and an explicit retry policy (rate-limited calls wait out ``Retry-After``; connection
errors are retried only when asked). The client's HTTP session is always closed when the block
ends: the client either owns one ``aiohttp`` session for the block, or borrows a session its caller
owns (``session=``, e.g. the investigation actor's), which it never closes.

The bot token lives only inside the client; ``slack_sdk`` redacts the ``Authorization`` header in
its debug log, and nothing here puts the token in a payload, a log line or an event.

:class:`Reporter` is the small post/update interface the throttled messages
(:mod:`actors.slack.throttle`) and the sandbox talk to; :class:`SlackWebReporter` implements it with
one short-lived client per call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.egress.aiohttp_guard import EgressConnector

DEFAULT_BASE_URL = "https://slack.com/api/"
REQUEST_TIMEOUT_S = 10
RATE_LIMIT_RETRIES = 3


def _retry_handlers(rate_limit_retries: int, connection_retries: int) -> list[AsyncRetryHandler]:
    handlers: list[AsyncRetryHandler] = []
    if connection_retries:
        handlers.append(AsyncConnectionErrorRetryHandler(max_retry_count=connection_retries))
    if rate_limit_retries:
        handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries))
    return handlers


@asynccontextmanager
async def slack_client(*, token: str | None, base_url: str = DEFAULT_BASE_URL, timeout_s: int = REQUEST_TIMEOUT_S,
                       rate_limit_retries: int = RATE_LIMIT_RETRIES, connection_retries: int = 0,
                       session: aiohttp.ClientSession | None = None) -> AsyncIterator[AsyncWebClient]:
    """An ``AsyncWebClient`` for the block; its own HTTP session (if it made one) is closed on exit.

    ``rate_limit_retries``: how often a 429 is retried after its ``Retry-After`` (0: never);
    ``connection_retries``: how often a connection error is retried (0: never, the default: most
    callers have their own retry or a deadline); ``session``: a session the caller owns and closes.
    """
    own = session is None
    http = aiohttp.ClientSession() if own else session
    try:
        client = AsyncWebClient(token=token, base_url=base_url, timeout=int(timeout_s), session=http,
                                retry_handlers=_retry_handlers(rate_limit_retries, connection_retries))
        if isinstance(http.connector, EgressConnector):
            # Tenant egress. slack_sdk reads HTTPS_PROXY/HTTP_PROXY itself when it is given no proxy
            # (`proxy=""` counts as none) and sends each request through it, which would let the
            # proxy reach a destination the egress policy never checked; the session's
            # trust_env=False does not stop a per-request `proxy=`.
            client.proxy = None
        yield client
    finally:
        if own:
            await http.close()


class Reporter(Protocol):
    """Posting and editing one Slack message (the throttled messages and the sandbox use this)."""

    async def post(self, channel: str, thread_ts: str | None, text: str,
                   blocks: list[dict[str, Any]] | None) -> str: ...

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None) -> None: ...


class SlackWebReporter:
    """A :class:`Reporter` over ``chat.postMessage`` / ``chat.update``, one closed client per call."""

    def __init__(self, token: str, *, base_url: str = DEFAULT_BASE_URL) -> None:
        self._token = token
        self._base_url = base_url

    def _client(self) -> Any:
        # The throttled message bounds and spaces these calls itself: no rate-limit waits here.
        return slack_client(token=self._token, base_url=self._base_url, rate_limit_retries=0,
                            connection_retries=1)

    def __repr__(self) -> str:   # never the token
        return f"SlackWebReporter(base_url={self._base_url!r})"

    async def post(self, channel: str, thread_ts: str | None, text: str,
                   blocks: list[dict[str, Any]] | None) -> str:
        async with self._client() as client:
            resp = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)
        return str(resp["ts"])

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None) -> None:
        async with self._client() as client:
            await client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
