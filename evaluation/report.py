"""Render ``docs/evaluation.md``: method, windowing, attribution, and each suite's latest numbers.

Each suite's results live between ``<!-- results:<suite> -->`` markers; writing one suite keeps the
others' last results and regenerates the fixed text around them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluation.suites import REPO_ROOT

DOCS_PATH = REPO_ROOT / "docs" / "evaluation.md"
SUITES = ("petshop", "holmesgpt", "holmesgpt-ask", "nezha", "demo")
# A holmesgpt run fills one section per fixture shape (`shape` of each case; older rows: investigate).
HOLMES_SECTIONS = {"investigate": "holmesgpt", "ask": "holmesgpt-ask"}

HEADER = """# Evaluation of the root-cause ranking

`incidentfox eval --suite petshop|holmesgpt|nezha|demo` runs the offline planner's ranking
(`actors/ranking`, rules in [ranking.md](ranking.md)) over recorded evidence and scores it against
ground truth nobody on this team wrote. Cases run in parallel on Ray: the items are split into a few
batches per worker (`--workers`, default 2), each batch one CPU task. `--json OUT` writes every
number below plus per-case results; `--write-docs` rewrites this file. Tests pin floors slightly
below these numbers (`tests/eval/test_eval_*.py`), so a regression fails CI.

## Method

Each suite has one path. `petshop`, `holmesgpt` and `nezha` run through replay: the offline planner
investigates each case, calling our own tools, and a replay store built from the case's recordings
answers them (`actors/tools/replay.py`), so the numbers measure the planner as it runs. `demo` ranks
its seeded incidents directly (it has no recordings to replay).

`make bench` runs the same suites as `bench/eval.py`: each one a fresh `incidentfox eval` process (so
Ray start-up counts), one JSON line per suite with cases, top-1, top-3, tool calls and wall time
against issue 14's targets (Nezha top-1 ≥ 0.93; HolmesGPT culprit and phrases right on ≥ 90 %;
PetShop top-1 and latency specificity ≥ 0.9; each suite under 60 s), beside the `demo` suite's wall
time measured in the same run as the baseline (what Ray start-up and the harness cost at that moment).

**PetShop** (52 injected incidents, low and high traffic), through the live path: the offline
planner investigates each case with a team that has Prometheus, and a replay store built from the
case's recordings answers its tools (`evaluation/replay_petshop.py`, run by
`evaluation/replay_run.py`: the planner's playbooks, then its follow-up rounds, then the ranking,
as `actors/engine/offline_planner.py` does them). The adapter (`evaluation/petshop.py`) turns
`graph.csv` (row = caller) into the call graph, `noissue/metrics.csv` into baseline series, each
issue's `metrics.csv` into the incident series and only the `target` of `target.json` into the alert
(node, metric, statistic, time); the planner is given that alert and nothing else. It never reads
`metadata` (how the fault was injected) or `root_cause`; the scorer alone reads `root_cause.node`,
and a test with poisoned values proves the adapter does not. Recordings are filed by metric kind and
statistic, never by service name, each matched on the exact PromQL that `actors/tools/promql.py`
builds from the team's `investigation.metrics`: availability (`Average`, kept as recorded) answers
the error-rate query; each latency statistic PetShop records (`Average`, `p50`, `p90`, `p95`, `p99`)
answers the latency query *of that statistic* (`latency_average`: the histogram's `_sum` rate over
its `_count` rate; `latency_p99`: `histogram_quantile(0.99, …)`); the call graph with the X-Ray node
kinds answers `prometheus_service_graph`. Every other call (memory, follow-ups) answers `no data`.
The planner asks its default p99 and, because PetShop's latency alerts carry the statistic
`Average`, the average too, the way it reads a live alert's statistic ([engine.md](engine.md),
"Latency statistic"); the ranker then compares the alert's own statistic. The p99 query is never
answered with the Average series. `tool_calls` per case counts the planner's calls
(`tool_calls_answered`: those that found recorded data). Availability is not turned into an error
ratio: the ranker then judges a flat-zero baseline against its own jumps and blames normal windows.
Top-k recall: the injected node is among the first *k* suspects, reported per scenario and alert
metric (latency, availability). Until issue 14, a direct adapter handed each case's
evidence straight to the ranker; it scored the same top-1 once the planner asked the alert's
statistic, and was retired so the number measures the planner as it runs.

