"""The API the console's config, routing, integrations and audit pages read: a node's routing claims
and a dry-run check (conflicts explained without naming another tenant), integrations with "test
connection" against a local server through the egress policy, secrets kept across merge patches,
and the audit log's node filter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from actors.tools.probes import prober
from config_service.testing import config_harness
from incidentfox.egress import EgressPolicy
from tests.tools_fakes import FakeHTTP

SECRET = "prom-SECRET-token-77"
CLAIMS = "/api/v1/orgs/{org}/nodes/{node}/routing-claims"
INTEGRATIONS = "/api/v1/orgs/{org}/nodes/{node}/integrations"


@pytest.fixture
async def http() -> AsyncIterator[FakeHTTP]:
    fake = FakeHTTP()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def cs(db_url, tmp_path):
    # the platform's probes, with an egress policy that admits the local test server only
    async with config_harness(db_url=db_url, home=tmp_path,
                              integration_prober=prober(policy=EgressPolicy.build(allow=["127.0.0.1"]))) as h:
        for org in ("acme", "beta"):
            await h.create_org(org)
        await h.create_node("acme", "eng", kind="unit")
        await h.create_node("acme", "sre", kind="team", parent_id="eng")
        await h.create_node("acme", "web", kind="team")
        await h.create_node("beta", "ops", kind="team")
        yield h


async def test_a_nodes_claims_are_listed_for_its_team_and_admins_only(cs):
    assert (await cs.patch("acme", "sre", {"routing": {"slack_channel_ids": ["C1"], "services": ["API"]}})
            ).status_code == 200
    sre, web = await cs.team_token("acme", "sre"), await cs.team_token("acme", "web")
    r = await cs.call("GET", CLAIMS.format(org="acme", node="sre"), token=sre)
    assert r.status_code == 200, r.text
    assert [(i["kind"], i["key"], i["value"]) for i in r.json()["items"]] == [
        ("service", "services", "api"), ("slack_channel_id", "slack_channel_ids", "C1")]
    assert r.json()["next_cursor"] is None
    page = (await cs.call("GET", CLAIMS.format(org="acme", node="sre") + "?limit=1", token=sre)).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    for token, org, node in ((web, "acme", "sre"), (await cs.org_token("beta"), "acme", "sre")):
        r = await cs.call("GET", CLAIMS.format(org=org, node=node), token=token)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")


async def test_check_explains_conflicts_and_names_only_owners_the_caller_may_see(cs):
    assert (await cs.patch("acme", "sre", {"routing": {"slack_channel_ids": ["C1"]}})).status_code == 200
    assert (await cs.patch("beta", "ops", {"routing": {"pagerduty_service_ids": ["PBETA"]}})).status_code == 200
    body = {"routing": {"slack_channel_ids": ["C1", "C9"], "pagerduty_service_ids": ["PBETA"]}}
    acme_admin = await cs.org_token("acme")
    r = await cs.call("POST", CLAIMS.format(org="acme", node="web") + "/check", json=body, token=acme_admin)
    assert r.status_code == 200, r.text
    got = {i["value"]: i for i in r.json()["items"]}
    assert r.json()["conflicts"] == 2 and got["C9"]["status"] == "available"
    assert got["C1"] | {} == {"kind": "slack_channel_id", "key": "slack_channel_ids", "value": "C1",
                              "status": "conflict", "owner_org_id": "acme", "owner_team_node_id": "sre",
                              "claimed_elsewhere": False}
    assert (got["PBETA"]["status"], got["PBETA"]["claimed_elsewhere"]) == ("conflict", True)
    assert got["PBETA"]["owner_org_id"] is None and "beta" not in r.text and "ops" not in r.text
    # the team's own claims are "held"; the global admin sees every owner
    r = await cs.call("POST", CLAIMS.format(org="acme", node="sre") + "/check", json=body)
    got = {i["value"]: i for i in r.json()["items"]}
    assert got["C1"]["status"] == "held" and got["PBETA"]["owner_org_id"] == "beta"
    # nothing was written by a check
    assert (await cs.call("GET", CLAIMS.format(org="acme", node="web"))).json()["items"] == []
    # team tokens, units and malformed bodies
    r = await cs.call("POST", CLAIMS.format(org="acme", node="sre") + "/check", json=body,
                      token=await cs.team_token("acme", "sre"))
    assert r.status_code == 403
    r = await cs.call("POST", CLAIMS.format(org="acme", node="eng") + "/check", json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "not_a_team")
    for bad in ({"routing": {"channels": ["C1"]}}, {"routing": {"services": "api"}}, {"routing": {"services": [""]}},
                {}, {"routing": {"services": ["x"]}, "extra": 1}):
        r = await cs.call("POST", CLAIMS.format(org="acme", node="web") + "/check", json=bad)
        assert r.status_code == 422, (bad, r.text)


async def test_a_write_conflict_never_names_another_tenant_to_an_org_admin(cs):
    assert (await cs.patch("beta", "ops", {"routing": {"slack_channel_ids": ["CB"]}})).status_code == 200
    assert (await cs.patch("acme", "sre", {"routing": {"slack_channel_ids": ["CA"]}})).status_code == 200
    acme_admin = await cs.org_token("acme")
    r = await cs.patch("acme", "web", {"routing": {"slack_channel_ids": ["CB"]}}, token=acme_admin)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "routing_conflict")
    assert "beta" not in r.text and "ops" not in r.text and "elsewhere" in r.json()["error"]["message"]
    assert r.json()["error"]["details"]["conflicts"] == [{"kind": "slack_channel_id", "value": "CB",
                                                         "owner_org_id": None, "owner_team_node_id": None,
                                                         "claimed_elsewhere": True}]
    # a team of its own org is named
    r = await cs.patch("acme", "web", {"routing": {"slack_channel_ids": ["CA"]}}, token=acme_admin)
    assert r.json()["error"]["details"]["conflicts"][0]["owner_team_node_id"] == "sre"


async def test_integrations_list_and_test_connection(cs, http):
    http.route("GET", "/api/v1/status/buildinfo", (200, {"status": "success"}))
    assert (await cs.patch("acme", "eng", {"integrations": {"prometheus": {"url": http.url, "token": SECRET}}})
            ).status_code == 200
    assert (await cs.patch("acme", "sre", {"integrations": {"custom": {"url": "https://x.example"}}})
            ).status_code == 200
    sre = await cs.team_token("acme", "sre")
    r = await cs.call("GET", INTEGRATIONS.format(org="acme", node="sre"), token=sre)
    assert r.status_code == 200 and SECRET not in r.text
    items = {i["name"]: i for i in r.json()["items"]}
    assert items["prometheus"] == {"name": "prometheus", "enabled": True, "testable": True, "set_by": ["eng"],
                                   "config": {"url": "***", "token": "***"}}
    assert (items["custom"]["testable"], items["custom"]["set_by"]) == (False, ["sre"])

    r = await cs.call("POST", INTEGRATIONS.format(org="acme", node="sre") + "/prometheus/test", token=sre)
    assert r.status_code == 200, r.text
    res = r.json()
    assert (res["name"], res["ok"], res["status_code"], res["reason"]) == ("prometheus", True, 200, None)
    assert isinstance(res["latency_ms"], int) and SECRET not in r.text
    assert http.requests[-1].headers["Authorization"] == f"Bearer {SECRET}"

    http.route("GET", "/api/v1/status/buildinfo", (401, f"token {SECRET} rejected"))
    res = (await cs.call("POST", INTEGRATIONS.format(org="acme", node="sre") + "/prometheus/test")).json()
    assert (res["ok"], res["reason"], res["status_code"]) == (False, "unauthorized", 401) and SECRET not in str(res)

    r = await cs.call("POST", INTEGRATIONS.format(org="acme", node="sre") + "/custom/test")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "probe_not_supported")
    r = await cs.call("POST", INTEGRATIONS.format(org="acme", node="sre") + "/loki/test")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "integration_not_found")
    r = await cs.call("POST", INTEGRATIONS.format(org="acme", node="sre") + "/..%2Fx/test")
    assert r.status_code in (404, 422)
    for token in (await cs.team_token("acme", "web"), await cs.org_token("beta")):
        r = await cs.call("POST", INTEGRATIONS.format(org="acme", node="sre") + "/prometheus/test", token=token)
        assert r.status_code == 403
        r = await cs.call("GET", INTEGRATIONS.format(org="acme", node="sre"), token=token)
        assert r.status_code == 403

    audit = (await cs.call("GET", "/api/v1/orgs/acme/audit?action=integration.test&node=sre")).json()["items"]
    assert [(a["actor"].startswith("token:"), a["diff"]) for a in audit] == [
        (False, {"integration": "prometheus", "ok": False, "reason": "unauthorized"}),
        (True, {"integration": "prometheus", "ok": True, "reason": None})]


async def test_hostile_urls_are_refused_by_the_egress_policy(cs, http):
    for url in ("http://169.254.169.254/latest/meta-data", "http://localhost:9090", "http://10.0.0.1:9090"):
        assert (await cs.patch("acme", "web", {"integrations": {"prometheus": {"url": url}}})).status_code == 200
        res = (await cs.call("POST", INTEGRATIONS.format(org="acme", node="web") + "/prometheus/test")).json()
        assert (res["ok"], res["reason"], res["latency_ms"]) == (False, "egress_refused", None), (url, res)


async def test_without_a_prober_nothing_is_testable(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as h:
        await h.create_org("acme")
        await h.create_node("acme", "sre", kind="team")
        await h.patch("acme", "sre", {"integrations": {"prometheus": {"url": "https://prom.example"}}})
        items = (await h.call("GET", INTEGRATIONS.format(org="acme", node="sre"))).json()["items"]
        assert [i["testable"] for i in items] == [False]
        r = await h.call("POST", INTEGRATIONS.format(org="acme", node="sre") + "/prometheus/test")
        assert (r.status_code, r.json()["error"]["code"]) == (422, "probe_not_supported")


async def test_a_merge_patch_that_omits_or_masks_a_secret_keeps_it(cs, http):
    http.route("GET", "/api/v1/status/buildinfo", (200, {}))
    assert (await cs.patch("acme", "sre", {"integrations": {"prometheus": {"url": http.url, "token": SECRET}}})
            ).status_code == 200
    for patch in ({"integrations": {"prometheus": {"verify_ssl": False}}},          # omits the token
                  {"integrations": {"prometheus": {"token": "***", "url": "***"}}}):  # sends back what it read
        r = await cs.patch("acme", "sre", patch)
        assert r.status_code == 200 and SECRET not in r.text
        assert (await cs.call("POST", INTEGRATIONS.format(org="acme", node="sre") + "/prometheus/test")).json()["ok"]
        assert http.requests[-1].headers["Authorization"] == f"Bearer {SECRET}"
    history = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/history")).json()
    assert SECRET not in str(history) and [i["version"] for i in history["items"]] == [3, 2, 1, 0]


async def test_audit_node_filter(cs):
    await cs.patch("acme", "sre", {"tools": {"x": True}})
    await cs.patch("acme", "web", {"tools": {"x": True}})
    items = (await cs.call("GET", "/api/v1/orgs/acme/audit?node=sre")).json()["items"]
    assert items and {i["target"] for i in items} == {"node:acme/sre"}
    r = await cs.call("GET", "/api/v1/orgs/acme/audit?node=sre&target=node:acme/web")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "conflicting_filters")
    r = await cs.call("GET", "/api/v1/orgs/acme/audit?node=Bad_Id")
    assert r.status_code == 422
