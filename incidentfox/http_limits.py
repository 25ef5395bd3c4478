"""Cheap rejection for every HTTP API: a body cap and a bearer pre-check, before the app runs.

:class:`RequestLimits` is one ASGI middleware installed in front of each API app (agent, reports,
sandbox, knowledge, config service). For every HTTP request, in this order, it:

1. **Checks the bearer token's shape** on every path not in ``public_paths``: a request without
   ``Authorization: Bearer <token>`` (one token of 1..1024 visible ASCII characters) is answered
   ``401`` (``missing_token`` / ``invalid_token``, with ``WWW-Authenticate: Bearer``) *before a
   byte of its body is read*. This is only the shape: whether the token is valid is the app's
   authentication (``config_service.api.deps.PrincipalDep``), which still runs. An attacker without
   a token therefore costs neither a body read nor a database lookup.
2. **Refuses a NUL character** in the path or the query string (raw or as ``%00``) with ``400``
   (``malformed_request``). No identifier, cursor or filter holds one, and PostgreSQL cannot store
   or compare text holding one: without this check such a value reached the database as an error.
3. **Caps the body**: a declared ``Content-Length`` over ``max_body`` is answered ``413`` at once
   (also before reading); a body without one (chunked) is counted as it streams and refused as soon
   as it crosses the cap. The 413 names the limit: ``{"error": {"code": "payload_too_large",
   "details": {"max_bytes": N}}}``. A ``Content-Length`` that is not a number is ``400``.

Paths are compared relative to the app's mount (``root_path`` removed), so one table serves both
in-process test clients and the Serve ingress at ``/api/v1/...``. The middleware is pure ASGI: no
request object, no buffering, and it never consumes ``receive`` itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from incidentfox.errors import PayloadTooLarge, error_response

MAX_BODY_BYTES = 1024 * 1024       # the config service (config documents)
AGENT_MAX_BODY = 64 * 1024         # POST /run: text ≤ 4000 chars plus small lists
REPORTS_MAX_BODY = 8 * 1024        # read-only API: nothing legitimate sends a body
SANDBOX_MAX_BODY = 256 * 1024      # a prompt or a tool answer, not a file upload
MAX_TOKEN_LEN = 1024               # config_service.services.auth.MAX_TOKEN_LEN


class BodyTooLarge(PayloadTooLarge, HTTPException):
    """Raised from ``receive`` when a streamed body crosses the cap.

    Also a Starlette ``HTTPException`` because FastAPI turns any other exception raised while it
    reads a body into a 400; its exception-handler lookup (by MRO) still finds the typed
    :class:`~incidentfox.errors.IncidentFoxError` handler first, which renders the shared shape."""

    def __init__(self, message: str, *, details: dict[str, Any]) -> None:
        PayloadTooLarge.__init__(self, message, code="payload_too_large", details=details)
        self.status_code, self.detail, self.headers = 413, message, None


def bearer_shape_error(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """``None`` when the headers carry one well-formed ``Authorization: Bearer <token>``, else the
    401 reason (``missing_token`` or ``invalid_token``). Pure: reads only the given headers."""
    values = [v for k, v in headers if k.lower() == b"authorization"]
    if not values:
        return "missing_token"
    if len(values) > 1:
        return "invalid_token"
    scheme, _, token = values[0].strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token or len(token) > MAX_TOKEN_LEN:
        return "invalid_token"
    if any(c <= 0x20 or c >= 0x7F for c in token):
        return "invalid_token"
    return None


def has_nul(scope: Scope) -> bool:
    """Whether the request's path or query string holds a NUL character, raw or percent-encoded.
    Pure: reads only ``scope``."""
    raw_path = scope.get("raw_path") or b""
    return ("\x00" in scope.get("path", "") or b"\x00" in unquote_to_bytes(raw_path)
            or b"\x00" in unquote_to_bytes(scope.get("query_string") or b""))


def route_path(scope: Scope) -> str:
    """The request path relative to the app's mount point."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path or "/"


class RequestLimits:
    """ASGI middleware: ``app.add_middleware(RequestLimits, max_body=…, public_paths={…})``.

    ``public_paths``: exact paths (relative to the mount) that need no token (health, docs).
    ``require_bearer=False`` turns the token pre-check off (an app whose every route is public).
    """

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY_BYTES,
                 public_paths: Iterable[str] = (), require_bearer: bool = True) -> None:
        if max_body < 0:
            raise ValueError("max_body must be ≥ 0")
        self.app = app
        self.max_body = max_body
        self.public_paths = frozenset(public_paths)
        self.require_bearer = require_bearer

    def _too_large(self) -> BodyTooLarge:
        return BodyTooLarge(f"request body exceeds the limit of {self.max_body} bytes",
                            details={"max_bytes": self.max_body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or ()
        if self.require_bearer and route_path(scope) not in self.public_paths:
            reason = bearer_shape_error(headers)
            if reason is not None:
                message = ("missing bearer token" if reason == "missing_token"
                           else "Authorization header must be 'Bearer <token>'")
                await error_response(reason, message, 401,
                                     headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        if has_nul(scope):
            await error_response("malformed_request", "the request path or query string contains a NUL "
                                 "character", 400)(scope, receive, send)
            return
        declared = [v for k, v in headers if k.lower() == b"content-length"]
        if declared:
            text = declared[0].strip()
            if len(declared) > 1 or not text.isdigit():
                await error_response("malformed_request", "Content-Length is not a number",
                                     400)(scope, receive, send)
                return
            if int(text) > self.max_body:
                exc = self._too_large()
                await error_response(exc.code, exc.message, exc.status, exc.details)(scope, receive, send)
                return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise self._too_large()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            # Apps with install_error_handlers answer this themselves; others land here.
            if started:
                raise
            await error_response(exc.code, exc.message, exc.status, exc.details)(scope, receive, send)


def install_request_limits(app: Any, *, max_body: int, public_paths: Iterable[str] = (),
                           require_bearer: bool = True) -> None:
    """Install :class:`RequestLimits` on a Starlette/FastAPI ``app`` (the one line per API)."""
    app.add_middleware(RequestLimits, max_body=max_body, public_paths=tuple(public_paths),
                       require_bearer=require_bearer)
