"""The egress policy in every other client a tenant's URL reaches: HTTPS pinning (SNI and the
certificate check stay on the name), the ``httpx2`` transport the LLM SDKs use, aiohttp (Slack with a
team's ``base_url``), the Kubernetes client, the LLM providers, sandbox model calls and MCP over HTTP.
Internal servers are real and must record no request."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from security_kit import STRICT, FakeDNS, Sentinel

from actors.tools.base import ToolContext
from actors.tools.execute import execute
from actors.tools.registry import TOOLS
from incidentfox.egress import EgressPolicy, EgressRefused, refusal_in
from incidentfox.egress.aiohttp_guard import egress_session
from incidentfox.egress.transport import egress_client

# ---- HTTPS: connect to the checked address, verify the name ----------------------------------


def _cert(name: str, issuer_key: Any = None, issuer: x509.Name | None = None) -> tuple[Any, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(hours=1)))
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    return key, builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture
async def tls_server(tmp_path: Any) -> AsyncIterator[dict[str, Any]]:
    """An HTTPS server on 127.0.0.1 with a certificate for ``egress.test`` from a test CA; records
    the SNI names it was asked for and the Host headers."""
    ca_key, ca = _cert("Test CA")
    key, leaf = _cert("egress.test", ca_key, ca.subject)
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    seen: dict[str, Any] = {"sni": [], "host": []}
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "key.pem")
    server_ctx.sni_callback = lambda _sock, name, _ctx: seen["sni"].append(name)

    async def handle(request: web.Request) -> web.Response:
        seen["host"].append(request.headers.get("Host"))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    seen["port"] = site._server.sockets[0].getsockname()[1]
    seen["client_ctx"] = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    yield seen
    await runner.cleanup()


async def test_https_connects_to_the_checked_address_and_verifies_the_name(tls_server: dict[str, Any]) -> None:
    port = tls_server["port"]
    policy = EgressPolicy.build(allow=[f"127.0.0.1:{port}"])
    dns = FakeDNS({"egress.test": ["127.0.0.1"], "wrong-name.test": ["127.0.0.1"]})
    async with egress_client(httpx, policy=policy, resolver=dns, verify=tls_server["client_ctx"]) as client:
        resp = await client.get(f"https://egress.test:{port}/")
        assert resp.status_code == 200 and tls_server["sni"] == ["egress.test"]
        assert tls_server["host"] == [f"egress.test:{port}"]
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED|hostname"):
            await client.get(f"https://wrong-name.test:{port}/")   # same address, name not on the cert
    assert tls_server["host"] == [f"egress.test:{port}"]


async def test_pools_are_per_host_and_only_idle_ones_are_evicted(sentinel: Sentinel) -> None:
    from incidentfox.egress.transport import egress_transport

    names = ("a.example.com", "b.example.com", "c.example.com")
    dns = FakeDNS({n: ["127.0.0.1"] for n in names})
    transport = egress_transport(httpx, policy=EgressPolicy.build(allow=[f"127.0.0.1:{sentinel.port}"]),
                                 resolver=dns, max_hosts=1)
    async with httpx.AsyncClient(transport=transport) as client:
        async with client.stream("GET", f"http://a.example.com:{sentinel.port}/") as streaming:
            assert (await client.get(f"http://b.example.com:{sentinel.port}/")).status_code == 200
            assert set(transport._pools) == {"a.example.com", "b.example.com"}   # a's response is open
            assert sentinel.secret in (await streaming.aread()).decode()
        await client.get(f"http://c.example.com:{sentinel.port}/")
        assert set(transport._pools) == {"c.example.com"}
    assert [r[2] for r in sentinel.requests] == [f"{n}:{sentinel.port}" for n in names]


# ---- httpx2 (the openai / anthropic / mcp SDKs) ----------------------------------------------

async def test_httpx2_transport_refuses_and_pins(sentinel: Sentinel) -> None:
    dns = FakeDNS({"api.example.com": [["127.0.0.1"], ["10.0.0.1"]]})
    policy = EgressPolicy.build(allow=[f"127.0.0.1:{sentinel.port}"])
    async with egress_client(httpx2, policy=policy, resolver=dns) as client:
        assert (await client.get(f"http://api.example.com:{sentinel.port}/v1")).status_code == 200
        with pytest.raises(EgressRefused, match="private"):
            await client.get(f"http://api.example.com:{sentinel.port}/v1")
    async with egress_client(httpx2, policy=STRICT) as client:
        with pytest.raises(EgressRefused, match="loopback"):
            await client.get(sentinel.url())
    assert [r[1] for r in sentinel.requests] == ["/v1"]


# ---- aiohttp / Slack ----------------------------------------------------------------------------

async def test_aiohttp_session_checks_literals_names_redirects_and_pins(sentinel: Sentinel) -> None:
    public = await Sentinel(host="127.0.0.2").start(port=sentinel.port)
    redir = await Sentinel(host="127.0.0.3", redirect_to=f"http://127.0.0.1:{sentinel.port}/").start()
    try:
        dns = FakeDNS({"slack.example.com": ["127.0.0.1"], "redir.example.com": ["127.0.0.3"],
                       "rebind.example.com": [["127.0.0.2"], ["127.0.0.1"]]})
        policy = EgressPolicy.build(allow=["127.0.0.2", "127.0.0.3"])
        async with egress_session(policy=policy, resolver=dns) as session:
            for url, reason in [(sentinel.url(), "loopback"), (sentinel.url("::ffff:127.0.0.1"), "loopback"),
                                (f"http://slack.example.com:{sentinel.port}/", "loopback"),
                                (f"http://redir.example.com:{redir.port}/", "loopback"),
                                ("ws://example.com/", "scheme_not_allowed")]:
                with pytest.raises(EgressRefused, match=reason):
                    await session.get(url)
            assert len(redir.requests) == 1           # the redirecting hop answered; the next was refused
            for _ in range(2):   # the second DNS answer (loopback) is never used: the checked one is
                resp = await session.get(f"http://rebind.example.com:{sentinel.port}/")
                assert resp.status == 200
            assert len(public.requests) == 2 and dns.lookups.count("rebind.example.com.") == 1
        assert sentinel.requests == []
    finally:
        await public.close()
        await redir.close()


async def test_slack_tool_with_a_team_base_url_is_tenant_egress(sentinel: Sentinel) -> None:
    c = ToolContext(integrations={"slack": {"bot_token": "xoxb-1234567890", "base_url": sentinel.url("127.0.0.1")
                                            + "/api/"}}, egress=STRICT)
    result = await execute(TOOLS["slack_thread_history"], {"channel": "C1", "thread_ts": "1.2"}, c, backoff_s=0.001)
    assert result.error == "egress_refused" and "loopback" in result.message and sentinel.requests == []


@pytest.fixture
async def proxy() -> AsyncIterator[dict[str, Any]]:
    """A stand-in for the platform's forward proxy on 127.0.0.1 (an IP literal, so aiohttp reaches it
    without a resolver): records the first line of every connection and answers 502."""
    seen: dict[str, Any] = {"lines": []}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["lines"].append((await reader.readline()).decode(errors="replace").strip())
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    seen["url"] = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    yield seen
    server.close()
    await server.wait_closed()


async def test_slack_tool_with_a_team_base_url_ignores_environment_proxies(
        proxy: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # slack_sdk reads these itself and passes `proxy=` per request; the proxy would connect to the
    # tenant's name unchecked (here a name resolving to a private address).
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(var, proxy["url"])
    dns = FakeDNS({"slack.tenant.example": ["10.0.0.5"]})
    c = ToolContext(integrations={"slack": {"bot_token": "xoxb-1234567890",
                                            "base_url": "https://slack.tenant.example/api/"}},
                    egress=STRICT, resolver=dns)
    result = await execute(TOOLS["slack_thread_history"], {"channel": "C1", "thread_ts": "1.2"}, c, backoff_s=0.001)
    assert result.error == "egress_refused" and "private" in result.message, (result.error, result.message)
    assert dns.lookups == ["slack.tenant.example."] and proxy["lines"] == []


async def test_the_aiohttp_connector_refuses_a_request_through_a_proxy(sentinel: Sentinel,
                                                                        proxy: dict[str, Any]) -> None:
    # Both the target and the proxy would be admitted on their own: the proxy is what is refused.
    async with egress_session(policy=EgressPolicy.build(allow=["127.0.0.1"])) as session:
        for target in (sentinel.url(), "https://example.com/"):
            with pytest.raises(EgressRefused) as refused:
                await session.get(target, proxy=proxy["url"])
            assert refused.value.reason == "proxy_not_allowed"
        assert (await session.get(sentinel.url())).status == 200     # the same session without a proxy
    assert proxy["lines"] == [] and len(sentinel.requests) == 1


# ---- Kubernetes -----------------------------------------------------------------------------------

async def test_kubernetes_api_server_is_checked(sentinel: Sentinel) -> None:
    # https: the credential rules refuse plain http before egress is even asked (test_security_kubeconfig).
    host = sentinel.url().replace("http://", "https://")
    c = ToolContext(integrations={"kubernetes": {"host": host, "token": "t0ken-123456"}}, egress=STRICT)
    result = await execute(TOOLS["kubernetes_list_pods"], {}, c, backoff_s=0.001)
    assert result.error == "egress_refused" and "loopback" in result.message and sentinel.requests == []
    kubeconfig = {"apiVersion": "v1", "current-context": "c",
                  "clusters": [{"name": "k", "cluster": {"server": "https://k8s.example.com",
                                                         "proxy-url": sentinel.url()}}],
                  "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                  "users": [{"name": "u", "user": {"token": "t0ken-123456"}}]}
    c = ToolContext(integrations={"kubernetes": {"kubeconfig": kubeconfig}}, egress=STRICT,
                    resolver=FakeDNS({"k8s.example.com": ["93.184.216.34"]}))
    result = await execute(TOOLS["kubernetes_list_pods"], {}, c, backoff_s=0.001)
    # A proxy is refused by the credential rules (incidentfox.kubeconfig) and again by the egress pin.
    assert result.error in ("not_configured", "egress_refused") and "proxy-url" in result.message
    assert sentinel.requests == []


async def test_kubernetes_client_is_pinned_with_the_server_name_for_tls() -> None:
    from kubernetes import client as k8s

    from actors.tools.kubernetes_egress import pin_to_checked_address

    conf = k8s.Configuration()
    conf.host = "https://k8s.example.com:6443"
    api = k8s.ApiClient(conf)
    c = ToolContext(egress=STRICT, resolver=FakeDNS({"k8s.example.com": ["93.184.216.34"]}))
    await pin_to_checked_address(c, api)
    assert api.configuration.host == "https://93.184.216.34:6443"
    assert api.configuration.tls_server_name == "k8s.example.com"
    assert api.rest_client.pool_manager.connection_pool_kw["server_hostname"] == "k8s.example.com"


# ---- LLM providers, sandbox model calls, MCP -----------------------------------------------------

@pytest.mark.parametrize("provider", ["openai", "openai_compatible", "anthropic"])
async def test_llm_base_url_is_tenant_egress(sentinel: Sentinel, provider: str) -> None:
    from agents import ModelSettings
    from agents.models.interface import ModelTracing

    from actors.engine.agents.providers import build_model
    from config_service import LLMConfig

    llm = LLMConfig(provider=provider, model="m", base_url=sentinel.url() + "/v1", api_key="sk-test-123456",
                      request_timeout_s=5)
    model = build_model(llm, policy=STRICT)
    with pytest.raises(Exception) as info:
        await model.get_response(system_instructions=None, input="hi", model_settings=ModelSettings(), tools=[],
                                 output_schema=None, handoffs=[], tracing=ModelTracing.DISABLED,
                                 previous_response_id=None, conversation_id=None, prompt=None)
    refused = refusal_in(info.value)
    assert refused is not None and refused.reason == "loopback", info.value
    assert sentinel.requests == []


def test_llm_without_base_url_uses_the_sdk_default_client() -> None:
    import openai

    from actors.engine.agents.providers import tenant_http_client

    assert tenant_http_client(openai, None) is None
    assert type(tenant_http_client(openai, "https://llm.example.com")._transport).__name__.startswith("EgressTransport")


async def test_sandbox_model_calls_with_a_team_base_url_are_refused(sentinel6: Sentinel) -> None:
    """The process policy (this session allow-lists 127.0.0.1 only) refuses [::1]."""
    from actors.sandbox import agent
    from actors.sandbox.config import LLMConfig

    client = agent.client_for(LLMConfig(provider="anthropic", model="m", base_url=sentinel6.url()), timeout_s=5)
    assert client._client is agent.tenant_http_client()
    with pytest.raises(Exception) as info:
        await client.with_options(max_retries=0).messages.create(model="m", max_tokens=5,
                                                                  messages=[{"role": "user", "content": "x"}])
    assert refusal_in(info.value) is not None and sentinel6.requests == []


async def test_mcp_over_http_is_refused_for_an_internal_url(sentinel6: Sentinel) -> None:
    from actors.sandbox.errors import SandboxError
    from actors.sandbox.mcp import open_mcp_tools

    entry = {"name": "internal", "transport": "http", "url": sentinel6.url() + "/mcp"}
    with pytest.raises(SandboxError) as info:
        async with open_mcp_tools([entry], cipher=None, connect_timeout_s=10):
            pass
    assert info.value.code == "egress_refused" and sentinel6.requests == []


@pytest.mark.parametrize("tool, args, approved", [
    ("kubernetes_describe_pod", {"namespace": "shop", "pod": "checkout-1"}, False),
    ("kubernetes_list_volume_claims", {}, False),
    ("kubernetes_rollback_deployment", {"namespace": "shop", "deployment": "checkout", "to_revision": None,
                                        "expected_revision": None}, True),
])
async def test_new_kubernetes_tools_check_the_api_server(sentinel: Sentinel, tool: str, args: dict,
                                                          approved: bool) -> None:
    host = sentinel.url().replace("http://", "https://")
    c = ToolContext(integrations={"kubernetes": {"host": host, "token": "t0ken-123456"}}, egress=STRICT)
    spec = TOOLS[tool]
    full = {p: None for p in spec.parameters["properties"]} | args
    result = await execute(spec, full, c, backoff_s=0.001, approved=approved)
    assert result.error == "egress_refused", (tool, result.error, result.message)
    assert sentinel.requests == []


async def test_the_postmortem_model_is_tenant_egress(sentinel: Sentinel) -> None:
    """``POST /runs/{id}/postmortem`` with ``llm``: the team's ``llm.base_url`` goes through the policy;
    a refusal keeps the offline draft, says why, and names no secret."""
    from actors.engine.postmortem_llm import refine_postmortem
    from config_service import LLMConfig

    llm = LLMConfig(provider="openai_compatible", model="m", base_url=sentinel.url() + "/v1",
                    api_key="sk-test-postmortem-123456", request_timeout_s=5)
    refined = await refine_postmortem("# draft\n", llm, policy=STRICT)
    assert refined.source == "offline" and refined.markdown == "# draft\n" and "failed" in refined.note
    assert "sk-test-postmortem" not in refined.note and sentinel.requests == []
