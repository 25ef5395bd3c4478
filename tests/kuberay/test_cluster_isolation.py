"""Placement on a multi-node local Ray cluster shaped like the KubeRay one (cluster/localsim.py).

Runs the scenario in a subprocess: it needs its own cluster shape (head without CPU, a shared worker,
a dedicated node for team acme/a), not the test session's Ray.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.platform
def test_dedicated_and_shared_work_stay_on_their_nodes() -> None:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run([sys.executable, "-m", "cluster.localsim", "probe"], check=False, cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])

    # Dedicated team A's actors and tasks run only on A's node.
    assert set(result["team_a_actors"]) == {"team-a-1"}
    assert set(result["team_a_tasks"]) == {"team-a-1"}
    # Shared work never lands there: shared teams, Serve-like replicas, plain CPU tasks.
    assert set(result["team_b_actors"]) == {"shared-1"}
    assert set(result["serve_replicas"]) == {"shared-1"}
    assert set(result["plain_cpu_tasks"]) == {"shared-1"}
    # Team work asking for CPU cannot use the dedicated node (CPU 0) and does not spill to shared.
    assert result["team_a_cpu_task"] == "waiting"

    # A's node removed: its running actors fail, the reason is explicit, new work waits...
    assert result["running_actor_after_removal"] == "ActorDiedError"
    assert "no Ray node offers the custom resource 'team_acme_a'" in result["unavailable_reason"]
    assert result["new_team_a_work_while_no_node"] == "waiting"
    # ...and lands on the team's next node, never on shared.
    assert result["waiting_work_placed_on"] == "team-a-2"
