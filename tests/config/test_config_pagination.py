"""Every config-service list: one envelope ``{items, next_cursor}``, ``?limit=&cursor=`` walks the
whole list over several pages (none twice, none missing), a bad or foreign cursor is 422
``invalid_cursor``, and the older paging parameters (``after``, ``before``/``next_before``, integer
audit cursors) still work."""

from __future__ import annotations

import pytest

from config_service.testing import config_harness

EGRESS = "/api/v1/admin/egress-allowlist"


@pytest.fixture
async def cs(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as harness:
        yield harness


async def walk(cs, path: str, *, limit: int, **params) -> list[dict]:
    """Every item of a list, page by page; checks each page's size and that pages do not overlap."""
    items, cursor, pages = [], None, 0
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = await cs.call("GET", path, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) >= {"items", "next_cursor"}
        assert len(body["items"]) <= limit and (body["items"] or pages == 0)
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 100, "paging does not end"
    return items


async def check_list(cs, path: str, *, limit: int, key: str, expect_min: int, **params) -> list[dict]:
    whole = (await cs.call("GET", path, params={**params, "limit": 500})).json()
    assert whole["next_cursor"] is None and len(whole["items"]) >= expect_min > limit
    paged = await walk(cs, path, limit=limit, **params)
    ids = [i[key] for i in paged]
    assert len(ids) == len(set(ids)), f"{path}: an item came twice"
    assert paged == whole["items"], f"{path}: paging lost or reordered items"
    for bad in ("garbage!", "e30"):
        r = await cs.call("GET", path, params={**params, "cursor": bad})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_cursor", (path, r.text)
    return paged


async def test_every_config_list_pages_the_same_way(cs):
    for i in range(6):
        await cs.create_org(f"org{i}")
    orgs = await check_list(cs, "/api/v1/orgs", limit=4, key="org_id", expect_min=6)
    assert [o["org_id"] for o in orgs] == sorted(o["org_id"] for o in orgs)

    await cs.create_node("org0", "eng", kind="unit")
    for i in range(5):
        await cs.create_node("org0", f"team{i}", parent_id="eng" if i % 2 else None)
    await check_list(cs, "/api/v1/orgs/org0/nodes", limit=2, key="node_id", expect_min=7)
    await check_list(cs, "/api/v1/orgs/org0/nodes", limit=1, key="node_id", expect_min=2, parent_id="eng")

    for i in range(5):
        await cs.team_token("org0", f"team{i}")
    await check_list(cs, "/api/v1/orgs/org0/tokens", limit=2, key="token_id", expect_min=5)

    for scope in ("", "/teams/team0"):
        for source in ("github", "alertmanager", "grafana"):
            r = await cs.call("POST", f"/api/v1/orgs/org0{scope}/webhook-secrets/{source}")
            assert r.status_code == 201, r.text
    secrets = await check_list(cs, "/api/v1/orgs/org0/webhook-secrets", limit=4, key="url_path", expect_min=6)
    assert "secret" not in str([sorted(s) for s in secrets])
    await check_list(cs, "/api/v1/orgs/org0/teams/team0/webhook-secrets", limit=2, key="url_path", expect_min=3)

    await check_list(cs, "/api/v1/orgs/org0/audit", limit=5, key="id", expect_min=15)

    for i in range(5):
        assert (await cs.patch("org0", "team1", {"llm": {"model": f"m{i}"}})).status_code == 200
    history = "/api/v1/orgs/org0/nodes/team1/config/history"
    versions = await check_list(cs, history, limit=2, key="version", expect_min=5)
    assert [v["version"] for v in versions] == [5, 4, 3, 2, 1, 0]

    for i in range(4):
        r = await cs.call("PUT", EGRESS, json={"entries": [{"entry": f"host{i}.corp.example:443"}]})
        assert r.status_code == 200, r.text
    await check_list(cs, EGRESS + "/audit", limit=3, key="id", expect_min=4)


async def test_a_cursor_from_another_list_is_refused(cs):
    for i in range(3):
        await cs.create_org(f"org{i}")
    await cs.create_node("org0", "t1")
    await cs.create_node("org0", "t2")
    orgs_cursor = (await cs.call("GET", "/api/v1/orgs", params={"limit": 1})).json()["next_cursor"]
    nodes_cursor = (await cs.call("GET", "/api/v1/orgs/org0/nodes", params={"limit": 1})).json()["next_cursor"]
    for path, foreign in (("/api/v1/orgs/org0/nodes", orgs_cursor), ("/api/v1/orgs/org0/tokens", nodes_cursor),
                          ("/api/v1/orgs/org0/webhook-secrets", nodes_cursor)):
        r = await cs.call("GET", path, params={"cursor": foreign})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_cursor", path


async def test_older_paging_parameters_still_work(cs):
    for i in range(4):
        await cs.create_org(f"org{i}")
    after = (await cs.call("GET", "/api/v1/orgs", params={"after": "org1"})).json()["items"]
    assert [o["org_id"] for o in after] == ["org2", "org3"]
    assert (await cs.call("GET", "/api/v1/orgs", params={"limit": 1000})).status_code == 200   # clamped

    await cs.create_node("org0", "sre")
    for i in range(4):
        await cs.patch("org0", "sre", {"llm": {"model": f"m{i}"}})
    history = "/api/v1/orgs/org0/nodes/sre/config/history"
    first = (await cs.call("GET", history, params={"limit": 2})).json()
    assert [v["version"] for v in first["items"]] == [4, 3] and first["next_before"] == 3
    older = (await cs.call("GET", history, params={"limit": 2, "before": first["next_before"]})).json()
    assert [v["version"] for v in older["items"]] == [2, 1]

    page1 = (await cs.call("GET", "/api/v1/orgs/org0/audit", params={"limit": 2})).json()
    by_cursor = (await cs.call("GET", "/api/v1/orgs/org0/audit",
                               params={"limit": 2, "cursor": page1["next_cursor"]})).json()["items"]
    by_id = (await cs.call("GET", "/api/v1/orgs/org0/audit",
                           params={"limit": 2, "cursor": str(page1["items"][-1]["id"])})).json()["items"]
    assert by_id == by_cursor and by_id


async def test_impersonation_tokens_plural_path_and_its_older_alias(cs):
    await cs.create_org("acme")
    await cs.create_node("acme", "sre")
    for path in ("impersonation-tokens", "impersonation-token"):
        r = await cs.call("POST", f"/api/v1/orgs/acme/teams/sre/{path}", json={"ttl_s": 60})
        assert r.status_code == 201, r.text
        who = await cs.call("GET", "/api/v1/auth/whoami", token=r.json()["token"])
        assert who.json()["auth_kind"] == "impersonation"
