"""The engine on Ray with the offline planner over the demo world: the RCA, teams without tools,
cancellation through the API, the deadline, lease loss (actor killed), correlation, persistence."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import ray
from engine_support import ORG, TOKEN, Engine, demo_config
from pydantic import SecretStr

from actors.engine.pool_config import NAMESPACE
from incidentfox.contracts import Trigger
from incidentfox.runs import store

pytestmark = [pytest.mark.ray, pytest.mark.slow]


async def _wait_running_on(engine: Engine, run_id: str) -> str:
    """The name of the actor hosting ``run_id`` once it is running there."""
    run = await engine.wait_status(run_id, {"running"}, timeout=60)
    events = await engine.events(run_id)
    return [e.data["actor"] for e in events if e.kind == "status" and e.data.get("status") == "running"][-1] \
        if run else ""


async def test_offline_demo_run_names_the_bad_deploy(engine: Engine) -> None:
    team = await engine.add_team(demo_config(channel="COFF", latency_ms=[20, 60]))
    run_id = await engine.start(team, channel="COFF")
    run = await engine.wait_terminal(run_id, timeout=90)
    assert run.status == "succeeded", run.error
    top = run.result["root_causes"][0]
    assert "checkout" in top["entity"] and top["evidence"], top
    assert run.result["partial"] is False

    calls = await engine.tool_calls(run_id)
    assert {c.agent for c in calls} == {"kubernetes", "metrics", "logs", "changes", "cloud"}
    assert all(c.finished_at and c.started_at <= c.finished_at and c.status in ("ok", "error") for c in calls)
    assert sum(c.result_size for c in calls) > 0
    events = await engine.events(run_id)
    phases = [e.data.get("phase") for e in events if e.kind == "phase"]
    assert phases[:1] == ["config"] and "slack_posted" in phases and phases[-1] == "rca"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    done = [e.data for e in events if e.kind == "agent" and e.data["status"] in ("ok", "failed")]
    assert {d["agent"] for d in done} == {"kubernetes", "metrics", "logs", "changes", "cloud"}
    # Follow-ups: the slow checkout's traces were searched, and the event says why.
    followups = [e.data for e in events if e.kind == "phase" and e.data.get("phase") == "followup"]
    asked = [c for f in followups for c in f["calls"]]
    assert any(c["tool"] == "tempo_search_traces" and c["args"]["service"] == "checkout" and c["hypothesis"]
               for c in asked), followups
    assert any(c.tool == "tempo_search_traces" and (c.arguments or {}).get("service") == "checkout" for c in calls)
    assert phases.index("followup") < phases.index("rca")

    final = await engine.slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.update"
                                                       and c.args.get("channel") == "COFF"
                                                       and "Root cause 1" in str(c.args["blocks"])])
    assert top["entity"] in str(final[-1].args["blocks"])
    assert run.first_message_at is not None and run.slack_message["channel"] == "COFF"
    blob = repr(run.result) + repr([e.data for e in events]) + repr([c.arguments for c in calls])
    assert TOKEN not in blob


async def test_a_slow_final_slack_edit_outlives_the_lease_heartbeat(engine: Engine) -> None:
    # The heartbeat (every lease_s/3 = 2 s here) sees the run already terminal while the final
    # edit (slow; progress edits are not) is in flight: it must not cancel it as a lost lease.
    engine.slack.slow("chat.update", "CSLOW", 5.0, when=lambda args: not str(args.get("text", "")).startswith("🔍"))
    team = await engine.add_team(demo_config(channel="CSLOW"))
    run_id = await engine.start(team, channel="CSLOW")
    run = await engine.wait_terminal(run_id, timeout=90)
    assert run.status == "succeeded", run.error
    final = await engine.slack.wait_for(
        lambda calls: [c for c in calls if c.method == "chat.update" and c.args.get("channel") == "CSLOW"
                       and any(e.get("action_id") == "incidentfox_rerun" for b in c.args.get("blocks") or []
                               for e in b.get("elements", []))], timeout=40)
    assert "checkout" in final[-1].args["text"]


async def test_team_without_tools_still_gets_an_rca(engine: Engine) -> None:
    team = await engine.add_team({"slack": {"default_channel": "CNONE"}})
    run_id = await engine.start(team)
    run = await engine.wait_terminal(run_id, timeout=60)
    assert run.status == "succeeded"
    assert "No tools are configured" in run.result["summary"]
    assert await engine.tool_calls(run_id) == []
    notes = [e.data for e in await engine.events(run_id) if e.kind == "note"]
    assert notes and notes[0]["slack"] == "skipped"


async def test_cancel_through_the_api_stops_the_ray_work(engine: Engine) -> None:
    from serve_apps.agent_api import create_agent_app

    team = await engine.add_team(demo_config(channel="CCAN", latency_ms=20_000))
    run_id = await engine.start(team, channel="CCAN")
    await _wait_running_on(engine, run_id)
    # Wait until tool calls are in flight (the sub-agents posted their "running" lines).
    await engine.slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.update"
                                               and c.args.get("channel") == "CCAN" and "running" in c.args["text"]])
    settings = engine.settings.model_copy(update={"admin_token": SecretStr("admin-test-token")})
    app = create_agent_app(settings=settings, runner=engine.runner)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        resp = await http.post(f"/runs/{run_id}/cancel", headers={"Authorization": "Bearer admin-test-token"})
    assert resp.status_code == 200, resp.text
    run = await engine.wait_terminal(run_id, timeout=30)
    assert run.status == "cancelled"
    assert (run.finished_at - run.started_at).total_seconds() < 20   # long before the 20 s tool calls
    # The in-flight tool calls were cancelled inside the ToolExecutor (ray.cancel through two hops)
    # and recorded as such, long before their 20 s would have passed.
    async def cancelled_calls() -> list:
        while not (calls := await engine.tool_calls(run_id)) or any(c.status != "cancelled" for c in calls):
            await asyncio.sleep(0.1)   # polling the database, bounded below
        return calls

    calls = await asyncio.wait_for(cancelled_calls(), timeout=10)
    assert len(calls) >= 5 and all((c.finished_at - c.started_at).total_seconds() < 15 for c in calls)
    await engine.slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.update"
                                               and c.args.get("channel") == "CCAN" and "cancelled" in c.args["text"]])


async def test_deadline_ends_the_run_with_what_it_has(engine: Engine) -> None:
    slow_team = await engine.add_team({**demo_config(channel="CDL2", latency_ms=30_000),
                                       "investigation": {"deadline_s": 3}})
    run_id = await engine.start(slow_team, channel="CDL2")
    run = await engine.wait_terminal(run_id, timeout=60)
    assert run.status == "succeeded" and run.result["partial"] is True
    assert "Deadline of 3s reached" in run.result["summary"]
    assert 2.5 < (run.finished_at - run.started_at).total_seconds() < 15
    phases = [e.data for e in await engine.events(run_id) if e.kind == "phase" and e.data["phase"] == "deadline"]
    assert phases and set(phases[0]["unfinished"]) == {"kubernetes", "metrics", "logs", "changes", "cloud"}


async def test_lost_actor_is_retried_once_then_failed(engine: Engine) -> None:
    team = await engine.add_team(demo_config(channel="CLEASE", latency_ms=4000))
    run_id = await engine.start(team, channel="CLEASE")
    first = await _wait_running_on(engine, run_id)
    ray.kill(ray.get_actor(first, namespace=NAMESPACE), no_restart=True)

    # The lease lapses, the recovery loop requeues the run and the pool dispatches it again.
    async def second_attempt() -> str:
        while True:
            run = await engine.run(run_id)
            hosts = [e.data["actor"] for e in await engine.events(run_id)
                     if e.kind == "status" and e.data.get("status") == "running"]
            if run.attempts == 2 and len(hosts) == 2 and run.status == "running":
                return hosts[-1]
            await asyncio.sleep(0.1)   # polling the database, bounded below

    second = await asyncio.wait_for(second_attempt(), timeout=90)
    assert second != first
    statuses = [e.data for e in await engine.events(run_id) if e.kind == "status"]
    assert {"status": "queued", "reason": "lease_expired_retry",
            "previous_owner": statuses[1]["previous_owner"]} in statuses
    ray.kill(ray.get_actor(second, namespace=NAMESPACE), no_restart=True)
    run = await engine.wait_terminal(run_id, timeout=90)
    assert run.status == "failed" and "lost its worker" in run.error and run.attempts == 2


async def test_correlated_alerts_are_absorbed_into_the_running_run(engine: Engine) -> None:
    team = await engine.add_team(demo_config(channel="CCOR", latency_ms=1500))
    alert = Trigger(source="alertmanager", delivery_id=uuid.uuid4().hex, event_kind="firing", is_alert=True,
                    title="CheckoutErrorRate", services=["checkout"], fingerprint="fp-1")
    async with engine.sessions() as s:
        run = await store.create_run(s, org_id=ORG, team_id=team, trigger=alert, correlation_key="checkout")
        await s.commit()
        run_id = run.id
    await engine.runner.submit(run_id=run_id, org_id=ORG, team_id=team)
    await _wait_running_on(engine, run_id)
    second = Trigger(source="pagerduty", delivery_id=uuid.uuid4().hex, event_kind="incident.triggered",
                     is_alert=True, title="Checkout down", services=["checkout", "payments"])
    async with engine.sessions() as s:   # what the gateway does for a correlated alert
        found = await store.find_correlated(s, org_id=ORG, team_id=team, keys=["checkout"], window_s=600)
        assert found is not None and found.id == run_id
        await store.absorb(s, run_id=run_id, trigger=second)
        await s.commit()
    await engine.runner.attach(run_id=run_id, trigger=second)
    run = await engine.wait_terminal(run_id, timeout=60)
    assert run.status == "succeeded"
    view = store.run_view(run)
    assert [a["title"] for a in view["absorbed"]] == ["Checkout down"]
    assert "1 correlated alert(s) absorbed" in run.result["summary"]
    # The alert-started run adopted its first Slack message as its thread.
    assert run.thread_channel == "CCOR" and run.thread_ts == run.slack_message["ts"]


async def test_pool_grows_under_load_and_shrinks_when_idle(engine: Engine) -> None:
    """A second pool with tiny bounds: 2 runs per actor, up to 3 actors, idle after 1 s."""
    from actors.engine.pool import get_pool
    from actors.engine.pool_config import PoolConfig
    from actors.engine.runner import InvestigationRunner

    cfg = PoolConfig(database_url=engine.url, settings=engine.settings, name="scale" + uuid.uuid4().hex[:6],
                     lease_s=10.0, slack_api_url=engine.slack.url, min_actors=1, max_actors=3,
                     actor_max_concurrency=2, idle_s=1.0, subagent_workers=1, tool_executors=1)
    pool = get_pool(cfg)
    runner = InvestigationRunner(engine.url, pool_config=cfg)
    runner._pool = pool
    try:
        await pool.warmup.remote("shared")
        team = await engine.add_team(demo_config(channel=None, latency_ms=2500))
        ids = [await engine.create_run(team) for _ in range(7)]
        for run_id in ids:
            await runner.submit(run_id=run_id, org_id=ORG, team_id=team)
        stats = await pool.stats.remote()
        group = stats["groups"]["shared"]
        assert len(group["actors"]) == 3                 # grew to the bound…
        assert max(group["loads"]) <= 2                  # …never over an actor's concurrency…
        assert group["queued"] == 7 - sum(group["loads"])  # …and the rest wait in the pool
        for run_id in ids:
            assert (await engine.wait_terminal(run_id, timeout=90)).status == "succeeded"

        async def shrunk() -> dict:
            while True:
                s = await pool.stats.remote()
                if len(s["groups"]["shared"]["actors"]) == 1 and s["finished"] == 7:
                    return s
                await asyncio.sleep(0.2)   # the maintenance loop runs every lease_s / 3

        stats = await asyncio.wait_for(shrunk(), timeout=30)
        assert stats["dispatched"] == 7 and stats["running"] == 0
    finally:
        await pool.shutdown.remote()
        ray.kill(pool, no_restart=True)


async def test_dedicated_team_without_its_workers_fails_with_the_reason(engine: Engine) -> None:
    team = await engine.add_team({**demo_config(channel=None), "deployment": {"mode": "dedicated"}})
    run_id = await engine.start(team)
    run = await engine.wait_terminal(run_id, timeout=30)
    assert run.status == "failed"
    assert f"team_acme_{team}" in run.error and "no Ray node offers" in run.error
