"""Per-team quotas in the pool on Ray: team A's burst runs at most its quota at once, and team B's
run is dispatched while A's runs still wait (asserted on the recorded start/finish order)."""

from __future__ import annotations

import asyncio

import pytest
from engine_support import Engine, demo_config

pytestmark = [pytest.mark.ray, pytest.mark.slow]


async def test_team_quota_bounds_a_burst_and_other_teams_proceed(engine: Engine) -> None:
    team_a = await engine.add_team(demo_config(channel="CQA", latency_ms=150, quotas={"max_concurrent_runs": 2}))
    team_b = await engine.add_team(demo_config(channel="CQB", latency_ms=150))
    a_ids = [await engine.create_run(team_a, channel="CQA") for _ in range(10)]
    b_id = await engine.create_run(team_b, channel="CQB")
    await asyncio.gather(*(engine.runner.submit(run_id=r, org_id="acme", team_id=team_a) for r in a_ids))
    await engine.runner.submit(run_id=b_id, org_id="acme", team_id=team_b)

    stats = await engine.runner.stats()
    teams = stats["groups"]["shared"]["teams"]
    assert teams[f"acme/{team_a}"]["limit"] == 2 and teams[f"acme/{team_a}"]["running"] <= 2

    runs = [await engine.wait_terminal(r, timeout=180) for r in [*a_ids, b_id]]
    assert all(r.status == "succeeded" for r in runs), [r.error for r in runs]
    a_runs, b_run = runs[:-1], runs[-1]

    # A's runs never overlap more than 2 deep (a run is dispatched before it starts and released
    # after it finishes, so the recorded intervals lie inside the quota's slots).
    edges = sorted([(r.started_at, 1) for r in a_runs] + [(r.finished_at, -1) for r in a_runs],
                   key=lambda e: (e[0], e[1]))
    depth = peak = 0
    for _, step in edges:
        depth += step
        peak = max(peak, depth)
    assert peak == 2

    # B was not queued behind A's burst: it started while most of A's runs had not.
    a_before_b = sum(1 for r in a_runs if r.started_at < b_run.started_at)
    assert a_before_b <= 4, a_before_b
