"""Exactly once: retries and concurrent copies never start a second run; a crash between record and
dispatch is repaired by the sweep; failed dispatches are listed and re-driven. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import pytest
from gateway_kit import RecordingRunner, client_for, load, make_core, seed_approvers, signed, slack_event
from sqlalchemy import func, select

from incidentfox.db import utcnow
from incidentfox.runs import store
from incidentfox.runs.models import Delivery, Run, RunFeedback, ToolApproval
from serve_apps import deliveries


async def _count(core, model, *where):
    async with core.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model).where(*where))


async def test_slack_retry_gets_the_same_run(gw, fixtures_dir):
    core, client = gw
    body = slack_event(fixtures_dir)
    first = await client.post("/slack/events", content=body, headers=signed("slack", body))
    retry_headers = {**signed("slack", body), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    retry = await client.post("/slack/events", content=body, headers=retry_headers)
    assert first.status_code == retry.status_code == 200
    assert "duplicate" not in first.json()
    assert retry.json()["duplicate"] is True and retry.json()["run_id"] == first.json()["run_id"]
    assert await _count(core, Run) == 1 and await _count(core, Delivery) == 1
    await core.drain()
    assert core.runner.submitted == [first.json()["run_id"]]


async def test_pagerduty_retry_with_same_webhook_id_is_a_duplicate(gw, fixtures_dir):
    core, client = gw
    body = load(fixtures_dir, "pagerduty/incident.triggered.json")
    headers = signed("pagerduty", body, delivery="whk-1")
    a = await client.post("/pagerduty", content=body, headers=headers)
    b = await client.post("/pagerduty", content=body, headers=headers)
    assert a.json()["run_id"] == b.json()["run_id"] and b.json()["duplicate"] is True
    assert await _count(core, Run) == 1


async def test_concurrent_identical_deliveries_make_exactly_one_run(gw, fixtures_dir):
    core, client = gw
    body = slack_event(fixtures_dir, event_id="EvCONCURRENT")
    headers = signed("slack", body)
    responses = await asyncio.gather(*[client.post("/slack/events", content=body, headers=headers)
                                       for _ in range(8)])
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    run_ids = {r.json()["run_id"] for r in responses}
    assert len(run_ids) == 1 and None not in run_ids
    assert sum(1 for r in responses if not r.json().get("duplicate")) == 1
    assert await _count(core, Run) == 1
    await core.drain()
    assert core.runner.submitted == list(run_ids)


async def test_crash_between_record_and_dispatch_is_swept(db_url, fixtures_dir):
    core = make_core(db_url, runner=RecordingRunner(fail=True))
    async with client_for(core) as client:
        body = slack_event(fixtures_dir, event_id="EvLOST")
        r = await client.post("/slack/events", content=body, headers=signed("slack", body))
    assert r.status_code == 200
    run_id = r.json()["run_id"]
    await core.drain()
    async with core.sessions() as s:
        (row,) = (await s.scalars(select(Delivery))).all()
        assert row.dispatched_at is None and "executor unavailable" in row.dispatch_error
        failed = await deliveries.list_deliveries(s, failed=True)
        assert [d.id for d in failed] == [row.id]
    healthy = RecordingRunner()
    # Within the grace period nothing is re-sent (the first dispatch may still be in flight).
    assert await deliveries.sweep(core.sessions, healthy, grace_s=60) == []
    assert await deliveries.sweep(core.sessions, healthy, grace_s=0) == [row.id]
    assert healthy.submitted == [run_id]
    assert await deliveries.sweep(core.sessions, healthy, grace_s=0) == [], "dispatched once only"
    async with core.sessions() as s:
        row = await s.get(Delivery, row.id)
        assert row.dispatched_at is not None and row.dispatch_error is None and row.dispatch_attempts == 2
    await core.engine.dispose()


async def test_undispatched_delivery_without_error_is_swept(db_url, fixtures_dir):
    """The process died after commit, before dispatch even ran: no error recorded, still swept."""
    core = make_core(db_url)
    body = slack_event(fixtures_dir, event_id="EvCRASH")
    from serve_apps.webhooks import slack

    trigger = slack.parse(headers={}, body=body, now=0).trigger
    result = await deliveries.intake(core.sessions, trigger=trigger,
                                     route=deliveries.Route(True, "acme", "payments"), payload="")
    assert result.dispatch is not None   # ... and we "crash" here, never dispatching
    runner = RecordingRunner()
    swept = await deliveries.sweep(core.sessions, runner, grace_s=-1)
    assert swept == [result.delivery_pk] and runner.submitted == [result.run_id]
    await core.engine.dispose()


async def test_failed_dispatch_is_redriven_on_request(db_url, fixtures_dir):
    core = make_core(db_url, runner=RecordingRunner(fail=True))
    async with client_for(core) as client:
        for i in range(3):
            body = slack_event(fixtures_dir, event_id=f"EvF{i}")
            assert (await client.post("/slack/events", content=body, headers=signed("slack", body))).status_code == 200
    await core.drain()
    async with core.sessions() as s:
        failed = await deliveries.list_deliveries(s, failed=True)
    assert len(failed) == 3
    runner = RecordingRunner()
    done = await deliveries.redrive(core.sessions, runner, delivery_pks=[failed[0].id])
    assert done == [failed[0].id] and len(runner.submitted) == 1
    done = await deliveries.redrive(core.sessions, runner)
    assert sorted(done) == sorted(d.id for d in failed[1:]) and len(runner.submitted) == 3
    async with core.sessions() as s:
        assert await deliveries.list_deliveries(s, failed=True) == []
    await core.engine.dispose()


async def test_alert_storm_is_absorbed_into_the_active_run(gw, fixtures_dir):
    core, client = gw
    run_ids = []
    for i in range(3):
        data = json.loads(load(fixtures_dir, "alertmanager/webhook.v4.firing.json"))
        data["groupKey"] = f"{{}}/{{}}:{{alertname=\"storm-{i}\"}}"
        data["commonLabels"]["service"] = "checkout"
        for a in data["alerts"]:
            a["labels"]["service"] = "checkout"
            a["fingerprint"] = f"fp{i}"
        body = json.dumps(data).encode()
        r = await client.post("/alertmanager", content=body, headers=signed("alertmanager", body))
        assert r.status_code == 200, r.text
        run_ids.append((r.json()["outcome"], r.json()["run_id"]))
    assert run_ids[0][0] == "accepted"
    assert [o for o, _ in run_ids[1:]] == ["correlated", "correlated"]
    assert len({rid for _, rid in run_ids}) == 1
    assert await _count(core, Run) == 1
    await core.drain()
    assert len(core.runner.attached) == 2
    async with core.sessions() as s:
        run = await store.get_run(s, run_ids[0][1])
        assert len(run.absorbed) == 2


async def test_human_request_never_absorbed_but_continues_its_thread(gw, fixtures_dir):
    core, client = gw
    body = slack_event(fixtures_dir, event_id="EvH1")
    root_ts = json.loads(body)["event"]["ts"]
    first = (await client.post("/slack/events", content=body, headers=signed("slack", body))).json()
    # A different mention in the same channel (no thread) starts its own run.
    data = json.loads(slack_event(fixtures_dir, event_id="EvH2"))
    data["event"]["ts"] = "1595926999.000100"
    body = json.dumps(data).encode()
    second = (await client.post("/slack/events", content=body, headers=signed("slack", body))).json()
    assert second["outcome"] == "accepted" and second["run_id"] != first["run_id"]
    # A follow-up in the first run's thread continues it.
    data = json.loads(slack_event(fixtures_dir, event_id="EvH3"))
    data["event"].update(type="message", ts="1595926300.000200", thread_ts=root_ts,
                         text="also, the db is slow")
    body = json.dumps(data).encode()
    third = (await client.post("/slack/events", content=body, headers=signed("slack", body))).json()
    assert third["outcome"] == "continued" and third["run_id"] == first["run_id"]
    await core.drain()
    assert (first["run_id"], "EvH3") in core.runner.attached


def _interaction(fixtures_dir, action_id: str, value: str, trigger_id: str) -> bytes:
    data = json.loads(load(fixtures_dir, "slack/block_actions.json"))
    data["trigger_id"] = trigger_id
    data["actions"][0].update(action_id="incidentfox_" + action_id, value=value)
    return ("payload=" + quote(json.dumps(data))).encode()


async def test_slack_buttons_rerun_feedback_cancel_and_approve(gw, fixtures_dir, db_url, tmp_path):
    core, client = gw
    await seed_approvers(db_url, tmp_path, org="acme", team="payments", approvers=["W111"])
    body = slack_event(fixtures_dir, event_id="EvB1")
    run_id = (await client.post("/slack/events", content=body, headers=signed("slack", body))).json()["run_id"]

    async def press(action_id, value, tid):
        b = _interaction(fixtures_dir, action_id, value, tid)
        r = await client.post("/slack/interactions", content=b, headers=signed("slack", b))
        assert r.status_code == 200, r.text
        return r.json()

    rerun = await press("rerun", run_id, "t1")
    assert rerun["outcome"] == "interaction" and rerun["run_id"] not in (None, run_id)
    assert (await press("feedback_up", run_id, "t2"))["outcome"] == "interaction"
    assert (await press("feedback_down", run_id, "t3"))["outcome"] == "interaction"
    async with core.sessions() as s:
        (fb,) = (await s.scalars(select(RunFeedback))).all()
        assert fb.value == -1 and fb.user == "W111"
        s.add(ToolApproval(id="appr1", run_id=run_id, tool="kubectl_rollout_restart", arguments={}))
        await s.commit()
    assert (await press("approve", json.dumps({"run_id": run_id, "approval_id": "appr1"}), "t4"))["outcome"] \
        == "interaction"
    assert (await press("deny", json.dumps({"run_id": run_id, "approval_id": "appr1"}), "t5"))["outcome"] \
        == "rejected", "a decided approval cannot be decided again"
    cancel = await press("cancel", run_id, "t6")
    assert cancel["outcome"] == "interaction"
    assert (await press("rerun", "run_doesnotexist", "t7"))["outcome"] == "rejected"
    async with core.sessions() as s:
        appr = await s.get(ToolApproval, "appr1", populate_existing=True)
        assert appr.status == "approved" and appr.decided_by == "slack:W111"
        assert (await store.get_run(s, run_id)).status == "cancelled"
        assert await s.scalar(select(func.count()).select_from(Run)) == 2
    await core.drain()
    assert rerun["run_id"] in core.runner.submitted


async def test_unrouted_events_are_recorded_counted_and_answered_200(gw, fixtures_dir):
    core, client = gw
    body = slack_event(fixtures_dir, event_id="EvU1", channel="CNOBODY")
    r = await client.post("/slack/events", content=body, headers=signed("slack", body))
    assert r.status_code == 200 and r.json()["outcome"] == "unrouted" and r.json()["run_id"] is None
    async with core.sessions() as s:
        rows = await deliveries.list_deliveries(s, outcome="unrouted")
        assert [d.delivery_id for d in rows] == ["EvU1"] and rows[0].dispatched_at is not None
    assert core.counters["slack:unrouted"] == 1
    assert await _count(core, Run) == 0
    # Counters stay in-process and in Prometheus: the public /webhooks path exposes no cross-tenant stats.
    assert (await client.get("/stats")).status_code in (404, 405)


async def test_run_allocated_in_the_delivery_transaction(db_url, fixtures_dir):
    """If the run cannot be created, the delivery is not recorded either (one transaction)."""
    core = make_core(db_url)
    from serve_apps.webhooks import slack

    trigger = slack.parse(headers={}, body=slack_event(fixtures_dir, event_id="EvTX"), now=0).trigger
    original = store.create_run

    async def boom(*a, **kw):
        raise RuntimeError("disk full")

    store.create_run = boom
    try:
        with pytest.raises(RuntimeError):
            await deliveries.intake(core.sessions, trigger=trigger,
                                    route=deliveries.Route(True, "acme", "payments"), payload="")
    finally:
        store.create_run = original
    assert await _count(core, Delivery) == 0
    again = await deliveries.intake(core.sessions, trigger=trigger,
                                    route=deliveries.Route(True, "acme", "payments"), payload="", now=utcnow())
    assert again.outcome == "accepted" and not again.duplicate
    await core.engine.dispose()


async def test_group_commit_fails_only_the_bad_item(sqlite_url, fixtures_dir, monkeypatch):
    """SQLite group commit: one failing item rolls back its batch, then every item is retried alone,
    so only that item fails; in-batch copies share the first copy's run."""
    from serve_apps.deliveries.batch import IntakeBatcher
    from serve_apps.webhooks import slack

    core = make_core(sqlite_url)
    batcher = IntakeBatcher(core.sessions)
    real = store.create_run

    async def flaky(session, *, trigger, **kw):
        if trigger.delivery_id == "EvBAD":
            raise RuntimeError("cannot create the run")
        return await real(session, trigger=trigger, **kw)

    monkeypatch.setattr(store, "create_run", flaky)
    route = deliveries.Route(True, "acme", "payments")
    triggers = [slack.parse(headers={}, body=slack_event(fixtures_dir, event_id=e), now=0).trigger
                for e in ("EvG1", "EvBAD", "EvG2", "EvG1")]
    results = await asyncio.gather(*[batcher.intake(trigger=t, route=route, payload="") for t in triggers],
                                   return_exceptions=True)
    assert isinstance(results[1], RuntimeError)
    assert results[0].outcome == "accepted" and results[2].outcome == "accepted"
    assert results[3].duplicate and results[3].run_id == results[0].run_id
    assert batcher.fallbacks == 1
    assert await _count(core, Delivery) == 2 and await _count(core, Run) == 2
    ok = await asyncio.gather(*[batcher.intake(trigger=t, route=route, payload="") for t in
                                [slack.parse(headers={}, body=slack_event(fixtures_dir, event_id=f"EvN{i}"),
                                             now=0).trigger for i in range(5)]])
    assert len({r.run_id for r in ok}) == 5 and batcher.batches >= 1
    await core.engine.dispose()


