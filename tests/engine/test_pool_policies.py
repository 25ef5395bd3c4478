"""The pool's pure decisions, without Ray: which actor takes a run (scaling), which idle actors
stop, what a lease renewal means for each hosted run, and the engine's typed outcomes."""

from __future__ import annotations

import json

from actors.engine.leases import LeaseAction, LeaseRow, lease_actions
from actors.engine.outcomes import RunOutcome, SubAgentStatus
from actors.engine.scaling import Member, Pick, idle_to_stop, pick
from actors.engine.subagent_worker import _status
from incidentfox.contracts import RunStatus


def _members(*loads: int, idle_since: float = 0.0) -> list[Member]:
    return [Member(name=f"a{i}", handle=None, load=load, idle_since=idle_since) for i, load in enumerate(loads)]


def test_pick_prefers_the_least_loaded_and_grows_before_half_full() -> None:
    ms = _members(3, 1, 2)
    assert pick(ms, max_concurrency=10, max_actors=3) == Pick(member=ms[1])
    # The least loaded is half full: grow while below max_actors…
    assert pick(_members(5, 6), max_concurrency=10, max_actors=3) == Pick(grow=True)
    # …and use it when the pool is at max_actors.
    ms = _members(5, 6, 7)
    assert pick(ms, max_concurrency=10, max_actors=3) == Pick(member=ms[0])


def test_pick_skips_draining_and_full_actors() -> None:
    ms = _members(0, 10, 10)
    ms[0].draining = True
    # A draining actor takes no run and does not count against max_actors.
    assert pick(ms, max_concurrency=10, max_actors=2) == Pick()             # all full, at the bound
    assert pick(ms, max_concurrency=10, max_actors=3) == Pick(grow=True)
    assert pick([], max_concurrency=10, max_actors=1) == Pick(grow=True)


def test_idle_actors_stop_but_never_below_min_actors() -> None:
    ms = _members(0, 0, 0, 2, idle_since=0.0)
    stop = idle_to_stop(ms, now=100.0, idle_s=30.0, min_actors=2)
    assert len(stop) == 2 and all(m.load == 0 for m in stop)
    assert idle_to_stop(ms, now=10.0, idle_s=30.0, min_actors=1) == []      # not idle long enough
    assert idle_to_stop(ms, now=100.0, idle_s=30.0, min_actors=4) == []
    assert len(idle_to_stop(ms, now=100.0, idle_s=30.0, min_actors=0)) == 3  # busy actors stay


def test_a_renewal_keeps_cancels_or_abandons_each_run() -> None:
    rows = [LeaseRow("r1", False, "me", "running"), LeaseRow("r2", True, "me", "running"),
            LeaseRow("r3", False, "other", "running"), LeaseRow("r4", True, "me", "queued")]
    assert lease_actions(rows, owner="me") == {"r1": LeaseAction.KEEP, "r2": LeaseAction.CANCEL,
                                               "r3": LeaseAction.ABANDON, "r4": LeaseAction.ABANDON}


def test_outcomes_keep_their_stored_strings() -> None:
    assert [o.value for o in RunOutcome] == ["succeeded", "failed", "not_claimed", "missing", "lost_race"]
    assert RunOutcome.SUCCEEDED.status is RunStatus.SUCCEEDED and RunOutcome.LOST_RACE.status is None
    assert json.dumps({"status": SubAgentStatus.TIMEOUT}) == '{"status": "timeout"}'
    assert {s.value for s in SubAgentStatus} == {"running", "ok", "failed", "skipped", "timeout", "cancelled"}
    assert [s for s in SubAgentStatus if s.unsuccessful] == [SubAgentStatus.FAILED, SubAgentStatus.TIMEOUT]


def test_a_finished_subagent_status() -> None:
    assert _status(tools_offered=0, calls=0, errors=0) is SubAgentStatus.SKIPPED
    assert _status(tools_offered=2, calls=0, errors=0) is SubAgentStatus.OK
    assert _status(tools_offered=2, calls=3, errors=3) is SubAgentStatus.FAILED
    assert _status(tools_offered=2, calls=3, errors=2) is SubAgentStatus.OK
