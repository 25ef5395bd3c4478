"""Egress-checked HTTP for answering back, with rate-limit-aware, bounded retries.

Every request goes through the egress policy (:func:`incidentfox.egress.transport.egress_transport`:
the destination checked and the address pinned, redirects included), like the tool backends'.
A response is classified once (:func:`classify`):

* 2xx → the response;
* 429, and GitHub's rate limits (403 with ``Retry-After`` or ``x-ratelimit-remaining: 0``) →
  :class:`AnswerError` ``rate_limited``, transient, with the wait the server asked for
  (``Retry-After`` seconds, else ``x-ratelimit-reset`` minus now);
* 5xx and transport failures → transient ``upstream_unavailable`` / ``connection_error``;
* anything else → permanent (``unauthorized``, ``forbidden``, ``not_found``, ``bad_request``).

:func:`with_retries` retries transient errors with :func:`incidentfox.retry.backoff` (jittered,
``attempts`` calls at most), honouring the server's wait; a wait longer than ``max_wait_s`` is not
slept through: the error is raised at once (the record says ``rate_limited``). Error messages hold
the status and a short, secret-free body excerpt, never a request header.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from tenacity import AsyncRetrying

from incidentfox.egress import EgressRefused
from incidentfox.egress.guard import PolicyLike, Resolver
from incidentfox.egress.transport import egress_transport
from incidentfox.retry import backoff

T = TypeVar("T")
_BODY_CHARS = 200


class AnswerError(Exception):
    """A failed answer: a snake_case ``reason`` (``bad_config``, ``rate_limited``, ``forbidden`` …),
    a one-line ``message`` without secrets, and whether a retry may succeed."""

    def __init__(self, reason: str, message: str = "", *, transient: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason
        self.transient = transient
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}" if self.message != self.reason else self.reason


@dataclass(kw_only=True)
class Outbound:
    """How answers reach the outside: the egress policy (None: the process's), a resolver and a client
    factory (tests), the clock, and the retry bounds."""

    egress: PolicyLike | None = None
    resolver: Resolver | None = None
    client_factory: Callable[..., httpx.AsyncClient] = httpx.AsyncClient
    clock: Callable[[], float] = time.time
    timeout_s: float = 20.0
    attempts: int = 4
    first_s: float = 0.5
    max_wait_s: float = 30.0
    verify: bool = True
    cache: dict[str, Any] = field(default_factory=dict)   # e.g. GitHub installation tokens

    def __repr__(self) -> str:   # the cache holds tokens
        return f"Outbound(attempts={self.attempts}, max_wait_s={self.max_wait_s})"


@functools.cache
def _ssl_context() -> Any:
    return httpx.create_ssl_context()


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def classify(resp: httpx.Response, *, service: str, now: float) -> None:
    """Raise the typed error for a non-2xx response (see the module docstring); return on 2xx."""
    code = resp.status_code
    if code < 300:
        return
    detail = f"{service} answered HTTP {code}: {resp.text[:_BODY_CHARS]}".replace("\n", " ").strip()
    retry_after = _number(resp.headers.get("retry-after"))
    if retry_after is None and resp.headers.get("x-ratelimit-remaining") == "0":
        reset = _number(resp.headers.get("x-ratelimit-reset"))
        retry_after = max(0.0, reset - now) if reset is not None else None
    if code == 429 or (code == 403 and retry_after is not None):
        raise AnswerError("rate_limited", detail, transient=True, retry_after=retry_after)
    if code >= 500:
        raise AnswerError("upstream_unavailable", detail, transient=True, retry_after=retry_after)
    reason = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(code, "bad_request")
    raise AnswerError(reason, detail)


async def send(out: Outbound, method: str, url: str, *, service: str, headers: dict[str, str],
               json_body: Any = None, params: dict[str, Any] | None = None) -> httpx.Response:
    """One request through the egress policy; the 2xx response, or :class:`AnswerError`."""
    transport = egress_transport(httpx, policy=out.egress, resolver=out.resolver,
                                 verify=_ssl_context() if out.verify else False)
    try:
        async with out.client_factory(timeout=out.timeout_s, transport=transport, trust_env=False,
                                      follow_redirects=True) as client:
            resp = await client.request(method, url, headers=headers, json=json_body, params=params)
    except EgressRefused as exc:
        raise AnswerError("egress_refused", f"{service}: {exc}") from None
    except httpx.TransportError as exc:
        raise AnswerError("connection_error", f"{service}: {type(exc).__name__}", transient=True) from None
    classify(resp, service=service, now=out.clock())
    return resp


def json_of(resp: httpx.Response, *, service: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise AnswerError("upstream_error", f"{service} answered a non-JSON body") from None


async def with_retries(out: Outbound, op: Callable[[int], Awaitable[T]]) -> T:
    """``await op(attempt)`` (1-based), retrying transient errors within ``out``'s bounds; a
    server-requested wait longer than ``out.max_wait_s`` ends the retries at once."""

    def retryable(exc: BaseException) -> bool:
        return (isinstance(exc, AnswerError) and exc.transient
                and (exc.retry_after is None or exc.retry_after <= out.max_wait_s))

    def hint(exc: BaseException) -> float | None:
        return exc.retry_after if isinstance(exc, AnswerError) else None

    attempt = 0
    async for trying in AsyncRetrying(**backoff(retry_on=retryable, attempts=out.attempts, first_s=out.first_s,
                                                max_s=out.max_wait_s, wait_hint=hint)):
        with trying:
            attempt += 1
            return await op(attempt)
    raise AssertionError("unreachable: tenacity re-raises the last error")   # pragma: no cover
