"""Config service API: tree, ids, inheritance, explain, locks, versions, rollback, cache, audit."""

from __future__ import annotations

import pytest

from config_service import DEFAULT_CONFIG
from config_service.services.cache import EFFECTIVE_CACHE
from config_service.services.nodes import MAX_DEPTH
from config_service.testing import config_harness

ISSUE_PATHS = [
    ("post", "/api/v1/orgs"), ("post", "/api/v1/orgs/{org}/nodes"), ("get", "/api/v1/orgs/{org}/nodes/{node}"),
    ("patch", "/api/v1/orgs/{org}/nodes/{node}/config"), ("get", "/api/v1/orgs/{org}/nodes/{node}/config/raw"),
    ("get", "/api/v1/orgs/{org}/nodes/{node}/config/effective"),
    ("get", "/api/v1/orgs/{org}/nodes/{node}/config/history"),
    ("post", "/api/v1/orgs/{org}/nodes/{node}/config/rollback"), ("post", "/api/v1/orgs/{org}/tokens"),
    ("post", "/api/v1/orgs/{org}/teams/{team}/tokens"), ("post", "/api/v1/orgs/{org}/tokens/{token_id}/revoke"),
    ("get", "/api/v1/auth/whoami"), ("get", "/api/v1/team/config"), ("post", "/api/v1/routing/lookup"),
    ("get", "/api/v1/orgs/{org}/audit"), ("get", "/health"),
    ("post", "/api/v1/orgs/{org}/teams/{team}/impersonation-token"), ("get", "/api/v1/routing/epoch"),
]


