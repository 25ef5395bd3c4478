"""Fan-out benchmark: 16 tool calls of 0.5 s simulated I/O, spread over 4 sub-agents.

The path is the engine's own: one ``SubAgentFanout`` starts each sub-agent as its own
``SubAgentWorker.run`` Ray call; each sub-agent's configured playbook of 4 tool calls runs as
concurrent ``ToolExecutor.call`` actor calls against the demo backend (``latency_ms: 500``).
Actors are started and warmed first (process start-up is not the fan-out). Reports the wall time of
the fan-out against the sum of the measured call durations (sequential) and the longest call; target wall ≤ 1.3 ×
longest. Prints one JSON line.

    .venv/bin/python bench/fanout.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ray

from actors.engine.fanout import SubAgentFanout
from actors.engine.placement import LOCAL_RESOURCES, options_for_key
from actors.engine.subagent_worker import SubAgentWorker
from actors.engine.tool_executor import ToolExecutor
from incidentfox.db import utcnow

AGENTS = ("kubernetes", "metrics", "changes", "cloud")
CALLS_PER_AGENT = 4
LATENCY_MS = 500

PLAYBOOK = {
    "kubernetes": [("kubernetes_list_pods", {"namespace": "shop"}), ("kubernetes_get_events", {"namespace": "shop"}),
                   ("kubernetes_list_deployments", {"namespace": "shop"}), ("kubernetes_list_nodes", {})],
    "metrics": [("prometheus_query", {"query": "up", "metric": "error_rate"}),
                ("prometheus_query", {"query": "up", "metric": "latency_p99"}),
                ("prometheus_query_range", {"query": "up", "metric": "error_rate", "since_minutes": 60}),
                ("demo_service_map", {})],
    "changes": [("kubernetes_rollout_history", {"namespace": "shop"}), ("github_deployments", {}),
                ("github_recent_commits", {}), ("github_pull_requests", {})],
    "cloud": [("aws_rds_instances", {}), ("aws_ec2_instance_status", {}), ("aws_ecs_services", {}),
              ("aws_cloudwatch_metric", {"namespace": "AWS/RDS", "metric_name": "CPUUtilization"})],
}


def config() -> dict:
    return {"integrations": {"demo": {"enabled": True, "latency_ms": LATENCY_MS}},
            "agents": {a: {"playbook": [{"tool": t, "args": args} for t, args in PLAYBOOK[a]]} for a in AGENTS}}


async def one_fanout(workers: list, executors: list, *, i: int) -> dict:
    fanout = SubAgentFanout(run_id=f"bench-fanout-{i}", org_id="bench", team_id="bench", config=config(),
                            workers=workers, executors=executors, services=[],
                            window=(utcnow() - timedelta(hours=1), utcnow()), deadline_at=time.monotonic() + 60)
    started = time.perf_counter()
    results = await fanout.run_all(list(AGENTS), mode="offline")
    wall = time.perf_counter() - started
    calls = sum(r.tool_count for r in results.values())
    errors = [e for r in results.values() for e in r.tool_errors]
    durations = [end - start for r in results.values() for _, start, end in r.tool_timings]
    return {"wall_s": wall, "calls": calls, "errors": errors, "durations": durations}


async def main(repeats: int) -> dict:
    opts = options_for_key("shared")
    workers = [SubAgentWorker.options(**opts).remote() for _ in range(2)]
    executors = [ToolExecutor.options(**opts).remote(None) for _ in range(2)]
    await asyncio.gather(*(a.ping.remote() for a in [*workers, *executors]))
    await one_fanout(workers, executors, i=-1)     # warm the code paths (imports, first world build)
    runs = [await one_fanout(workers, executors, i=i) for i in range(repeats)]
    walls = [r["wall_s"] for r in runs]
    wall = statistics.median(walls)
    mid = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    longest = max(mid["durations"])
    calls = mid["calls"]
    sequential = sum(mid["durations"])
    return {"bench": "fanout", "subagents": len(AGENTS), "tool_calls": calls, "tool_latency_s": LATENCY_MS / 1000,
            "wall_s": round(wall, 4), "wall_runs_s": [round(w, 4) for w in walls],
            "longest_call_s": round(longest, 4), "sequential_s": round(sequential, 3),
            "ratio_to_longest": round(wall / longest, 3), "ratio_to_sequential": round(wall / sequential, 3),
            "target_ratio": 1.3, "ok": wall <= 1.3 * longest and calls == len(AGENTS) * CALLS_PER_AGENT,
            "tool_errors": mid["errors"]}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Sub-agent and tool-call fan-out benchmark.")
    p.add_argument("--repeats", type=int, default=3)
    ns = p.parse_args()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             resources=LOCAL_RESOURCES, configure_logging=False)
    try:
        out = asyncio.run(main(ns.repeats))
    finally:
        ray.shutdown()
    print(json.dumps(out))