**Specificity (windowing).** Over each scenario's `noissue` data (589 five-minute points, about
two days), windows shaped exactly like an issue are slid across the second half of the data, one
every 6 points (30 minutes): the points `i-2 … i+2` form the case window, and only the points before
the window are recorded as its baseline, so the planner never sees the future. The window's
recordings are built once and investigated once per alert target the scenario's issues use
(`PetSite` latency and availability, statistic `Average`), the alert firing at point `i`. A window
passes when the ranking blames nothing. Specificity is the share of passing windows, per alert
metric over both scenarios (49 windows per scenario and metric).

**Where PetShop's time goes** (profiled 2026-12-04, in-process CPU time, which the machine's load
does not change): the whole suite took 32.1 CPU-seconds before issue 14's work and 11.1 after. Most
of the 32 s were not ranking: each replayed answer was deep-copied (`model_copy(deep=True)` over
thousands of points: now a pydantic-core dump and validate, ~5× faster), `asyncio.run` read back its
SIGINT handler, whose repr holds the finished task and so the whole evidence bundle (now a plain
event loop), and every specificity window was built two or three times (now once, for all its alert
targets). Ray round trips are few (a few batches per worker), the follow-up rounds cost little
(PetShop's team has no trace or log tool to follow up with), and the offline path no longer imports
the agents SDK in each worker. What is left is mostly ranking (~0.1 s per investigation) and, in
wall time, Ray's start-up (18 s at load average 11 on 2 CPUs) and the machine's other work.

**HolmesGPT** (9 recorded investigations and 11 recorded questions, both through replay, the only
path: `incidentfox eval --suite holmesgpt` reads `../shared/benchmarks/holmesgpt-investigate/` and
`../shared/benchmarks/holmesgpt-ask/`, or `--data` naming either folder or a parent of both). The
adapter (`evaluation/holmesgpt.py`) tells the two fixture shapes apart by their files. An
*investigate* case starts from the alert (`investigate_request.json`/`issue_data.json`); an *ask*
case starts from the user's question (`user_prompt` of `test_case.yaml`, nothing else of that file,
and never `manifest.yaml`, `helm/` or setup scripts), which the offline planner treats exactly as a
Slack mention: `actors/engine/subject.py` reads the resource the question names (kind, name,
namespace; generic English around Kubernetes words, no list of names), the planner investigates it
as an alert's subject and pins it to what the tools found (a name asked about in one namespace but
running in another). Then each enabled sub-agent runs its playbook (`actors/tools/playbooks.py`) and
its follow-up rounds (`actors/engine/followups.py`: the subject's pods' logs and events, crash loops,
OOM kills, failed jobs, slow services…) against our own tools, and a replay store
(`actors/tools/replay.py`) built from the case answers them (`evaluation/replay_holmes.py`, run by
`evaluation/replay_run.py`). Recordings are parsed by what their output is (kubectl describe, get
tables, events, pod logs, Robusta findings, trace trees, Prometheus results) and filed by the
evidence they hold, never by case name: pods, deployments, nodes, services, jobs and
persistent volume claims under the `kubernetes_list_*` tools (all namespaces, and per namespace),
events under `kubernetes_get_events`, a described pod (`kubectl describe pod` text: each container's
state, last state, reason, exit code, restart count, requests and limits, the conditions and the
events, read into the live tool's result) under `kubernetes_describe_pod` matched on namespace and
pod, pod logs under `kubernetes_get_pod_logs` matched on namespace,
pod and `previous`, trace spans under `tempo_search_traces`, Prometheus results under
`prometheus_query_range` matched on the query, Argo CD applications (`argocd app get`/`list` text,
read into the API's shape) under `argocd_list_applications`, RabbitMQ node states (the management
API's node objects) under `rabbitmq_cluster_status`. A call nothing recorded answers `no data`. The team
has Kubernetes plus the integrations of the other recorded tools. Labels: the investigate cases'
`tests/data/holmesgpt_labels.json` (written by reading each case's `expected_output`) and the ask
folder's own `labels.json` (same format): the culprit (namespace/kind/name; a pod matches its
workload) and the key phrases the RCA must contain (case, spacing and punctuation ignored).
`13_Watchdog` and `65_health_check_followup` are negatives: they pass when nothing is blamed.
`tool_calls` per case counts the planner's calls (`tool_calls_answered`: those that found recorded
data; `unserved` lists recorded evidence no tool of ours returns). Target (issue 14): culprit and
phrases right on ≥ 90% of both shapes together. Weak spots, as the ask folder's `PROVENANCE.md`
warns: some phrases are generic (`pvc`, `image`, `query`), and `healthy` in
`65_health_check_followup` is also found in the question's own "unhealthy", which the no-incident
summary repeats; that case's verdict rests on nothing being blamed (strongest signal 0.27, under the
0.3 threshold). `36_argocd_find_resource` and `38_rabbitmq_split_head` pass through the Argo CD and
RabbitMQ tools (`actors/tools/argocd.py`, `actors/tools/rabbitmq.py`), each checked against a local
server speaking its API.

