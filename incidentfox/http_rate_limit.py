"""The inbound rate limits as one ASGI middleware, in front of every ``/api`` and ``/webhooks`` app.

:class:`RateLimits` identifies the caller (:mod:`incidentfox.client_identity`: the client IP, with
``X-Forwarded-For`` read only from trusted proxies, and a keyed hash of the bearer token) and asks
the surface's :class:`~incidentfox.rate_limit.SurfaceLimiter`. Over a limit the request is answered
at once, before the app runs and before a byte of its body is read (so a refused webhook is neither
verified nor recorded: the sender retries it later)::

    429  Retry-After: 7
    {"error": {"code": "rate_limited", "message": "too many requests for this token; retry in 7 s",
               "details": {"scope": "token", "retry_after_s": 7}}}

and :data:`incidentfox.metrics.RATE_LIMITED_TOTAL` counts it by surface and scope. The token is
never logged, echoed or used as a key in clear. Install it last (outermost), so it runs before the
bearer pre-check of :mod:`incidentfox.http_limits`: a flood without tokens is refused per IP.

Limits and trusted proxies come from :class:`~incidentfox.settings.Settings`
(``INCIDENTFOX_RATE_LIMIT_*``, ``INCIDENTFOX_TRUSTED_PROXIES``); each app (each Serve replica) has
its own buckets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from incidentfox import metrics
from incidentfox.client_identity import IPNetwork, client_ip, ip_key, parse_trusted_proxies, token_identity
from incidentfox.errors import error_response
from incidentfox.http_limits import route_path
from incidentfox.rate_limit import Rate, SurfaceLimiter
from incidentfox.settings import Settings

log = logging.getLogger("incidentfox.rate_limit")

Surface = Literal["api", "webhooks"]
_WHOSE = {"token": "this token", "ip": "this address"}


def surface_limiter(settings: Settings, surface: Surface) -> SurfaceLimiter:
    """The limiter of ``surface`` as ``settings`` configure it."""
    s = settings
    if surface == "api":
        token = Rate(s.rate_limit_api_token_per_s, s.rate_limit_api_token_burst)
        ip = Rate(s.rate_limit_api_ip_per_s, s.rate_limit_api_ip_burst)
    else:
        token = Rate(s.rate_limit_webhooks_token_per_s, s.rate_limit_webhooks_token_burst)
        ip = Rate(s.rate_limit_webhooks_ip_per_s, s.rate_limit_webhooks_ip_burst)
    return SurfaceLimiter(per_token=token, per_ip=ip, max_keys=s.rate_limit_max_keys)


class RateLimits:
    """ASGI middleware: ``app.add_middleware(RateLimits, surface=…, limiter=…, trusted_proxies=…)``.

    ``path_prefix`` limits only paths (relative to the mount) that start with it: the config
    service is mounted at ``/`` and limits ``/api`` but not ``/health`` or its docs pages.
    ``clock`` is monotonic seconds (tests pass their own)."""

    def __init__(self, app: ASGIApp, *, surface: Surface, limiter: SurfaceLimiter,
                 trusted_proxies: Sequence[IPNetwork] = (), path_prefix: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.surface = surface
        self.limiter = limiter
        self.trusted_proxies = tuple(trusted_proxies)
        self.path_prefix = path_prefix
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or not self.limiter.enabled
                or not route_path(scope).startswith(self.path_prefix)):
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or ()
        peer = (scope.get("client") or (None, 0))[0]
        ip = client_ip(peer, headers, self.trusted_proxies)
        refused = self.limiter.admit(ip=ip_key(ip), token=token_identity(headers), now=self.clock())
        if refused is None:
            await self.app(scope, receive, send)
            return
        seconds = refused.retry_after_s
        metrics.RATE_LIMITED_TOTAL.inc(surface=self.surface, scope=refused.scope)
        # Debug only: a flood of refusals must not become a flood of log lines (the metric counts).
        log.debug("rate limited", extra={"surface": self.surface, "scope": refused.scope})
        response = error_response(
            "rate_limited", f"too many requests for {_WHOSE[refused.scope]}; retry in {seconds} s", 429,
            details={"scope": refused.scope, "retry_after_s": seconds}, headers={"Retry-After": str(seconds)})
        await response(scope, receive, send)


def install_rate_limits(app: Any, *, surface: Surface, settings: Settings, path_prefix: str = "",
                        clock: Callable[[], float] = time.monotonic) -> None:
    """Install :class:`RateLimits` on a Starlette/FastAPI ``app`` with ``settings``' limits (the one
    line per app). Call it after the app's other middleware so it runs first."""
    app.add_middleware(RateLimits, surface=surface, limiter=surface_limiter(settings, surface),
                       trusted_proxies=parse_trusted_proxies(settings.trusted_proxies),
                       path_prefix=path_prefix, clock=clock)
