"""DELETE /api/v1/orgs/{org}/nodes/{node}: leaves only, the org root never; a team's claims are
released (its identifiers stop routing) and its tokens stop authenticating; org admin only."""

from __future__ import annotations

import pytest

from config_service.testing import config_harness


@pytest.fixture
async def cs(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as harness:
        yield harness


def err(r):
    return r.json()["error"]["code"]


async def test_delete_a_team_releases_claims_revokes_tokens_and_keeps_history(cs):
    await cs.create_org("acme")
    await cs.create_node("acme", "eng", kind="unit")
    await cs.create_node("acme", "payments", parent_id="eng")
    r = await cs.patch("acme", "payments", {"routing": {"slack_channel_ids": ["C42"]}})
    assert r.status_code == 200, r.text
    team = await cs.team_token("acme", "payments")
    epoch = (await cs.call("GET", "/api/v1/routing/epoch")).json()["epoch"]

    r = await cs.call("DELETE", "/api/v1/orgs/acme/nodes/payments", token=team)
    assert (r.status_code, err(r)) == (403, "forbidden")   # a team token cannot delete, not even itself
    r = await cs.call("DELETE", "/api/v1/orgs/acme/nodes/eng")
    assert (r.status_code, err(r)) == (409, "node_has_children")
    assert r.json()["error"]["details"] == {"node_id": "eng", "children": 1}

    r = await cs.call("DELETE", "/api/v1/orgs/acme/nodes/payments")
    assert r.status_code == 200, r.text
    assert r.json() == {"node_id": "payments", "kind": "team", "revoked_tokens": 1, "released_claims": 1}
    assert (await cs.call("GET", "/api/v1/orgs/acme/nodes/payments")).status_code == 404
    r = await cs.call("GET", "/api/v1/auth/whoami", token=team)
    assert (r.status_code, err(r)) == (401, "token_revoked")
    lookup = await cs.call("POST", "/api/v1/routing/lookup", json={"identifiers": {"slack_channel_id": "C42"}})
    assert lookup.status_code == 200 and lookup.json()["found"] is False, lookup.text
    assert (await cs.call("GET", "/api/v1/routing/epoch")).json()["epoch"] > epoch
    audit = (await cs.call("GET", "/api/v1/orgs/acme/audit", params={"action": "node.delete"})).json()["items"]
    assert [a["target"] for a in audit] == ["node:acme/payments"]

    # the id is free again, and a new team of that name starts from version 0 with no claims
    again = await cs.create_node("acme", "payments", parent_id="eng")
    assert again["version"] == 0
    r = await cs.call("DELETE", "/api/v1/orgs/acme/nodes/eng")
    assert (r.status_code, err(r)) == (409, "node_has_children")


async def test_delete_refuses_the_root_and_unknown_nodes(cs):
    await cs.create_org("acme")
    await cs.create_node("acme", "ops", kind="unit")
    org_admin = await cs.org_token("acme")
    r = await cs.call("DELETE", "/api/v1/orgs/acme/nodes/acme", token=org_admin)
    assert (r.status_code, err(r)) == (422, "invalid_node")
    r = await cs.call("DELETE", "/api/v1/orgs/acme/nodes/nope", token=org_admin)
    assert (r.status_code, err(r)) == (404, "node_not_found")
    r = await cs.call("DELETE", "/api/v1/orgs/acme/nodes/ops", token=org_admin)
    assert r.status_code == 200 and r.json()["kind"] == "unit"
    await cs.create_org("globex")
    await cs.create_node("globex", "web")
    r = await cs.call("DELETE", "/api/v1/orgs/globex/nodes/web", token=org_admin)   # another org's admin
    assert r.status_code == 403