**Nezha** (Online Boutique half: 56 injected faults over two days, `--suite nezha`). The adapter
(`evaluation/nezha.py`) makes one case per entry of `rca_data/<date>/<date>-fault_list.json`; the
window is the inject minute and the two after (the files upstream scores on), with metrics reaching
60 minutes back for a normal period (each day's metric files are read once per worker process; a
row is timed by its wall clock `Time`, since one 08-22 pod file's `TimeStamp` column is 200,000,000 s
off, which would hide that service from every window). The
offline planner runs on the replay path (as for HolmesGPT) with Prometheus, Loki and
Tempo integrations, and our tools are answered from the window like a live backend:
`prometheus_query_range` by the metric kind the planner asks for (error rate ← 100 −
`PodSuccessRate(%)`, p99 latency ← `PodServerLatencyP99(s)`, memory ← `MemoryUsage(Mi)`, cpu ←
`CpuUsageRate(%)`, network ← `NetworkTransmit/ReceiveBytes`, one series per service; the latency of
the calls into each service as its callers measure it ← `source_50.csv` and as it measures itself ←
`destination_50.csv`, the mean over its callers), `loki_query_logs` with the window's log lines,
`tempo_search_traces` with a deterministic sample of whole traces up to the 500 spans a tool result
carries. The playbook asks for CPU next to memory; the network and two-sided call-latency series
are a follow-up of the latency alert. A service is a pod name without its last two dash-separated
parts; no rule reads a service, pod or fault name, so Nezha's Train Ticket half or other days in
the same format run unchanged. Files missing from the public snapshot (`MISSING.txt`: most log
files, some trace files) are a backend with a gap: that tool answers `no data` (`gaps` per case in
`--json`). The alert is the entry service of `front_service.csv` (latency / success rate), never
the culprit. Scored: service-level top-1/top-3 against the `inject_pod`'s service, per fault type
and per day; the fault class the top suspect's finding names (`cpu`, `memory`, `network`, `code`)
is compared with the injected type's class (`cpu_*` → cpu, `network_delay` → network,
`return`/`exception` → code). Published for Nezha on this system with
all modalities: top-1 0.93, top-3 0.96; those runs had files this snapshot lacks. The resource and
network rules were developed looking at both days (no held-out day); moving their constants
(network share 0.3–0.7, ratio 1.5–3, explained weight 0.3–1.0, score spread ×0.5–×2, no
starved-caller discount, calls-stopped minimum 6–10 of 10 steps) gives top-1 0.89–0.96 overall,
0.92–0.96 on 08-22 and 0.88–0.97 on 08-23 (top-3 0.96–1.00); the shipped constants give 0.95.
Why cases still fail (run of 2026-12-04, 3 misses at top-1, all in the top 3): 2 are
`return`/`exception` faults without a log file in the window. In 08-22 04_18 (`frontend`, one trace
file) the entry service has no dependency that stops, and the trace signal (share of exclusive time,
no pre-onset reference) puts a busy dependency first. In 08-23 13_10 (`checkoutservice`) the calls
into its last dependency do stop (recorded traces: `PlaceOrder` spans keep 2 of their 5 child calls
in 16 of 18 traces of the second minute; the third minute's trace file is missing), but the ten
minutes before the onset hold only 7 points of that edge (it also has gaps after the previous
case's fault, 13_02, in the same service), under the calls-stopped minimum of 8, and the 500-span
trace sample a tool result carries holds no `PlaceOrder` trace. 1 is a `network_delay` on
`checkoutservice` (08-23 12_53) whose network time rises too little against its noisy history.
The four `adservice` code faults ranked first are classed `cpu` (its CPU rises with them). The first three cases of each day have 2, 11 and 19 minutes of metric history: the
metric files of both days start two minutes before the first injection (the normal-period
`construct_data/<date>/metric/` is the same files), so no backend could serve more; their series
are not scored (the anomaly minimum) and the four CPU faults among them are found by the trace
signal alone (the entry service), without a fault class.

**Demo** (the embedded demo world's seeded incidents). `actors.tools.demo.world.incident_bundles()`
yields each incident as the offline planner's playbooks gather it, with the expected root-cause
service.

**How the rules were developed.** The ranking rules were designed while looking at these datasets
(both PetShop splits, the HolmesGPT recordings and the demo world), so the numbers are not a
held-out estimate. What guards against tuning to case names: no rule reads a case name or path, the
PetShop rules use only the graph, the series and the alert, and the results are stable when each
constant is moved (see [ranking.md](ranking.md), "Sensitivity").

## Attribution

- PetShop dataset: Hardt, Orchard, Blöbaum, Kasiviswanathan, Kirschbaum, "The PetShop Dataset —
  Finding Causes of Performance Issues across Microservices", arXiv:2311.04806 (CLeaR 2024).
  Copyright Amazon.com, Inc. or its affiliates. Licensed under CC-BY-4.0; read in place from
  `../shared/benchmarks/petshop/` (low- and high-traffic scenarios), not redistributed.
- HolmesGPT `test_investigate` fixtures: robusta-dev/holmesgpt, Copyright the HolmesGPT / Robusta
  authors, Apache-2.0; read in place from `../shared/benchmarks/holmesgpt-investigate/`. The
  `expected_output` texts quoted in `tests/data/holmesgpt_labels.json` come from those fixtures.
- HolmesGPT `test_ask_holmes` fixtures (11 diagnosis questions, picked as its `PROVENANCE.md`
  describes): robusta-dev/holmesgpt, Copyright the HolmesGPT / Robusta authors, Apache-2.0; read in
  place from `../shared/benchmarks/holmesgpt-ask/`, with that folder's `labels.json`.
- Nezha RCA data: Yu, Chen, Li, Chen, Li, Zheng, "Nezha: Interpretable Fine-Grained Root Causes
  Analysis for Microservices on Multi-modal Observability Data", ESEC/FSE 2023;
  IntelligentDDS/Nezha, MIT licence; read in place from `../shared/benchmarks/nezha/`.

## Latest results
"""


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _section(suite: str, r: dict[str, Any]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    windows = sum(v.get("windows", 0) for v in r.get("specificity_windows", {}).values())
    what = f"{r.get('cases')} cases" + (f" and {windows} specificity windows" if windows else "")
    lines = [f"### {suite}", "", (f"Run {when}: {what} ranked in {r.get('wall_seconds', 0):.1f} s "
             f"({r.get('workers', '?')} workers, {'Ray' if r.get('ray') else 'in-process'}); "
             f"{r.get('total_seconds', r.get('wall_seconds', 0)):.1f} s end to end, Ray start-up included"
             + (f" (machine load average {r['load_average']:g} on {r.get('cpus')} CPUs)." if "load_average" in r
                else "."))]
    if suite.startswith("petshop"):
        calls = f" **{r['tool_calls']}** tool calls in all." if "tool_calls" in r else ""
        lines += ["", f"Split: {r.get('split', 'all')}.{calls}", "",
                  "| scenario / alert metric | cases | top-1 | top-3 |", "|---|---|---|---|"]
        for g, v in r.get("per_group", {}).items():
            lines.append(f"| {g} | {v['cases']} | {_pct(v['top1'])} | {_pct(v['top3'])} |")
        lines.append(f"| **all** | **{r.get('cases')}** | **{_pct(r.get('top1'))}** | **{_pct(r.get('top3'))}** |")
        lines += ["", "| specificity windows | windows | specificity |", "|---|---|---|"]
        for g, v in r.get("specificity_windows", {}).items():
            lines.append(f"| {g} | {v['windows']} | {_pct(v['specificity'])} |")
        lines += ["", (f"Specificity: latency **{_pct(r.get('specificity_latency'))}**, availability "
                      f"**{_pct(r.get('specificity_availability'))}**."), "",
                  ("Targets (issue 8): top-1 > 0.65 (aim 0.80), top-3 > 0.83 (aim 0.95), latency specificity "
                  "> 0.33 (aim 0.8); published baseline: top-1 0.57–0.83, top-3 0.57–1.0, latency specificity "
                  "as low as 0.17.")]
        if suite == "petshop":
            met = (r.get("top1") or 0) >= 0.9 and (r.get("specificity_latency") or 0) >= 0.9
            lines += ["", (f"Target through replay (issue 14): top-1 ≥ 0.9 and latency specificity ≥ 0.9: "
                           f"{'met' if met else 'not met'} (top-1 {_pct(r.get('top1'))}, latency specificity "
                           f"{_pct(r.get('specificity_latency'))}).")]
    elif suite.startswith("holmesgpt"):
        lines += _holmes_lines(r)
    elif suite == "nezha":
        cases = r.get("per_case", [])
        calls = sum(c.get("tool_calls", 0) for c in cases)
        lines += ["", (f"Top-1 **{_pct(r.get('top1'))}**, top-3 **{_pct(r.get('top3'))}** (published Nezha: 0.93 / "
                       f"0.96 with all modalities); **{calls}** tool calls in all (at least "
                       f"{min((c.get('tool_calls', 0) for c in cases), default=0)} per case). Fault class right in "
                       f"**{_pct(r.get('fault_class_ok'))}** of the {r.get('fault_class_cases', 0)} cases whose "
                       "culprit is ranked first."), "",
                  "| fault type | cases | top-1 | top-3 |", "|---|---|---|---|"]
        for g, v in r.get("per_group", {}).items():
            lines.append(f"| {g} | {v['cases']} | {_pct(v['top1'])} | {_pct(v['top3'])} |")
        lines += ["", "| day | cases | top-1 | top-3 |", "|---|---|---|---|"]
        for g, v in r.get("per_day", {}).items():
            lines.append(f"| {g} | {v['cases']} | {_pct(v['top1'])} | {_pct(v['top3'])} |")
        lines += ["", ("| case | fault type | expected | top 3 | top-1 | top-3 | fault class | tool calls (answered) "
                       "| missing |"), "|---|---|---|---|---|---|---|---|---|"]
        for c in cases:
            gaps = sorted({g.split("/")[0] for g in c.get("gaps", [])})
            lines.append(f"| {c['case']} | {c.get('fault_type', '')} | {c['expected']} | {', '.join(c['ranked'][:3])} | "
                         f"{'✓' if c['hit1'] else '✗'} | {'✓' if c['hit3'] else '✗'} | {c.get('fault') or '—'} | "
                         f"{c.get('tool_calls', 0)} ({c.get('tool_calls_answered', 0)}) | {', '.join(gaps) or '—'} |")
    else:
        lines += ["", f"Top-1 **{_pct(r.get('top1'))}**, top-3 **{_pct(r.get('top3'))}**.", "",
                  "| case | expected | ranked | top-1 |", "|---|---|---|---|"]
        for c in r.get("per_case", []):
            lines.append(f"| {c['case']} | {c['expected']} | {', '.join(c['ranked'][:3])} | {'✓' if c['hit1'] else '✗'} |")
    return "\n".join(lines) + "\n"


def _holmes_lines(r: dict[str, Any]) -> list[str]:
    cases = r.get("per_case", [])
    lines = ["", (f"Culprit right **{r.get('culprit_ok', sum(bool(c.get('culprit_ok')) for c in cases))}/{len(cases)}**, "
                  f"phrases right **{r.get('phrase_ok', sum(bool(c.get('phrase_ok')) for c in cases))}/{len(cases)}**; "
                  f"positives with both: **{r.get('positives_passed')}/{r.get('positives')}**; negatives clean: "
                  f"**{r.get('negatives_clean')}/{r.get('negatives')}**. Top-1 **{_pct(r.get('top1'))}**, top-3 "
                  f"**{_pct(r.get('top3'))}** over the positives; **{r.get('tool_calls', 0)}** tool calls in all"
                  + (f" (the run timed above ranked both shapes, {r['run_cases']} cases, together)."
                     if r.get("run_cases") else "."))
             + (f" Unlabelled (skipped): {', '.join(r['unlabelled'])}." if r.get("unlabelled") else ""),
             "", "| case | expected culprit | ranked first | culprit | phrases | tool calls (answered) |",
             "|---|---|---|---|---|---|"]
    for c in cases:
        lines.append(f"| {c['case']} | {c['expected'] or '(no incident)'} | {(c['ranked'] or ['—'])[0]} | "
                     f"{'✓' if c.get('culprit_ok') else '✗'} | {'✓' if c.get('phrase_ok') else '✗'} | "
                     f"{c.get('tool_calls', 0)} ({c.get('tool_calls_answered', 0)}) |")
    failing = [c for c in cases if not (c.get("culprit_ok") and c.get("phrase_ok"))]
    lines += ["", "Failing cases: " + ("none." if not failing else "")]
    for c in failing:
        what = "blamed nothing" if not c.get("ranked") else f"ranked {c['ranked'][0]} first"
        why = "; ".join(c.get("unserved", [])[:4])
        lines.append(f"- {c['case']}: {what}" + ("" if c.get("culprit_ok") else f", expected {c['expected'] or 'nothing'}")
                     + ("" if c.get("phrase_ok") else "; key phrases missing")
                     + (f". Recorded but served by no tool of ours: {why}." if why else "."))
    return lines


def _holmes_split(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One result per fixture shape, each with its own totals (``per_shape``) and rows."""
    shapes = result.get("per_shape") or {}
    out = {}
    for shape, section in HOLMES_SECTIONS.items():
        rows = [c for c in result.get("per_case", []) if (c.get("shape") or "investigate") == shape]
        if not rows:
            continue
        positives = [c for c in rows if not c.get("negative")]
        top1 = [bool(c.get("hit1")) for c in positives]
        top3 = [bool(c.get("hit3")) for c in positives]
        out[section] = {**result, **shapes.get(shape, {}), "per_case": rows, "cases": len(rows),
                        "run_cases": len(result.get("per_case", [])),
                        "top1": round(sum(top1) / len(top1), 4) if top1 else None,
                        "top3": round(sum(top3) / len(top3), 4) if top3 else None}
    return out or {"holmesgpt": result}


def _existing(text: str) -> dict[str, str]:
    out = {}
    for suite in SUITES:
        m = re.search(rf"<!-- results:{suite} -->\n(.*?)<!-- /results:{suite} -->", text, re.DOTALL)
        if m:
            out[suite] = m.group(1)
    return out


def write_docs(suite: str, result: dict[str, Any], *, path: Path = DOCS_PATH) -> Path:
    """Rewrite ``path`` with ``suite``'s section replaced by ``result``; other suites' sections kept.
    A holmesgpt result fills one section per fixture shape."""
    sections = _existing(path.read_text()) if path.is_file() else {}
    if suite.startswith("holmesgpt"):
        for name, part in _holmes_split(result).items():
            sections[name] = _section(name, part)
    else:
        sections[suite] = _section(suite, result)
    body = [HEADER]
    for s in SUITES:
        command = {"holmesgpt-ask": "holmesgpt"}.get(s, s)
        content = sections.get(s, f"### {s}\n\nNot run yet: `incidentfox eval --suite {command} --write-docs`.\n")
        body.append(f"<!-- results:{s} -->\n{content}<!-- /results:{s} -->\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(body))
    return path
