"""SSRF through the real tool wiring: each variant runs a real tool (``execute`` → backend →
``httpcall`` → the egress transport) against real local servers that must not be reached.

A refused call returns ``egress_refused`` naming the host and the reason, is not retried, the
internal server records no request, and its body appears in no result field and no log line.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from security_kit import STRICT, FakeDNS, Sentinel

from actors.tools.base import ToolContext, ToolResult
from actors.tools.execute import execute
from actors.tools.registry import TOOLS
from incidentfox.egress import EgressPolicy


def ctx(policy: Any = STRICT, resolver: Any = None, **integrations: Any) -> ToolContext:
    return ToolContext(integrations=integrations, org_id="o", team_id="t", egress=policy, resolver=resolver)


async def prom(url: str, c: ToolContext | None = None, **kw: Any) -> ToolResult:
    return await execute(TOOLS["prometheus_query"], {"query": "up"},
                         c or ctx(prometheus={"url": url}, **kw), backoff_s=0.001)


def assert_refused(result: ToolResult, sentinel: Sentinel, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    assert result.error == "egress_refused", (result.error, result.message)
    assert reason in result.message and result.attempts == 1
    assert sentinel.requests == []
    assert sentinel.secret not in result.model_dump_json()
    assert sentinel.secret not in caplog.text


@pytest.mark.parametrize("host, reason", [
    ("127.0.0.1", "loopback"), ("[::ffff:127.0.0.1]", "loopback"), ("[::ffff:7f00:1]", "loopback"),
    ("2130706433", "non_canonical_address"), ("0x7f.1", "non_canonical_address"),
    ("017700000001", "non_canonical_address"), ("127.1", "non_canonical_address"),
])
async def test_loopback_in_every_spelling_is_refused(sentinel: Sentinel, host: str, reason: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    result = await prom(f"http://{host}:{sentinel.port}")
    assert_refused(result, sentinel, reason, caplog)


async def test_ipv6_loopback_is_refused(sentinel6: Sentinel, caplog: pytest.LogCaptureFixture) -> None:
    result = await prom(sentinel6.url())
    assert_refused(result, sentinel6, "loopback", caplog)


@pytest.mark.parametrize("url, reason", [
    ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "link_local"),
    ("http://[fe80::1]/", "link_local"), ("http://10.0.0.1:9090", "private"), ("http://172.16.5.4", "private"),
    ("http://192.168.0.10", "private"), ("http://100.64.0.1", "private"), ("http://[fd00::1]", "private"),
    ("http://224.0.0.1", "multicast"), ("http://0.0.0.0:9090", "unspecified"),
    ("http://kubernetes.default.svc", "internal_name"), ("http://localhost:9090", "internal_name"),
    ("http://metadata.google.internal/computeMetadata/v1/", "internal_name"), ("file:///etc/passwd", "scheme"),
])
async def test_internal_destinations_are_refused_before_any_connection(url: str, reason: str) -> None:
    result = await prom(url)
    assert result.error == "egress_refused" and reason in result.message and result.attempts == 1


async def test_a_name_resolving_to_loopback_is_refused(sentinel: Sentinel, caplog: pytest.LogCaptureFixture) -> None:
    dns = FakeDNS({"metrics.example.com": ["127.0.0.1"]})
    result = await prom(f"http://metrics.example.com:{sentinel.port}", resolver=dns)
    assert_refused(result, sentinel, "loopback", caplog)
    assert dns.lookups == ["metrics.example.com."]


@pytest.mark.parametrize("tool, integration", [
    ("grafana_firing_alerts", {"grafana": {"url": "{url}"}}),
    ("loki_query_logs", {"loki": {"url": "{url}"}}),
    ("datadog_query_metrics", {"datadog": {"api_url": "{url}", "api_key": "k", "app_key": "a"}}),
    ("coralogix_query_logs", {"coralogix": {"api_url": "{url}", "api_key": "k"}}),
    ("github_recent_commits", {"github": {"api_url": "{url}", "token": "t", "repos": ["o/r"]}}),
    ("datadog_search_traces", {"datadog": {"api_url": "{url}", "api_key": "k", "app_key": "a"}}),
    ("rabbitmq_cluster_status", {"rabbitmq": {"url": "{url}", "username": "u", "password": "p"}}),
    ("argocd_list_applications", {"argocd": {"url": "{url}", "token": "t"}}),
])
async def test_every_http_backend_goes_through_the_policy(sentinel: Sentinel, tool: str,
                                                          integration: dict[str, Any]) -> None:
    name, config = next(iter(integration.items()))
    config = {k: (v.format(url=sentinel.url()) if isinstance(v, str) else v) for k, v in config.items()}
    spec = TOOLS[tool]
    props = spec.parameters["properties"]
    named = {k: "x" for k in ("query", "service") if k in props}   # the required strings
    args = {p: None for p in props} | named if named else {}
    result = await execute(spec, args, ctx(**{name: config}), backoff_s=0.001)
    assert result.error == "egress_refused", (tool, result.error, result.message)
    assert sentinel.requests == []


async def test_the_allow_list_admits_exactly_its_host_and_port(sentinel: Sentinel) -> None:
    other = await Sentinel().start()
    try:
        policy = EgressPolicy.build(allow=[f"127.0.0.1:{sentinel.port}"])
        ok = await prom(sentinel.url(), ctx(policy, prometheus={"url": sentinel.url()}))
        assert ok.ok and len(sentinel.requests) == 1
        no = await prom(other.url(), ctx(policy, prometheus={"url": other.url()}))
        assert no.error == "egress_refused" and other.requests == []
    finally:
        await other.close()


async def test_a_redirect_to_an_internal_host_is_refused_at_that_hop(sentinel: Sentinel) -> None:
    """An allowed host (127.0.0.2 stands in for a public address) redirects to the internal one."""
    public = Sentinel(host="127.0.0.2", redirect_to=f"http://127.0.0.1:{sentinel.port}/api/v1/query")
    await public.start()
    try:
        policy = EgressPolicy.build(allow=["public.example.com"])
        dns = FakeDNS({"public.example.com": ["127.0.0.2"]})
        url = f"http://public.example.com:{public.port}"
        result = await prom(url, ctx(policy, dns, prometheus={"url": url}))
        assert result.error == "egress_refused" and "127.0.0.1" in result.message
        assert len(public.requests) == 1 and public.requests[0][2] == f"public.example.com:{public.port}"
        assert sentinel.requests == []
    finally:
        await public.close()


async def test_dns_rebinding_cannot_move_a_connection(sentinel: Sentinel) -> None:
    """First answer "public" (127.0.0.2, allow-listed), then loopback: the request goes to the first
    answer, resolved once; the next request sees the loopback answer and is refused."""
    public = await Sentinel(host="127.0.0.2").start(port=sentinel.port)
    try:
        policy = EgressPolicy.build(allow=["127.0.0.2"])
        dns = FakeDNS({"rebind.example.com": [["127.0.0.2"], ["127.0.0.1"]]})
        url = f"http://rebind.example.com:{sentinel.port}"
        c = ctx(policy, dns, prometheus={"url": url})
        first = await prom(url, c)
        assert first.ok and len(public.requests) == 1 and dns.lookups == ["rebind.example.com."]
        second = await prom(url, c)
        assert second.error == "egress_refused" and "loopback" in second.message
        assert sentinel.requests == [] and len(public.requests) == 1
    finally:
        await public.close()


async def test_the_tool_executor_applies_its_policy(sentinel: Sentinel) -> None:
    """The executor's contexts carry its policy (the API test checks the recorded call)."""
    from actors.engine.tool_executor import ToolCallRequest, ToolExecutorCore

    core = ToolExecutorCore(None, egress=STRICT)
    out = await core.call(ToolCallRequest(run_id="r1", org_id="o", team_id="t", agent="metrics",
                                          tool="prometheus_query", args={"query": "up"},
                                          integrations={"prometheus": {"url": sentinel.url()}},
                                          allowed=frozenset({"prometheus_query"})))
    assert out.result.error == "egress_refused" and sentinel.requests == []