async def test_group_commit_keeps_thread_semantics_within_a_batch(sqlite_url, fixtures_dir):
    from serve_apps.deliveries.batch import IntakeBatcher
    from serve_apps.webhooks import slack

    core = make_core(sqlite_url)
    batcher = IntakeBatcher(core.sessions)
    root = json.loads(slack_event(fixtures_dir, event_id="EvT1"))
    root_ts = root["event"]["ts"]
    follow = json.loads(slack_event(fixtures_dir, event_id="EvT2"))
    follow["event"].update(type="message", ts="1.5", thread_ts=root_ts, text="more context")
    mention = json.loads(slack_event(fixtures_dir, event_id="EvT3"))
    mention["event"].update(ts="1.6", thread_ts=root_ts)
    other = json.loads(slack_event(fixtures_dir, event_id="EvT4"))
    triggers = [slack.parse(headers={}, body=json.dumps(d).encode(), now=0).trigger
                for d in (root, follow, mention, other)]
    route = deliveries.Route(True, "acme", "payments")
    results = await asyncio.gather(*[batcher.intake(trigger=t, route=route, payload="") for t in triggers])
    assert [r.outcome for r in results] == ["accepted", "continued", "continued", "accepted"]
    assert results[1].run_id == results[2].run_id == results[0].run_id != results[3].run_id
    assert batcher.batches == 1 and batcher.fallbacks == 0
    assert await _count(core, Run) == 2 and await _count(core, Delivery) == 4
    await core.engine.dispose()


async def test_drain_leaves_no_dispatch_mark_write_in_flight(gw, fixtures_dir):
    # The marks' batching task may be mid-flush when drain runs: drain waits for it, so nothing of
    # the gateway still uses the database when the caller's event loop closes.
    core, client = gw
    body = slack_event(fixtures_dir)
    first = await client.post("/slack/events", content=body, headers=signed("slack", body))
    assert first.status_code == 200
    await core.drain()
    marks = core._marks
    assert marks._task is not None and marks._task.done() and not marks._pending
    async with core.sessions() as s:
        delivery = await s.scalar(select(Delivery))
    assert delivery.dispatched_at is not None
