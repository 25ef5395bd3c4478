"""The run state machine and store, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from incidentfox.contracts import RunStatus, ThreadRef, Trigger
from incidentfox.db import utcnow
from incidentfox.runs import store


def _trigger(**kw) -> Trigger:
    base = {"source": "slack", "delivery_id": "Ev1", "event_kind": "app_mention", "text": "checkout is slow",
            "thread": ThreadRef(channel="C1", ts="1.0"), "human": True}
    base.update(kw)
    return Trigger(**base)


async def test_lifecycle_and_terminal_is_final(sessions):
    async with sessions() as s:
        run = await store.create_run(s, org_id="acme", team_id="payments", trigger=_trigger())
        await s.commit()
        assert run.status == "queued"
        assert await store.claim(s, run_id=run.id, owner="pool-0", lease_s=30)
        assert not await store.claim(s, run_id=run.id, owner="pool-1", lease_s=30), "claimed twice"
        assert await store.transition(s, run_id=run.id, to=RunStatus.SUCCEEDED, result={"summary": "x"})
        # A terminal run never moves again, whoever asks.
        assert not await store.transition(s, run_id=run.id, to=RunStatus.FAILED)
        assert not await store.transition(s, run_id=run.id, to=RunStatus.RUNNING)
        await s.commit()
        got = await store.get_run(s, run.id)
        assert got.status == "succeeded" and got.attempts == 1
        assert got.started_at and got.finished_at and got.lease_owner is None
        view = store.run_view(got)
        assert view["result"] == {"summary": "x"} and view["team"] == "payments"


async def test_cancel_queued_is_immediate_and_running_is_flagged(sessions):
    async with sessions() as s:
        a = await store.create_run(s, org_id="o", team_id="t", trigger=_trigger(delivery_id="a"))
        b = await store.create_run(s, org_id="o", team_id="t", trigger=_trigger(delivery_id="b"))
        await store.claim(s, run_id=b.id, owner="w", lease_s=30)
        assert await store.request_cancel(s, run_id=a.id) == "cancelled"
        assert await store.request_cancel(s, run_id=b.id) == "running"
        await s.commit()
        assert (await store.get_run(s, b.id)).cancel_requested
        # A cancelled-while-queued run can't be claimed later.
        assert not await store.claim(s, run_id=a.id, owner="w", lease_s=30)


async def test_expired_lease_is_retried_once_then_failed_with_reason(sessions):
    async with sessions() as s:
        run = await store.create_run(s, org_id="o", team_id="t", trigger=_trigger())
        await store.claim(s, run_id=run.id, owner="dead-actor", lease_s=1)
        await s.commit()
        later = utcnow() + timedelta(seconds=5)
        requeued, failed = await store.recover_expired(s, now=later)
        assert requeued == [run.id] and failed == []
        await store.claim(s, run_id=run.id, owner="dead-again", lease_s=1)
        requeued, failed = await store.recover_expired(s, now=utcnow() + timedelta(seconds=5))
        assert requeued == [] and failed == [run.id]
        await s.commit()
        got = await store.get_run(s, run.id)
        assert got.status == "failed" and "dead-again" in got.error and got.attempts == 2
        kinds = [e.data.get("reason", "") for e in await store.list_events(s, run_id=run.id)]
        assert kinds[0] == "lease_expired_retry"


async def test_racing_transitions_have_one_winner(sessions):
    async with sessions() as s:
        run = await store.create_run(s, org_id="o", team_id="t", trigger=_trigger())
        await store.claim(s, run_id=run.id, owner="w", lease_s=30)
        await s.commit()

    async def finish(to):
        async with sessions() as s2:
            ok = await store.transition(s2, run_id=run.id, to=to)
            await s2.commit()
            return ok

    results = await asyncio.gather(finish(RunStatus.SUCCEEDED), finish(RunStatus.CANCELLED),
                                   finish(RunStatus.FAILED))
    assert sorted(results) == [False, False, True]


async def test_correlation_window_and_absorb(sessions):
    async with sessions() as s:
        run = await store.create_run(s, org_id="o", team_id="t", trigger=_trigger(is_alert=True),
                                     correlation_key="svc:checkout")
        await s.commit()
        hit = await store.find_correlated(s, org_id="o", team_id="t", keys=["svc:checkout"], window_s=600)
        assert hit is not None and hit.id == run.id
        # Outside the window, or another team: no match.
        assert await store.find_correlated(s, org_id="o", team_id="t", keys=["svc:checkout"], window_s=600,
                                           now=utcnow() + timedelta(seconds=601)) is None
        assert await store.find_correlated(s, org_id="o", team_id="x", keys=["svc:checkout"],
                                           window_s=600) is None
        await store.absorb(s, run_id=run.id, trigger=_trigger(source="pagerduty", delivery_id="pd1",
                                                              title="High latency"))
        await s.commit()
        got = await store.get_run(s, run.id)
        assert [a["delivery_id"] for a in got.absorbed] == ["pd1"]
        # A finished run absorbs nothing more.
        await store.transition(s, run_id=run.id, to=RunStatus.FAILED)
        await s.commit()
        assert await store.find_correlated(s, org_id="o", team_id="t", keys=["svc:checkout"],
                                           window_s=600) is None


async def test_thread_lookup_and_events_are_ordered(sessions):
    async with sessions() as s:
        run = await store.create_run(s, org_id="o", team_id="t", trigger=_trigger())
        for i in range(3):
            await store.append_event(s, run_id=run.id, kind="phase", data={"i": i})
        await s.commit()
        assert (await store.find_by_thread(s, channel="C1", thread_ts="1.0", org_id="o", team_id="t")).id == run.id
        assert await store.find_by_thread(s, channel="C1", thread_ts="2.0", org_id="o", team_id="t") is None
        assert await store.find_by_thread(s, channel="C1", thread_ts="1.0", org_id="o", team_id="u") is None
        evs = await store.list_events(s, run_id=run.id, after_seq=1)
        assert [e.seq for e in evs] == [2, 3] and [e.data["i"] for e in evs] == [1, 2]


async def test_a_runs_evidence_is_read_only_when_asked_for(sessions):
    from sqlalchemy import inspect

    snapshot = {"trigger": {"services": ["checkout"]}, "bundle": {"logs": [{"message": "x" * 1000}] * 200}}
    async with sessions() as s:
        run = await store.create_run(s, org_id="o", team_id="t", trigger=_trigger())
        await store.claim(s, run_id=run.id, owner="w", lease_s=30)
        assert await store.transition(s, run_id=run.id, to=RunStatus.SUCCEEDED, result={"summary": "x"},
                                      evidence=snapshot)
        await s.commit()
    async with sessions() as s:     # a row read for its status, a view or a listing leaves it on disk
        got = await store.get_run(s, run.id)
        listed = await store.list_runs(s, org_id="o", team_id="t")
        assert got.status == "succeeded" and store.run_view(got)["result"] == {"summary": "x"}
        assert "evidence" in inspect(got).unloaded and all("evidence" in inspect(r).unloaded for r in listed)
        assert await store.run_evidence(s, run.id) == snapshot     # a follow-up reads it
