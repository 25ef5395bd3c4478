"""Routing claims: normalisation, priority lookup, conflicts naming the owner, epoch, indexed
lookups, and exactly one owner under concurrent claims on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, select, text

from config_service.db.models import ConfigNode, RoutingClaim
from config_service.services import config as config_svc
from config_service.services import routing
from config_service.testing import config_harness

LOOKUP = "/api/v1/routing/lookup"


@pytest.fixture
async def cs(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as harness:
        for org in ("acme", "beta"):
            await harness.create_org(org)
        await harness.create_node("acme", "eng", kind="unit")
        await harness.create_node("acme", "sre", kind="team", parent_id="eng")
        await harness.create_node("acme", "web", kind="team")
        await harness.create_node("beta", "ops", kind="team")
        yield harness


async def lookup(cs, **identifiers):
    r = await cs.call("POST", LOOKUP, json={"identifiers": identifiers})
    assert r.status_code == 200, r.text
    return r.json()


async def epoch(cs) -> int:
    return (await cs.call("GET", "/api/v1/routing/epoch")).json()["epoch"]


async def test_claims_are_normalised_and_lookup_uses_priority(cs):
    r = await cs.patch("acme", "sre", {"routing": {
        "slack_channel_ids": [" C0SRE "], "github_repos": ["Acme/Checkout"], "services": ["Checkout", "checkout"],
        "alertmanager_receivers": ["sre-pager"]}})
    assert r.status_code == 200, r.text
    assert r.json()["config"]["routing"] == {"slack_channel_ids": ["C0SRE"], "github_repos": ["acme/checkout"],
                                             "services": ["checkout"], "alertmanager_receivers": ["sre-pager"]}
    assert (await cs.patch("beta", "ops", {"routing": {"pagerduty_service_ids": ["PBETA"],
                                                       "services": ["payments"]}})).status_code == 200
    got = await lookup(cs, github_repo=" ACME/checkout ")
    assert {k: got[k] for k in ("found", "org_id", "team_node_id", "matched_by", "matched_value")} == {
        "found": True, "org_id": "acme", "team_node_id": "sre", "matched_by": "github_repo",
        "matched_value": "acme/checkout"}
    assert isinstance(got["epoch"], int) and got["epoch"] >= 2
    # documented priority: slack > pagerduty > incident.io > alertmanager > github > service
    got = await lookup(cs, service="checkout", pagerduty_service_id="PBETA", github_repo="acme/checkout")
    assert (got["org_id"], got["matched_by"]) == ("beta", "pagerduty_service_id")
    got = await lookup(cs, service="payments", alertmanager_receiver="sre-pager")
    assert (got["team_node_id"], got["matched_by"]) == ("sre", "alertmanager_receiver")
    got = await lookup(cs, slack_channel_id="C0SRE", pagerduty_service_id="PBETA")
    assert (got["team_node_id"], got["matched_by"]) == ("sre", "slack_channel_id")
    assert (await lookup(cs, slack_channel_id="c0sre"))["found"] is False  # channel ids keep their case
    nothing = await lookup(cs, service="nobody", incidentio_team_id="01X")
    assert nothing == {"found": False, "org_id": None, "team_node_id": None, "matched_by": None,
                       "matched_value": None, "epoch": nothing["epoch"]}
    assert (await lookup(cs))["found"] is False
    for bad in ({"identifiers": {"slack_channel_ids": "C1"}}, {"identifiers": {"service": 5}},
                {"identifiers": "C1"}, {}):
        r = await cs.call("POST", LOOKUP, json=bad)
        assert r.status_code == 422, bad


async def test_conflicting_claims_are_409_naming_the_owner(cs):
    assert (await cs.patch("acme", "sre", {"routing": {"slack_channel_ids": ["C1"], "services": ["api"]}})
            ).status_code == 200
    for org, team in (("beta", "ops"), ("acme", "web")):
        r = await cs.patch(org, team, {"routing": {"slack_channel_ids": ["C2", "C1"]}, "tools": {"x": True}})
        assert r.status_code == 409, r.text
        e = r.json()["error"]
        assert e["code"] == "routing_conflict" and "sre" in e["message"] and "acme" in e["message"]
        assert e["details"]["conflicts"] == [{"kind": "slack_channel_id", "value": "C1",
                                              "owner_org_id": "acme", "owner_team_node_id": "sre",
                                              "claimed_elsewhere": False}]
        raw = (await cs.call("GET", f"/api/v1/orgs/{org}/nodes/{team}/config/raw")).json()
        assert raw["version"] == 0 and raw["config"] == {}  # the whole write was refused
    assert (await lookup(cs, slack_channel_id="C2"))["found"] is False
    # releasing a claim (null removes it) lets another team take it
    before = await epoch(cs)
    assert (await cs.patch("acme", "sre", {"routing": {"slack_channel_ids": None}})).status_code == 200
    assert await epoch(cs) == before + 1
    assert (await cs.patch("beta", "ops", {"routing": {"slack_channel_ids": ["C1"]}})).status_code == 200
    got = await lookup(cs, slack_channel_id="C1")
    assert (got["org_id"], got["team_node_id"]) == ("beta", "ops")
    # writes that do not change claims leave the routing epoch alone
    now = await epoch(cs)
    assert (await cs.patch("beta", "ops", {"tools": {"k8s": True}})).status_code == 200
    assert (await cs.patch("acme", "acme", {"quotas": {"max_concurrent_runs": 3}})).status_code == 200
    assert await epoch(cs) == now
    # a rollback that would re-take a channel now owned elsewhere is refused the same way
    r = await cs.call("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback", json={"version": 1})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "routing_conflict")


async def test_only_teams_claim_and_table_lists_claims(cs):
    for node in ("acme", "eng"):
        r = await cs.patch("acme", node, {"routing": {"services": ["x"]}})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_config")
    await cs.patch("acme", "web", {"routing": {"services": ["Web"], "github_repos": ["acme/web"]}})
    table = (await cs.call("GET", "/api/v1/routing/table")).json()
    assert table["epoch"] == await epoch(cs)
    assert table["claims"] == [
        {"kind": "github_repo", "value": "acme/web", "org_id": "acme", "team_node_id": "web"},
        {"kind": "service", "value": "web", "org_id": "acme", "team_node_id": "web"},
    ]


async def test_lookup_is_a_constant_number_of_indexed_queries(cs, db_url):
    for i in range(20):
        await cs.create_node("beta", f"t{i}", kind="team")
        await cs.patch("beta", f"t{i}", {"routing": {"services": [f"svc-{i}"], "slack_channel_ids": [f"C{i}"]}})
    engine = cs.app.state.engine.sync_engine
    statements: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, *args):
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        async with cs.app.state.session_factory() as s:
            got = await routing.lookup(s, identifiers={"service": "svc-7", "slack_channel_id": "C3",
                                                       "github_repo": "none/none", "pagerduty_service_id": "P",
                                                       "incidentio_team_id": "I", "alertmanager_receiver": "R"})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert (got["team_node_id"], got["matched_by"]) == ("t3", "slack_channel_id")
    assert len(statements) == 1, statements  # one query: the epoch and all identifiers
    if db_url.startswith("sqlite"):  # and that query searches the unique index, never scans
        statement, parameters = statements[0]
        async with cs.app.state.session_factory() as s:
            conn = await s.connection()
            plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)).all()
        detail = " | ".join(str(row[-1]) for row in plan)
        assert "SEARCH routing_claims USING INDEX" in detail and "SCAN routing_claims" not in detail, detail


async def _wait_for(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)  # polling a condition, not sleeping for sync


@pytest.mark.postgres
async def test_concurrent_claims_leave_exactly_one_owner(pg_url, tmp_path):
    async with config_harness(db_url=pg_url, home=tmp_path) as cs:
        await cs.create_org("acme")
        await cs.create_org("beta")
        await cs.create_node("acme", "a", kind="team")
        await cs.create_node("beta", "b", kind="team")
        for i in range(6):
            channel = f"CRACE{i}"
            ra, rb = await asyncio.gather(
                cs.patch("acme", "a", {"routing": {"slack_channel_ids": [channel]}}),
                cs.patch("beta", "b", {"routing": {"slack_channel_ids": [channel]}}),
            )
            assert sorted([ra.status_code, rb.status_code]) == [200, 409], (ra.text, rb.text)
            winner = ("acme", "a") if ra.status_code == 200 else ("beta", "b")
            loser = rb if ra.status_code == 200 else ra
            details = loser.json()["error"]["details"]["conflicts"][0]
            assert (details["owner_org_id"], details["owner_team_node_id"]) == winner
            async with cs.app.state.session_factory() as s:
                owners = (await s.execute(select(RoutingClaim.org_id, RoutingClaim.team_node_id)
                                          .where(RoutingClaim.value == channel))).all()
            assert [tuple(o) for o in owners] == [winner]
            got = await lookup(cs, slack_channel_id=channel)
            assert (got["org_id"], got["team_node_id"]) == winner
            # the winner releases it for the next round
            assert (await cs.patch(*winner, {"routing": {"slack_channel_ids": []}})).status_code == 200


@pytest.mark.postgres
async def test_unique_index_decides_a_race_past_the_precheck(pg_url, tmp_path, caplog):
    """Transaction A holds an uncommitted claim; B's pre-check cannot see it, so B's insert blocks
    on the unique index. When A commits, B must fail with 409 naming A, and store nothing."""
    caplog.set_level("INFO", logger="incidentfox.config_service")
    async with config_harness(db_url=pg_url, home=tmp_path) as cs:
        await cs.create_org("acme")
        await cs.create_org("beta")
        await cs.create_node("acme", "a", kind="team")
        await cs.create_node("beta", "b", kind="team")
        factory = cs.app.state.session_factory
        async with factory() as sa, factory() as sb, factory() as observer:
            changed = await routing.sync_team_claims(sa, org_id="acme", team_node_id="a",
                                                     claims={("slack_channel_id", "CRACE")})
            assert changed
            task = asyncio.create_task(config_svc.patch_config(
                sb, settings=cs.settings, org_id="beta", node_id="b",
                patch={"routing": {"slack_channel_ids": ["CRACE"]}}, actor="test"))

            async def b_waits_on_a_lock() -> bool:
                rows = await observer.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"))
                await observer.rollback()
                return rows.scalar_one() >= 1

            await _wait_for(b_waits_on_a_lock)
            assert not task.done()
            await sa.commit()
            with pytest.raises(Exception) as exc:
                async with asyncio.timeout(10):
                    await task
        assert getattr(exc.value, "code", None) == "routing_conflict", repr(exc.value)
        assert "lost a concurrent race" in caplog.text  # decided by the unique index, not the pre-check
        assert exc.value.details["conflicts"][0]["owner_team_node_id"] == "a"
        async with factory() as s:
            owners = (await s.execute(select(RoutingClaim.team_node_id).where(RoutingClaim.value == "CRACE"))).all()
            b = await s.get(ConfigNode, ("beta", "b"))
        assert [o[0] for o in owners] == ["a"] and b.version == 0 and b.config == {}
