"""Evaluation benchmark: each public RCA suite through the live path, against its targets (issue 14).

Runs ``incidentfox eval --suite S --json FILE`` as a fresh process per suite (so Ray start-up counts,
as the target says) for petshop, holmesgpt and nezha, each read in place from ``../shared/benchmarks``
(a suite whose data is absent prints a ``skipped`` line saying so). The baseline, measured in the same
run, is the ``demo`` suite: four cases, so its wall time is what Ray start-up and the harness cost
on this machine at this moment. Prints one JSON line per suite: cases, top-1, top-3, tool calls,
wall seconds, the baseline's wall seconds, each target and whether it is met.

    .venv/bin/python bench/eval.py [--suites petshop,holmesgpt,nezha]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "benchmarks"
DATA = {"petshop": ("petshop",), "holmesgpt": ("holmesgpt-investigate", "holmesgpt-ask"), "nezha": ("nezha",)}
WALL_TARGET_S = 60.0
# Issue 14's accuracy targets, by suite: (key in the --json output, minimum).
TARGETS: dict[str, dict[str, float]] = {
    "petshop": {"top1": 0.9, "latency_specificity": 0.9},
    "holmesgpt": {"both_right": 0.9},
    "nezha": {"top1": 0.93},
}


def run_suite(suite: str) -> tuple[dict[str, Any], float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "cli.main", "eval", "--suite", suite, "--json", str(out)],
                              cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              check=False)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit(f"incidentfox eval --suite {suite} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return json.loads(out.read_text()), wall


def measures(suite: str, result: dict[str, Any]) -> dict[str, float | None]:
    got: dict[str, float | None] = {"top1": result.get("top1"), "top3": result.get("top3")}
    if suite == "petshop":
        got["latency_specificity"] = result.get("specificity_latency")
    if suite == "holmesgpt":
        cases = result.get("per_case", [])   # positives and negatives: each right or not
        got["both_right"] = (sum(1 for c in cases if c.get("culprit_ok") and c.get("phrase_ok")) / len(cases)
                             if cases else None)
    return got


def main(suites: list[str]) -> None:
    _, baseline = run_suite("demo")
    for suite in suites:
        missing = [d for d in DATA[suite] if not (SHARED / d).is_dir()]
        if missing:
            print(json.dumps({"bench": "eval", "suite": suite, "skipped": f"{', '.join(missing)} not in {SHARED}"}))
            continue
        result, wall = run_suite(suite)
        got = measures(suite, result)
        targets = {k: {"target": v, "value": got.get(k), "met": got.get(k) is not None and got[k] >= v}
                   for k, v in TARGETS[suite].items()}
        targets["wall_s"] = {"target": WALL_TARGET_S, "value": round(wall, 1), "met": wall < WALL_TARGET_S}
        print(json.dumps({"bench": "eval", "suite": suite, "cases": result.get("cases"), "top1": got["top1"],
                          "top3": got["top3"], "tool_calls": result.get("tool_calls"), "wall_s": round(wall, 1),
                          "baseline_demo_wall_s": round(baseline, 1), "targets": targets,
                          "all_met": all(t["met"] for t in targets.values())}), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", default="petshop,holmesgpt,nezha")
    ns = ap.parse_args()
    chosen = [s.strip() for s in ns.suites.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in DATA]
    if unknown:
        raise SystemExit(f"unknown suite(s) {unknown}: choose from {sorted(DATA)}")
    main(chosen)
