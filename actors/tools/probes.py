"""Integration probes: one cheap, read-only request per integration, to "test the connection".

Each probe reuses its tool backend's own base URL and auth (``httpcall.config_auth``,
``datadog.endpoint``, …) against an endpoint that needs the credentials but reads next to nothing
(a build-info, version or identity call), sends it through the egress policy (the URL and every
redirect hop checked, the connection pinned), reads only the status line, and gives up after
``timeout_s``. The result is typed (:class:`incidentfox.integration_probe.ProbeResult`) and never
holds an upstream body or a credential. :func:`prober` packages them for the config app.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from actors.tools import datadog
from actors.tools.base import ToolError
from actors.tools.httpcall import base_url, bearer, config_auth
from incidentfox.egress import EgressRefused, refusal_in
from incidentfox.egress.guard import PolicyLike, Resolver
from incidentfox.egress.transport import egress_transport
from incidentfox.integration_probe import IntegrationProber, ProbeResult, scrub

TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ProbeRequest:
    url: str
    headers: dict[str, str]
    auth: tuple[str, str] | None = None
    params: dict[str, str] | None = None
    verify: bool = True


def _common(path: str, *, key: str = "url", default: str | None = None,
            params: dict[str, str] | None = None) -> Callable[[str, Mapping[str, Any]], ProbeRequest]:
    """A probe of ``path`` under the block's ``key`` URL with its common auth (token, basic, headers)."""

    def build(name: str, block: Mapping[str, Any]) -> ProbeRequest:
        config = dict(block)
        headers, auth = config_auth(config)
        headers["Accept"] = "application/json"
        return ProbeRequest(f"{base_url(config, service=name, key=key, default=default)}{path}", headers, auth,
                            params, bool(config.get("verify_ssl", True)))

    return build


def _elasticsearch(name: str, block: Mapping[str, Any]) -> ProbeRequest:
    req = _common("/")(name, block)
    if block.get("api_key"):
        req.headers["Authorization"] = f"ApiKey {block['api_key']}"
    return req


def _datadog(name: str, block: Mapping[str, Any]) -> ProbeRequest:
    url, headers = datadog.endpoint(dict(block))
    return ProbeRequest(f"{url}/api/v1/validate", headers)


def _github(name: str, block: Mapping[str, Any]) -> ProbeRequest:
    url = base_url(dict(block), service=name, key="api_url", default="https://api.github.com")
    headers = {"Accept": "application/vnd.github+json", **bearer(block.get("token"))}
    return ProbeRequest(f"{url}/rate_limit", headers)


def _pagerduty(name: str, block: Mapping[str, Any]) -> ProbeRequest:
    if not block.get("token"):
        raise ToolError("not_configured", "integrations.pagerduty.token is not set")
    url = base_url(dict(block), service=name, key="api_url", default="https://api.pagerduty.com")
    return ProbeRequest(f"{url}/abilities", {"Accept": "application/vnd.pagerduty+json;version=2",
                                            "Authorization": f"Token token={block['token']}"})


def _incidentio(name: str, block: Mapping[str, Any]) -> ProbeRequest:
    if not block.get("api_key"):
        raise ToolError("not_configured", "integrations.incidentio.api_key is not set")
    url = base_url(dict(block), service=name, key="api_url", default="https://api.incident.io")
    return ProbeRequest(f"{url}/v1/identity", {"Accept": "application/json", **bearer(block["api_key"])})


# integration → how to build its probe request (the endpoint each backend's tools already read).
PROBES: dict[str, Callable[[str, Mapping[str, Any]], ProbeRequest]] = {
    "prometheus": _common("/api/v1/status/buildinfo"),
    "loki": _common("/loki/api/v1/labels"),
    "grafana": _common("/api/search", params={"limit": "1"}),
    "tempo": _common("/api/search/tags"),
    "jaeger": _common("/api/services"),
    "elasticsearch": _elasticsearch,
    "rabbitmq": _common("/api/overview"),
    "argocd": _common("/api/v1/applications", params={"fields": "items.metadata.name"}),
    "datadog": _datadog,
    "github": _github,
    "pagerduty": _pagerduty,
    "incidentio": _incidentio,
}
_STATUS_REASONS = {401: "unauthorized", 403: "forbidden", 404: "not_found"}


def _target(url: str) -> str:
    """The probed path only: every leaf of ``integrations.<name>`` is a secret the API shows as
    ``***``, the URL included, so the result never names the host either."""
    return urlsplit(url).path or "/"


def _secrets(block: Mapping[str, Any]) -> list[str]:
    out = [str(v) for v in block.values() if isinstance(v, str | int) and not isinstance(v, bool)]
    out += [str(v) for v in (block.get("headers") or {}).values()] if isinstance(block.get("headers"), Mapping) else []
    return out


async def probe_integration(name: str, block: Mapping[str, Any], *, policy: PolicyLike | None = None,
                            resolver: Resolver | None = None, timeout_s: float = TIMEOUT_S,
                            transport: httpx.AsyncBaseTransport | None = None) -> ProbeResult:
    """Send ``name``'s probe for the revealed config ``block``; ``KeyError`` for a name without one."""
    build = PROBES[name]
    if not isinstance(block, Mapping):
        return ProbeResult(ok=False, reason="not_configured", detail=f"integrations.{name} is not an object")
    try:
        req = build(name, block)
    except ToolError as exc:
        return ProbeResult(ok=False, reason="not_configured", detail=scrub(exc.message, _secrets(block)))
    target = _target(req.url)
    transport = transport or egress_transport(httpx, policy=policy, resolver=resolver, verify=req.verify)
    started = time.perf_counter()
    try:
        client = httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=True, timeout=timeout_s)
        async with asyncio.timeout(timeout_s), client, client.stream(
                "GET", req.url, headers=req.headers, auth=req.auth, params=req.params) as resp:
            code = resp.status_code     # the status line is the answer; the body is never read
    except TimeoutError:
        return ProbeResult(ok=False, reason="timeout", detail=f"no answer within {timeout_s:g} s", target=target)
    except (EgressRefused, httpx.TransportError) as exc:
        refused = refusal_in(exc)
        if refused is not None:
            return ProbeResult(ok=False, reason="egress_refused", target=target,
                               detail=f"the platform's egress policy refused the destination ({refused.reason.value})")
        reason = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
        return ProbeResult(ok=False, reason=reason, detail=f"could not reach {name}: {type(exc).__name__}",
                           target=target)
    latency = round((time.perf_counter() - started) * 1000)
    if 200 <= code < 300:
        return ProbeResult(ok=True, detail=f"{name} answered HTTP {code}", latency_ms=latency, status_code=code,
                           target=target)
    return ProbeResult(ok=False, reason=_STATUS_REASONS.get(code, "http_error"), latency_ms=latency,
                       status_code=code, target=target, detail=f"{name} answered HTTP {code}")


def prober(*, policy: PolicyLike | None = None, resolver: Resolver | None = None,
           timeout_s: float = TIMEOUT_S) -> IntegrationProber:
    """The probes as the config app takes them (``policy`` defaults to the process's egress policy)."""

    async def run(name: str, block: Mapping[str, Any]) -> ProbeResult:
        return await probe_integration(name, block, policy=policy, resolver=resolver, timeout_s=timeout_s)

    return IntegrationProber(frozenset(PROBES), run)
