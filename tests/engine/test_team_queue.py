"""FairQueue (actors/engine/team_queue.py): per-team quotas and round-robin between teams, without Ray."""

from __future__ import annotations

import pytest

from actors.engine.pool_config import PoolConfig, make_config_loader
from actors.engine.team_queue import FairQueue
from actors.scheduler.service import team_quota
from config_service import DEFAULT_CONFIG, InvalidTeamConfig, TeamConfig, max_concurrent_runs
from incidentfox.settings import Settings

A, B, C = ("acme", "a"), ("acme", "b"), ("acme", "c")


def test_a_burst_never_exceeds_its_quota_and_b_starts_next() -> None:
    q: FairQueue[str] = FairQueue()
    for i in range(10):
        q.push(f"a{i}", team=A, limit=2)
    started = [q.pop(), q.pop()]
    assert started == ["a0", "a1"] and q.pop() is None and not q.ready()   # A at its quota
    q.push("b0", team=B, limit=2)
    assert q.ready() and q.pop() == "b0"                                   # B is not behind A's burst

    running_a, peak_a = 2, 2
    while len(q):
        q.release(A)
        running_a -= 1
        while (item := q.pop()) is not None:
            assert item.startswith("a")
            running_a += 1
            peak_a = max(peak_a, running_a)
            started.append(item)
    assert peak_a == 2 and q.running(A) == 2
    assert started == [f"a{i}" for i in range(10)]                         # FIFO within a team


def test_teams_with_queued_work_take_turns() -> None:
    q: FairQueue[str] = FairQueue()
    for i in range(3):
        q.push(f"a{i}", team=A, limit=10)
    for i in range(3):
        q.push(f"b{i}", team=B, limit=10)
    q.push("c0", team=C, limit=10)
    order = []
    while (item := q.pop()) is not None:
        order.append(item)
    assert order == ["a0", "b0", "c0", "a1", "b1", "a2", "b2"]
    assert q.snapshot()["acme/a"] == {"running": 3, "queued": 0, "limit": 10}


def test_release_frees_a_slot_and_the_latest_limit_wins() -> None:
    q: FairQueue[str] = FairQueue()
    q.push("a0", team=A, limit=1)
    q.push("a1", team=A, limit=1)
    assert q.pop() == "a0" and q.pop() is None
    q.release(A)
    assert q.pop() == "a1" and q.running(A) == 1
    q.push("a2", team=A, limit=2)      # the team's config now allows 2
    assert q.pop() == "a2" and q.running(A) == 2
    q.release(A), q.release(A), q.release(A)   # never negative
    assert q.running(A) == 0 and len(q) == 0


def test_one_quota_reader() -> None:
    # One default (config_service/core/defaults.py); a malformed quota is the reader's typed error.
    assert max_concurrent_runs({}) == DEFAULT_CONFIG["quotas"]["max_concurrent_runs"] == 5
    assert max_concurrent_runs({"quotas": {"max_concurrent_runs": 7}}) == 7
    assert max_concurrent_runs({"quotas": None}) == 5   # null is absent (RFC 7396)
    for bad in (0, "x", True):
        with pytest.raises(InvalidTeamConfig):
            max_concurrent_runs({"quotas": {"max_concurrent_runs": bad}})
    assert TeamConfig({"quotas": {"max_concurrent_runs": 3}}).max_concurrent_runs == 3
    assert team_quota({"quotas": {"max_concurrent_runs": 3}}) == 3 and team_quota({}) == 5


async def test_static_config_per_team() -> None:
    cfg = PoolConfig(database_url="sqlite://", settings=Settings(),
                     static_config={"quotas": {"max_concurrent_runs": 2}, "slack": {"default_channel": "C"}},
                     static_team_configs={"acme/b": {"deployment": {"mode": "dedicated"}}})
    load = make_config_loader(cfg, sessions=None)
    a, b = await load("acme", "a"), await load("acme", "b")
    assert a == {"quotas": {"max_concurrent_runs": 2}, "slack": {"default_channel": "C"}}
    assert b["deployment"] == {"mode": "dedicated"} and b["quotas"] == {"max_concurrent_runs": 2}