@pytest.fixture
async def cs(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as harness:
        yield harness


def err(r):
    return r.json()["error"]["code"]


async def test_health_and_openapi(cs):
    r = await cs.client.get("/health")
    assert r.status_code == 200 and r.json()["database"] == "ok"
    assert (await cs.client.get("/docs")).status_code == 200
    spec = (await cs.client.get("/openapi.json")).json()
    for method, path in ISSUE_PATHS:
        assert method in spec["paths"].get(path, {}), (method, path)
    # bodies read after authorisation are still documented
    body = spec["paths"]["/api/v1/orgs/{org}/nodes"]["post"]["requestBody"]["content"]["application/json"]
    assert "node_id" in body["schema"]["properties"]
    r = await cs.client.get("/nope")            # no token: refused before routing (incidentfox.http_limits)
    assert r.status_code == 401 and err(r) == "missing_token"
    r = await cs.call("GET", "/nope")
    assert r.status_code == 404 and err(r) == "not_found"


async def test_tree_ids_parents_and_depth(cs):
    for bad in ("Acme", "a.b", "a_b", "-a", "a" * 32):
        r = await cs.call("POST", "/api/v1/orgs", json={"org_id": bad, "name": "x"})
        assert r.status_code == 422 and err(r) == "invalid_id", bad
    org = await cs.create_org("acme")
    assert org["org_id"] == "acme"
    r = await cs.call("POST", "/api/v1/orgs", json={"org_id": "acme", "name": "again"})
    assert r.status_code == 409 and err(r) == "org_exists"
    root = (await cs.call("GET", "/api/v1/orgs/acme/nodes/acme")).json()
    assert (root["kind"], root["parent_id"], root["version"]) == ("org", None, 0)

    for bad in ("Team", "t.1", "t_1"):
        r = await cs.call("POST", "/api/v1/orgs/acme/nodes", json={"node_id": bad, "kind": "team"})
        assert r.status_code == 422 and err(r) == "invalid_id", bad
    unit = await cs.create_node("acme", "eng", kind="unit")
    assert (unit["parent_id"], unit["path"], unit["depth"]) == ("acme", ["acme", "eng"], 1)
    team = await cs.create_node("acme", "sre", kind="team", parent_id="eng")
    assert (team["path"], team["version"]) == (["acme", "eng", "sre"], 0)
    cases = [
        ({"node_id": "x1", "kind": "team", "parent_id": "missing"}, 404, "parent_not_found"),
        ({"node_id": "x2", "kind": "team", "parent_id": "sre"}, 422, "invalid_parent"),
        ({"node_id": "x3", "kind": "unit", "parent_id": "x3"}, 409, "cycle"),
        ({"node_id": "sre", "kind": "team"}, 409, "node_exists"),
        ({"node_id": "acme", "kind": "unit"}, 409, "node_exists"),
        ({"node_id": "x4", "kind": "org"}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        r = await cs.call("POST", "/api/v1/orgs/acme/nodes", json=body)
        assert (r.status_code, err(r)) == (status, code), body
    r = await cs.call("POST", "/api/v1/orgs/nope/nodes", json={"node_id": "a", "kind": "team"})
    assert (r.status_code, err(r)) == (404, "org_not_found")
    got = (await cs.call("GET", "/api/v1/orgs/acme/nodes/eng")).json()
    assert got["children"] == ["sre"]

    parent = None
    for depth in range(1, MAX_DEPTH + 1):
        node = await cs.create_node("acme", f"d{depth}", kind="unit", parent_id=parent)
        assert node["depth"] == depth
        parent = node["node_id"]
    r = await cs.call("POST", "/api/v1/orgs/acme/nodes", json={"node_id": "too-deep", "kind": "team",
                                                                "parent_id": parent})
    assert (r.status_code, err(r)) == (422, "tree_too_deep")


async def test_move_refuses_cycles_and_updates_paths(cs):
    await cs.create_org("acme")
    await cs.create_node("acme", "u1", kind="unit")
    await cs.create_node("acme", "u2", kind="unit", parent_id="u1")
    await cs.create_node("acme", "t", kind="team", parent_id="u2")
    for target in ("u2", "u1"):
        r = await cs.call("PATCH", "/api/v1/orgs/acme/nodes/u1", json={"parent_id": target})
        assert (r.status_code, err(r)) == (409, "cycle")
    await cs.patch("acme", "u1", {"quotas": {"max_concurrent_runs": 9}})
    assert (await cs.effective("acme", "t"))["quotas"]["max_concurrent_runs"] == 9
    r = await cs.call("PATCH", "/api/v1/orgs/acme/nodes/u2", json={"parent_id": "acme", "name": "Unit Two"})
    assert r.status_code == 200 and r.json()["path"] == ["acme", "u2"] and r.json()["name"] == "Unit Two"
    t = (await cs.call("GET", "/api/v1/orgs/acme/nodes/t")).json()
    assert (t["path"], t["depth"]) == (["acme", "u2", "t"], 2)
    assert (await cs.effective("acme", "t"))["quotas"]["max_concurrent_runs"] == 5  # u1 no longer above


async def test_effective_inheritance_explain_and_null_removal(cs):
    await cs.create_org("acme")
    await cs.create_node("acme", "eng", kind="unit")
    await cs.create_node("acme", "sre", kind="team", parent_id="eng")
    assert (await cs.patch("acme", "acme", {"llm": {"provider": "openai", "model": "org-model"},
                                            "tools": {"k8s": True, "aws": True}, "custom": {"keep": [1, 2]}})
            ).status_code == 200
    assert (await cs.patch("acme", "eng", {"llm": {"model": "unit-model"}, "tools": {"aws": False},
                                           "custom": {"keep": [3]}})).status_code == 200
    assert (await cs.patch("acme", "sre", {"llm": {"model": "team-model"}, "slack": {"default_channel": "C1"}})
            ).status_code == 200
    eff = await cs.effective("acme", "sre")
    assert eff["llm"] == {**DEFAULT_CONFIG["llm"], "provider": "openai", "model": "team-model"}
    assert eff["tools"] == {"k8s": True, "aws": False}
    assert eff["custom"] == {"keep": [3]}          # lists replace, unknown keys kept
    assert eff["investigation"]["deadline_s"] == 300  # built-in default
    r = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/effective", params={"explain": "true"})).json()
    assert r["config"] == eff
    assert r["sources"]["llm.provider"] == "acme" and r["sources"]["llm.model"] == "sre"
    assert r["sources"]["tools.aws"] == "eng" and r["sources"]["custom.keep"] == "eng"
    assert r["sources"]["investigation.deadline_s"] == "defaults"
    assert set(r["sources"]) >= {"slack.default_channel", "tools.k8s", "quotas.max_concurrent_runs"}

    # null removes the override and the parent's value shows through again
    assert (await cs.patch("acme", "sre", {"llm": {"model": None}})).status_code == 200
    assert (await cs.effective("acme", "sre"))["llm"]["model"] == "unit-model"
    raw = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/raw")).json()
    assert raw["config"] == {"llm": {}, "slack": {"default_channel": "C1"}} and raw["version"] == 2


async def test_locks_refuse_descendant_writes_naming_path_and_node(cs):
    await cs.create_org("acme")
    await cs.create_node("acme", "eng", kind="unit")
    await cs.create_node("acme", "sre", kind="team", parent_id="eng")
    assert (await cs.patch("acme", "acme", {"llm": {"provider": "anthropic"}, "locked_paths": ["llm.provider"]})
            ).status_code == 200
    assert (await cs.patch("acme", "eng", {"locked_paths": ["quotas"]})).status_code == 200
    refused = [
        ("sre", {"llm": {"provider": "openai"}}, "llm.provider", "llm.provider", "acme"),
        ("sre", {"llm": None}, "llm", "llm.provider", "acme"),
        ("sre", {"llm": {"provider": {"nested": 1}}}, "llm.provider.nested", "llm.provider", "acme"),
        ("eng", {"llm": {"provider": "openai"}}, "llm.provider", "llm.provider", "acme"),
        ("sre", {"quotas": {"max_concurrent_runs": 50}}, "quotas.max_concurrent_runs", "quotas", "eng"),
    ]
    for node, patch, path, locked_path, locked_by in refused:
        r = await cs.patch("acme", node, patch)
        assert r.status_code == 409, (node, patch, r.text)
        e = r.json()["error"]
        assert e["code"] == "path_locked"
        assert e["details"] == {"path": path, "locked_path": locked_path, "locked_by": locked_by}
        assert path in e["message"] and locked_by in e["message"]
    # refused writes stored nothing
    hist = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/history")).json()
    assert hist["version"] == 0 and [i["version"] for i in hist["items"]] == [0]
    # neighbouring paths and the locking node itself are fine
    assert (await cs.patch("acme", "sre", {"llm": {"model": "m"}})).status_code == 200
    assert (await cs.patch("acme", "acme", {"llm": {"provider": "openai"}})).status_code == 200
    eff = await cs.effective("acme", "sre")
    assert eff["llm"] == {**DEFAULT_CONFIG["llm"], "provider": "openai", "model": "m"}
    assert sorted(eff["locked_paths"]) == ["llm.provider", "quotas"]
    explain = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/effective?explain=true")).json()
    assert explain["locks"] == {"llm.provider": "acme", "quotas": "eng"}


async def test_locks_added_later_override_existing_descendant_values(cs):
    await cs.create_org("acme")
    await cs.create_node("acme", "eng", kind="unit")
    await cs.create_node("acme", "sre", kind="team", parent_id="eng")
    await cs.patch("acme", "eng", {"quotas": {"max_concurrent_runs": 4}})
    r = await cs.patch("acme", "sre", {"quotas": {"max_concurrent_runs": 50}, "custom": "scalar",
                                       "llm": {"provider": "openai"}, "tools": {"a": True}})
    assert r.status_code == 200
    assert (await cs.effective("acme", "sre"))["quotas"]["max_concurrent_runs"] == 50
    await cs.patch("acme", "eng", {"locked_paths": ["quotas.max_concurrent_runs"]})
    await cs.patch("acme", "acme", {"llm": {"provider": "anthropic"}, "custom": {"flag": True},
                                    "locked_paths": ["llm.provider", "custom.flag"]})
    r = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/effective?explain=true")).json()
    assert r["config"]["quotas"]["max_concurrent_runs"] == 4 and r["sources"]["quotas.max_concurrent_runs"] == "eng"
    assert r["config"]["llm"] == {**DEFAULT_CONFIG["llm"], "provider": "anthropic"} and r["sources"]["llm.provider"] == "acme"
    assert r["config"]["custom"] == {"flag": True}  # the team's scalar `custom` would hide custom.flag
    assert r["config"]["tools"] == {"a": True}


async def test_versions_history_and_rollback(cs):
    await cs.create_org("acme")
    await cs.create_node("acme", "sre", kind="team")
    for model in ("m1", "m2", "m3"):
        assert (await cs.patch("acme", "sre", {"llm": {"model": model}})).status_code == 200
    r = await cs.patch("acme", "sre", {"llm": {"provider": "not-a-provider"}})
    assert (r.status_code, err(r)) == (422, "invalid_config")  # refused: no version
    hist = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/history")).json()
    assert hist["version"] == 3 and [i["version"] for i in hist["items"]] == [3, 2, 1, 0]
    assert hist["items"][0]["diff"] == [{"path": "llm.model", "op": "replace", "old": "m2", "new": "m3"}]
    assert hist["items"][0]["actor"] == "admin" and hist["items"][-1]["action"] == "create"
    page = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/history", params={"limit": 2})).json()
    assert [i["version"] for i in page["items"]] == [3, 2] and page["next_before"] == 2
    page2 = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/history",
                           params={"limit": 2, "before": page["next_before"]})).json()
    assert [i["version"] for i in page2["items"]] == [1, 0] and page2["next_before"] is None

    r = await cs.call("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback", json={"version": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["version"], body["restored_from"], body["config"]) == (4, 1, {"llm": {"model": "m1"}})
    assert (await cs.effective("acme", "sre"))["llm"]["model"] == "m1"
    r = await cs.call("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback", json={"version": 0})
    assert r.json()["config"] == {} and r.json()["version"] == 5
    for body, status, code in [({"version": 99}, 404, "version_not_found"), ({"version": -1}, 422, "validation_error"),
                               ({"version": "1"}, 422, "validation_error"), ({}, 422, "validation_error")]:
        r = await cs.call("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback", json=body)
        assert (r.status_code, err(r)) == (status, code), body
    hist = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/history")).json()
    assert [(i["version"], i["action"], i["restored_from"]) for i in hist["items"][:2]] == [
        (5, "rollback", 0), (4, "rollback", 1)]


async def test_rollback_respects_locks_added_later(cs):
    await cs.create_org("acme")
    await cs.create_node("acme", "sre", kind="team")
    await cs.patch("acme", "sre", {"llm": {"provider": "openai"}})
    await cs.patch("acme", "sre", {"llm": {"provider": None}})
    await cs.patch("acme", "acme", {"locked_paths": ["llm.provider"]})
    r = await cs.call("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback", json={"version": 1})
    assert (r.status_code, err(r)) == (409, "path_locked")
    assert r.json()["error"]["details"]["locked_by"] == "acme"


async def test_write_is_visible_to_next_read_across_app_instances(cs):
    await cs.create_org("acme")
    await cs.create_node("acme", "sre", kind="team")
    await cs.patch("acme", "acme", {"quotas": {"max_concurrent_runs": 2}})
    assert (await cs.effective("acme", "sre"))["quotas"]["max_concurrent_runs"] == 2
    hits = EFFECTIVE_CACHE.hits
    assert (await cs.effective("acme", "sre"))["quotas"]["max_concurrent_runs"] == 2
    assert EFFECTIVE_CACHE.hits == hits + 1  # served from the cache
    # a second app instance (another replica/process) writes; the first sees it on its next read
    async with config_harness(settings=cs.settings) as other:
        assert other.app.state.engine is not cs.app.state.engine
        r = await other.patch("acme", "acme", {"quotas": {"max_concurrent_runs": 7}})
        assert r.status_code == 200
    assert (await cs.effective("acme", "sre"))["quotas"]["max_concurrent_runs"] == 7


async def test_audit_records_writes_filtered_and_paged(cs):
    await cs.create_org("acme")
    await cs.create_org("other")
    await cs.create_node("acme", "sre", kind="team")
    await cs.patch("acme", "sre", {"llm": {"model": "a"}})
    await cs.patch("acme", "sre", {"llm": {"provider": "bogus"}})  # refused: not audited
    token = await cs.team_token("acme", "sre")
    tok_id = (await cs.call("GET", "/api/v1/orgs/acme/tokens")).json()["items"][0]["token_id"]
    await cs.call("POST", f"/api/v1/orgs/acme/tokens/{tok_id}/revoke")
    await cs.call("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback", json={"version": 0})
    items = (await cs.call("GET", "/api/v1/orgs/acme/audit")).json()["items"]
    assert [i["action"] for i in items] == ["config.rollback", "token.revoke", "token.issue", "config.patch",
                                            "node.create", "org.create"]
    assert all(i["actor"] == "admin" and i["at"] for i in items)
    assert items[3]["target"] == "node:acme/sre"
    assert items[3]["diff"]["changes"] == [{"path": "llm.model", "op": "add", "new": "a"}]
    assert token not in str(items)
    only = (await cs.call("GET", "/api/v1/orgs/acme/audit", params={"action": "config.*"})).json()["items"]
    assert [i["action"] for i in only] == ["config.rollback", "config.patch"]
    by_target = (await cs.call("GET", "/api/v1/orgs/acme/audit", params={"target": "node:acme/sre"})).json()
    assert {i["action"] for i in by_target["items"]} == {"config.rollback", "config.patch", "node.create"}
    page1 = (await cs.call("GET", "/api/v1/orgs/acme/audit", params={"limit": 4})).json()
    page2 = (await cs.call("GET", "/api/v1/orgs/acme/audit",
                           params={"limit": 4, "cursor": page1["next_cursor"]})).json()
    assert [i["id"] for i in page1["items"] + page2["items"]] == [i["id"] for i in items]
    assert page2["next_cursor"] is None
    other = (await cs.call("GET", "/api/v1/orgs/other/audit")).json()["items"]
    assert [i["action"] for i in other] == ["org.create"]
    r = await cs.call("GET", "/api/v1/orgs/acme/audit", params={"limit": 0})
    assert r.status_code == 422


async def test_seed_demo_is_idempotent_and_usable(cs):
    from config_service.services.seed import seed_demo

    for _ in range(2):
        async with cs.app.state.session_factory() as s:
            seeded = await seed_demo(s, settings=cs.settings)
    who = (await cs.call("GET", "/api/v1/auth/whoami", token=seeded["team_token"])).json()
    assert (who["org_id"], who["team_node_id"]) == ("demo", "sre")
    who = (await cs.call("GET", "/api/v1/auth/whoami", token=seeded["org_admin_token"])).json()
    assert (who["auth_kind"], who["org_id"]) == ("org_admin", "demo")
    got = (await cs.call("POST", "/api/v1/routing/lookup",
                         json={"identifiers": {"slack_channel_id": "C0DEMO0001"}})).json()
    assert (got["org_id"], got["team_node_id"]) == ("demo", "sre")
    eff = (await cs.call("GET", "/api/v1/team/config", token=seeded["team_token"])).json()["config"]
    assert eff["slack"]["default_channel"] == "C0DEMO0001" and eff["locked_paths"] == ["deployment.mode"]


async def test_refused_in_process_write_releases_its_transaction(cs):
    """A service call that is refused must not keep the org (or SQLite) write lock while the
    caller holds on to its session."""
    import asyncio

    from config_service.services import config as config_svc
    from incidentfox.errors import Conflict

    await cs.create_org("acme")
    await cs.create_node("acme", "sre", kind="team")
    await cs.patch("acme", "acme", {"locked_paths": ["llm"]})
    factory = cs.app.state.session_factory
    async with factory() as held:
        with pytest.raises(Conflict):
            await config_svc.patch_config(held, settings=cs.settings, org_id="acme", node_id="sre",
                                          patch={"llm": {"model": "x"}}, actor="test")
        assert not held.in_transaction()
        async with factory() as other, asyncio.timeout(5):
            result = await config_svc.patch_config(other, settings=cs.settings, org_id="acme", node_id="sre",
                                                   patch={"tools": {"k8s": True}}, actor="test")
        assert result["version"] == 1
