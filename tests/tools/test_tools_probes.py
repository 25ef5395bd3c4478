"""Integration probes ("test connection") against a local server speaking each API's probe path:
the request each backend's auth builds, typed outcomes, the egress policy, and no secret echoed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from actors.tools.probes import PROBES, probe_integration, prober
from incidentfox.egress import EgressPolicy

LOCAL = EgressPolicy.build(allow=["127.0.0.1"])
SECRET = "s3cret-value-123"

# integration → (block keys besides the URL, the probed path, the header that carries the credential)
CASES: dict[str, tuple[dict[str, Any], str, tuple[str, str]]] = {
    "prometheus": ({"token": SECRET}, "/api/v1/status/buildinfo", ("Authorization", f"Bearer {SECRET}")),
    "loki": ({"token": SECRET, "tenant": "t1"}, "/loki/api/v1/labels", ("Authorization", f"Bearer {SECRET}")),
    "grafana": ({"token": SECRET}, "/api/search", ("Authorization", f"Bearer {SECRET}")),
    "tempo": ({"token": SECRET}, "/api/search/tags", ("Authorization", f"Bearer {SECRET}")),
    "jaeger": ({"token": SECRET}, "/api/services", ("Authorization", f"Bearer {SECRET}")),
    "elasticsearch": ({"api_key": SECRET}, "/", ("Authorization", f"ApiKey {SECRET}")),
    "rabbitmq": ({"username": "guest", "password": SECRET}, "/api/overview", ("Authorization", "Basic ")),
    "argocd": ({"token": SECRET}, "/api/v1/applications", ("Authorization", f"Bearer {SECRET}")),
    "datadog": ({"api_key": SECRET, "app_key": "app-key-456"}, "/api/v1/validate", ("DD-API-KEY", SECRET)),
    "github": ({"token": SECRET}, "/rate_limit", ("Authorization", f"Bearer {SECRET}")),
    "pagerduty": ({"token": SECRET}, "/abilities", ("Authorization", f"Token token={SECRET}")),
    "incidentio": ({"api_key": SECRET}, "/v1/identity", ("Authorization", f"Bearer {SECRET}")),
}
URL_KEY = {"datadog": "api_url", "github": "api_url", "pagerduty": "api_url", "incidentio": "api_url"}


def block(name: str, url: str) -> dict[str, Any]:
    return {URL_KEY.get(name, "url"): url, **CASES[name][0]}


def test_every_probe_has_a_case():
    assert set(CASES) == set(PROBES)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_probe_sends_the_backends_auth_to_a_read_only_path(http, name):
    _, path, (header, value) = CASES[name]
    http.route("GET", path, (200, {"ok": True}))
    result = await probe_integration(name, block(name, http.url), policy=LOCAL)
    assert (result.ok, result.status_code, result.reason) == (True, 200, None), result
    assert isinstance(result.latency_ms, int) and result.latency_ms >= 0
    [req] = http.requests
    assert req.method == "GET" and req.path == path
    assert req.headers[header].startswith(value)
    assert SECRET not in repr(result) and result.target == path and "127.0.0.1" not in repr(result)


@pytest.mark.parametrize(("status", "reason"), [(401, "unauthorized"), (403, "forbidden"), (404, "not_found"),
                                                (503, "http_error")])
async def test_upstream_refusals_are_typed_and_never_echo_the_body(http, status, reason):
    http.route("GET", "/api/v1/status/buildinfo", (status, f"bad token {SECRET}"))
    result = await probe_integration("prometheus", {"url": http.url, "token": SECRET}, policy=LOCAL)
    assert (result.ok, result.reason, result.status_code) == (False, reason, status)
    assert SECRET not in result.detail and f"HTTP {status}" in result.detail


async def test_the_egress_policy_refuses_before_anything_is_sent(http):
    http.route("GET", "/api/v1/status/buildinfo", (200, {}))
    # loopback is not on the default policy's allow-list
    result = await probe_integration("prometheus", {"url": http.url}, policy=EgressPolicy.build())
    assert (result.ok, result.reason, result.latency_ms) == (False, "egress_refused", None)
    assert "loopback" in result.detail and "127.0.0.1" not in result.detail and http.requests == []
    for hostile in ("http://169.254.169.254/latest", "http://localhost:9090", "http://0x7f.1/", "file:///etc/passwd"):
        result = await probe_integration("prometheus", {"url": hostile}, policy=EgressPolicy.build())
        assert (result.ok, result.reason) == (False, "egress_refused"), (hostile, result)


async def test_missing_settings_unreachable_and_slow_services(http):
    result = await probe_integration("prometheus", {"token": SECRET}, policy=LOCAL)
    assert (result.ok, result.reason) == (False, "not_configured") and SECRET not in result.detail
    result = await probe_integration("pagerduty", {"api_url": http.url}, policy=LOCAL)
    assert (result.ok, result.reason) == (False, "not_configured") and http.requests == []
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.json_response({})

    http.route("GET", "/api/services", hang)
    result = await probe_integration("jaeger", {"url": http.url}, policy=LOCAL, timeout_s=0.2)
    assert (result.ok, result.reason) == (False, "timeout")
    url = http.url
    never.set()
    await http.close()   # nothing listens there any more
    result = await probe_integration("jaeger", {"url": url}, policy=LOCAL)
    assert (result.ok, result.reason) == (False, "connection_error")


async def test_prober_lists_the_probes_and_runs_them(http):
    http.route("GET", "/api/services", (200, {"data": []}))
    p = prober(policy=LOCAL)
    assert p.names == frozenset(PROBES)
    assert (await p.probe("jaeger", {"url": http.url})).ok
