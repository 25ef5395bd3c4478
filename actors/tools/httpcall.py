"""One HTTP call for the HTTP-API backends, with upstream statuses mapped to typed tool errors.

401 → ``unauthorized``, 403 → ``forbidden``, 404 → ``not_found``, other 4xx → ``bad_request``;
429 and 5xx → :class:`TransientToolError` (``rate_limited`` / ``upstream_unavailable``) carrying
``Retry-After``; transport failures (connect, read timeout, reset) → ``connection_error``.
Upstream error bodies are cut short, so a huge HTML error page never reaches the model.

Every request goes through the egress policy (:mod:`incidentfox.egress`): the URL and each redirect
hop are checked and the connection pinned to the checked address. A refused destination becomes
``egress_refused`` (not retried) naming the host and the reason; nothing is sent to it.
"""

from __future__ import annotations

import functools
import json
import ssl
from typing import Any

import httpx

from actors.tools.base import ToolContext, ToolError, TransientToolError
from incidentfox.egress import EgressRefused
from incidentfox.egress.transport import egress_transport
from incidentfox.tenant_headers import tenant_headers

_ERR_BODY_CHARS = 300


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def raise_for_status(resp: httpx.Response, *, service: str) -> None:
    """Map a non-2xx response to the typed error; return silently on 2xx."""
    code = resp.status_code
    if code < 400:
        return
    detail = f"{service} returned HTTP {code}: {resp.text[:_ERR_BODY_CHARS]}".strip()
    if code == 429:
        raise TransientToolError("rate_limited", detail, retry_after=_retry_after(resp))
    if code >= 500:
        raise TransientToolError("upstream_unavailable", detail, retry_after=_retry_after(resp))
    reason = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(code, "bad_request")
    raise ToolError(reason, detail)


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """One verifying SSL context per process: building one (loading the CA bundle) costs ~10 ms."""
    return httpx.create_ssl_context()


async def request(
    ctx: ToolContext,
    method: str,
    url: str,
    *,
    service: str,
    timeout: float,
    headers: dict[str, str] | None = None,
    params: Any = None,
    json_body: Any = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    verify: bool = True,
) -> httpx.Response:
    """Send one request with a fresh client from ``ctx`` through the context's egress policy;
    return the 2xx response or raise typed."""
    tls = _default_ssl_context() if verify else False
    transport = egress_transport(httpx, policy=ctx.egress, resolver=ctx.resolver, verify=tls)
    try:
        async with ctx.http(timeout=timeout, transport=transport, trust_env=False,
                            follow_redirects=True) as client:
            resp = await client.request(
                method, url, headers=headers, params=params, json=json_body, auth=auth
            )
    except EgressRefused as exc:
        raise ToolError("egress_refused", f"{service}: {exc}") from None
    except httpx.LocalProtocolError:
        # Our own request was refused before it was sent; h11's message quotes the offending header
        # value, which is the team's credential (a key pasted with a newline), so it is not repeated.
        raise ToolError("not_configured", f"{service}: the request could not be sent: a configured header "
                        "or credential holds a character HTTP does not allow (a pasted newline or tab?)") from None
    except httpx.TransportError as exc:
        raise TransientToolError("connection_error", f"{service}: {type(exc).__name__}: {exc}") from exc
    raise_for_status(resp, service=service)
    return resp


async def request_json(
    ctx: ToolContext, method: str, url: str, *, service: str, timeout: float, **kwargs: Any
) -> Any:
    """Like :func:`request`, decoding the JSON body (``upstream_error`` when it is not JSON)."""
    resp = await request(ctx, method, url, service=service, timeout=timeout, **kwargs)
    try:
        return resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ToolError("upstream_error", f"{service} returned a non-JSON body") from exc


def base_url(config: dict[str, Any], *, service: str, key: str = "url", default: str | None = None) -> str:
    """The integration's base URL without a trailing slash (``not_configured`` when missing)."""
    url = config.get(key) or default
    if not url or not isinstance(url, str):
        raise ToolError("not_configured", f"integrations.{service}.{key} is not set")
    return url.rstrip("/")


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def json_endpoint(ctx: ToolContext, integration: str) -> tuple[str, dict[str, Any]]:
    """``(base URL, request keyword arguments)`` for a JSON HTTP API configured in the team's
    ``integrations.<integration>`` block: its auth (:func:`config_auth`), ``Accept: application/json``
    and ``verify_ssl``."""
    config = ctx.integration(integration)
    headers, auth = config_auth(config)
    headers["Accept"] = "application/json"
    return base_url(config, service=integration), {
        "headers": headers, "auth": auth, "verify": bool(config.get("verify_ssl", True))}


def config_auth(config: dict[str, Any]) -> tuple[dict[str, str], tuple[str, str] | None]:
    """``(headers, basic_auth)`` from an integration block's common keys: ``headers`` (extra
    headers, without the names a tenant may not set: :mod:`incidentfox.tenant_headers`), ``token``
    (bearer), ``tenant`` (``X-Scope-OrgID``, Grafana's multi-tenant stacks) and
    ``username``/``password`` (basic)."""
    # Dropped, not refused: the config service refuses them at write, but a stored config may predate that.
    headers = tenant_headers(config.get("headers"))
    headers.update(bearer(config.get("token")))
    if config.get("tenant"):
        headers["X-Scope-OrgID"] = str(config["tenant"])
    auth = (str(config["username"]), str(config.get("password", ""))) if config.get("username") else None
    return headers, auth
