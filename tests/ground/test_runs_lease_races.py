"""Lease recovery against the owner's late heartbeat and against another sweep's requeue and
another actor's claim, driven step by step (no timing). SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from incidentfox.contracts import RunStatus, Trigger
from incidentfox.db import utcnow
from incidentfox.runs import store


def _trigger(delivery_id: str, **kw) -> Trigger:
    base = {"source": "api", "delivery_id": delivery_id, "event_kind": "x", "title": "t"}
    return Trigger(**{**base, **kw})


async def _claimed(sessions, *, owner: str, lease_s: float, attempts: int = 1) -> str:
    async with sessions() as s:
        run = await store.create_run(s, org_id="acme", team_id="payments", trigger=_trigger("d1"))
        for i in range(attempts):
            assert await store.claim(s, run_id=run.id, owner=owner if i == attempts - 1 else f"{owner}-{i}",
                                     lease_s=lease_s)
            if i < attempts - 1:
                assert await store.transition(s, run_id=run.id, to=RunStatus.QUEUED, lease_owner=None)
        await s.commit()
        return run.id


async def _lease(sessions, run_id: str) -> tuple[str, str | None, int]:
    async with sessions() as s:
        run = await store.get_run(s, run_id)
        return run.status, run.lease_owner, run.attempts


@pytest.mark.parametrize("attempts", [1, 2], ids=["would_requeue", "would_fail"])
async def test_a_lease_renewed_after_the_sweep_read_it_is_kept(sessions, attempts):
    """The sweep reads A's lapsed lease; A's late heartbeat renews it; the sweep's update is refused."""
    run_id = await _claimed(sessions, owner="A", lease_s=1, attempts=attempts)
    now = utcnow() + timedelta(seconds=5)            # the sweep's clock: A's 1 s lease has lapsed
    async with sessions() as sweep:
        (stale,) = await store.expired_leases(sweep, now=now)
        async with sessions() as heartbeat:            # A renews, well past the sweep's now
            assert await store.renew_lease(heartbeat, run_ids=[run_id], owner="A", lease_s=600) == 1
            await heartbeat.commit()
        assert await store.recover_lease(sweep, run=stale, now=now) is None
        await sweep.commit()
    assert await _lease(sessions, run_id) == (RunStatus.RUNNING.value, "A", attempts)


async def test_a_lease_another_actor_claimed_after_the_sweep_read_it_is_kept(sessions):
    """Sweeps 1 and 2 read A's lapsed lease; sweep 2 requeues and B claims (a short lease, lapsed by
    sweep 1's clock too); sweep 1's update is refused: B's lease is not A's."""
    run_id = await _claimed(sessions, owner="A", lease_s=1)
    now = utcnow() + timedelta(seconds=5)
    async with sessions() as sweep1:
        (stale,) = await store.expired_leases(sweep1, now=now)
        async with sessions() as sweep2:
            assert await store.recover_expired(sweep2, now=now) == ([run_id], [])
            await sweep2.commit()
        async with sessions() as b:
            assert await store.claim(b, run_id=run_id, owner="B", lease_s=1)
            await b.commit()
        assert await store.recover_lease(sweep1, run=stale, now=now) is None
        await sweep1.commit()
    assert await _lease(sessions, run_id) == (RunStatus.RUNNING.value, "B", 2)


async def test_recovery_still_moves_a_lapsed_lease(sessions):
    run_id = await _claimed(sessions, owner="A", lease_s=1)
    async with sessions() as s:
        (stale,) = await store.expired_leases(s, now=utcnow() + timedelta(seconds=5))
        assert await store.recover_lease(s, run=stale, now=utcnow() + timedelta(seconds=5)) is RunStatus.QUEUED
        await s.commit()
    assert await _lease(sessions, run_id) == (RunStatus.QUEUED.value, None, 1)
