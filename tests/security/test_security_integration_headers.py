"""A team's integration ``headers`` cannot choose the virtual host or the framing of a request.

The egress policy checks and pins the URL's host; a ``Host`` header of the tenant's choosing would
still pick another service behind a shared ingress on an allow-listed address, and hop-by-hop or
framing headers belong to the platform's connection. Three layers, each tested on its own:

* at config write: ``PATCH …/config`` answers 422 ``invalid_config`` naming the header;
* at use: ``httpcall.config_auth`` (and the Prometheus and Loki tools) drop such names from a
  config stored before the rule, through the tools and the console's "test connection";
* in the egress transport: ``Host`` is set from the checked URL whatever the caller sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from security_kit import FakeDNS, Sentinel
from sqlalchemy import select

from actors.tools.base import ToolContext
from actors.tools.execute import execute
from actors.tools.httpcall import config_auth
from actors.tools.probes import prober
from actors.tools.registry import TOOLS
from config_service.core.crypto import settings_cipher
from config_service.core.secret_fields import encrypt_secrets
from config_service.db.models import ConfigNode
from config_service.services.orgs import bump_org_epoch
from config_service.testing import ConfigHarness, config_harness
from incidentfox.db import session_factory
from incidentfox.egress import EgressPolicy
from incidentfox.egress.transport import egress_client
from tests.tools_fakes import FakeHTTP

NAME = "grafana.corp.example"                     # the one allow-listed name, behind a shared ingress
POLICY = EgressPolicy.build(allow=[NAME])
RESERVED = ["Host", "host", "HOST", "Connection", "Keep-Alive", "Proxy-Authorization", "proxy-connection",
            "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", ":authority"]
VALUE = "vault.corp.example-VALUE-7731"
# What a config stored before the rule may hold: only X-Api-Key is the tenant's to send.
HOSTILE = {"Host": "vault.corp.example", "Proxy-Authorization": "Basic cGxhdGZvcm0=", "Keep-Alive": "timeout=600",
           "X-Api-Key": "tenant-key"}


@pytest.fixture
async def cs(sqlite_url: str, tmp_path: Path) -> AsyncIterator[ConfigHarness]:
    probes = prober(policy=POLICY, resolver=FakeDNS({NAME: ["127.0.0.1"]}))
    async with config_harness(db_url=sqlite_url, home=tmp_path, integration_prober=probes) as harness:
        await harness.create_org("acme")
        await harness.create_node("acme", "sre", kind="team")
        yield harness


def as_named(url: str) -> str:
    return url.replace("127.0.0.1", NAME)


def assert_only_tenant_headers(seen: dict[str, str], url: str) -> None:
    assert seen["Host"] == url.removeprefix("http://").split("/")[0]
    assert seen["X-Api-Key"] == "tenant-key"
    assert "Proxy-Authorization" not in seen and seen.get("Keep-Alive") != "timeout=600"


# ---- at config write ----------------------------------------------------------------------------------

@pytest.mark.parametrize("block", ["grafana", "tempo"], ids=["untyped-block", "typed-block"])
@pytest.mark.parametrize("header", RESERVED)
async def test_a_reserved_header_is_refused_at_write_naming_it(cs: ConfigHarness, block: str, header: str) -> None:
    before = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/raw")).json()
    r = await cs.patch("acme", "sre", {"integrations": {block: {"url": "https://grafana.example",
                                                                "headers": {header: VALUE, "X-Api-Key": "k"}}}})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_config")
    errors = r.json()["error"]["details"]["errors"]
    assert [e["path"] for e in errors] == [f"integrations.{block}.headers.{header}"]
    assert repr(header) in errors[0]["message"] and VALUE not in r.text
    assert (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/raw")).json() == before


async def test_the_tenants_own_headers_are_accepted(cs: ConfigHarness) -> None:
    headers = {"X-Api-Key": "k", "X-Scope-OrgID": "t1", "Hostname": "h", "Connection-Id": "c"}
    r = await cs.patch("acme", "sre", {"integrations": {"grafana": {"url": "https://g.example", "headers": headers}}})
    assert r.status_code == 200, r.text


# ---- at use -------------------------------------------------------------------------------------------

def test_config_auth_drops_names_a_tenant_may_not_set() -> None:
    headers, _ = config_auth({"headers": {**{h: "x" for h in RESERVED}, "X-Api-Key": "k"}, "token": "t"})
    assert headers == {"X-Api-Key": "k", "Authorization": "Bearer t"}


async def store_bypassing_checks(cs: ConfigHarness, config: dict[str, Any]) -> None:
    """Write ``config`` (encrypted like a normal write) straight into the node row: a config stored
    before the write check existed."""
    sessions = session_factory(cs.app.state.engine)
    async with sessions() as session:
        await bump_org_epoch(session, org_id="acme")
        node = (await session.execute(select(ConfigNode).where(
            ConfigNode.org_id == "acme", ConfigNode.node_id == "sre"))).scalar_one()
        node.config = encrypt_secrets(config, settings_cipher(cs.settings))
        await session.commit()


async def test_test_connection_sends_only_the_tenants_headers(cs: ConfigHarness, upstream: FakeHTTP) -> None:
    upstream.route("GET", "/api/search", (200, []))
    url = as_named(upstream.url)
    await store_bypassing_checks(cs, {"integrations": {"grafana": {"url": url, "headers": HOSTILE}}})
    r = await cs.call("POST", "/api/v1/orgs/acme/nodes/sre/integrations/grafana/test")
    assert r.status_code == 200 and r.json()["ok"], r.text
    assert len(upstream.requests) == 1
    assert_only_tenant_headers(upstream.requests[0].headers, url)


@pytest.mark.parametrize("tool, args", [
    ("prometheus_query", {"query": "up", "metric": None, "time": None}),
    ("loki_query_logs", {"query": "{app=\"x\"}", "since_minutes": None, "limit": None}),
    ("tempo_get_trace", {"trace_id": "abc123"}),
    ("elasticsearch_search_logs", {"query": "x", "index": None, "since_minutes": None, "limit": None}),
    ("rabbitmq_cluster_status", {}),
    ("argocd_list_applications", {"name": None}),
])
async def test_tools_send_only_the_tenants_headers(upstream: FakeHTTP, tool: str, args: dict[str, Any]) -> None:
    spec = TOOLS[tool]
    url = as_named(upstream.url)
    ctx = ToolContext(integrations={spec.integration: {"url": url, "headers": HOSTILE}}, org_id="acme",
                      team_id="sre", egress=POLICY, resolver=FakeDNS({NAME: ["127.0.0.1"]}))
    await execute(spec, args, ctx, backoff_s=0.001)   # the fake's answer does not matter, what it saw does
    assert upstream.requests, tool
    assert_only_tenant_headers(upstream.requests[0].headers, url)


# ---- in the egress transport --------------------------------------------------------------------------

@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
async def test_the_transport_sends_the_checked_host(sentinel: Sentinel, lib: Any) -> None:
    url = f"http://{NAME}:{sentinel.port}/api/search"
    async with egress_client(lib, policy=POLICY, resolver=FakeDNS({NAME: ["127.0.0.1"]})) as client:
        resp = await client.get(url, headers={"Host": "vault.corp.example"})
    assert resp.status_code == 200
    assert sentinel.requests == [("GET", "/api/search", f"{NAME}:{sentinel.port}")]
