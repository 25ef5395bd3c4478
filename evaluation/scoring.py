"""Score rankings against ground truth, one case (or specificity window) at a time.

Everything here is a plain function over paths and names so it runs the same in a Ray task, a
thread or the test process. Ground truth is read here and only here: PetShop's
``root_cause.node`` via :func:`evaluation.petshop.read_ground_truth`, HolmesGPT's
culprit and key phrases from the labels file. Bundles are ranked as the offline planner ranks
them: call graph merged first (:func:`actors.ranking.topology.with_call_graph`).

* **top-k**: the expected entity is among the first *k* suspects. An entity matches itself and, for
  Kubernetes, its workload (a pod matches its deployment or job and the other way round).
* **key phrases**: each phrase appears in the RCA's text (summary, root causes, their evidence,
  actions), comparing lower-cased letters and digits only, so spacing and punctuation do not matter.
* **specificity**: a window of normal operation passes when the ranking blames nothing.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from actors.ranking.entities import same_workload
from actors.ranking.rank import rank
from actors.ranking.rca import build_rca
from actors.ranking.topology import with_call_graph
from evaluation import holmesgpt, petshop
from incidentfox.contracts import RCA
from incidentfox.evidence import EvidenceBundle


@dataclass
class CaseResult:
    case: str
    expected: str
    ranked: list[str]
    hit1: bool
    hit3: bool
    group: str = ""                       # e.g. "low_traffic/latency"
    no_incident: bool = False
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        return {**d, **extra}


@dataclass
class WindowResult:
    scenario: str
    metric: str
    index: int
    blamed: list[str]

    @property
    def clean(self) -> bool:
        return not self.blamed


def matches(ranked: str, expected: str) -> bool:
    """Equal, or the same workload (``shop/pod/cart-7d9c…`` matches ``cart`` and ``shop/deployment/cart``)."""
    return ranked == expected or same_workload(ranked, expected)


def hits(ranked: list[str], expected: str) -> tuple[bool, bool]:
    return (any(matches(r, expected) for r in ranked[:1]), any(matches(r, expected) for r in ranked[:3]))


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def rca_text(rca: RCA) -> str:
    parts = [rca.summary, *rca.recommended_actions]
    for rc in rca.root_causes:
        parts += [rc.entity, rc.description, *(e.quote for e in rc.evidence)]
    return "\n".join(parts)


def phrases_present(rca: RCA, phrases: list[str]) -> bool:
    text = _norm(rca_text(rca))
    return all(_norm(p) in text for p in phrases)


# --- PetShop -------------------------------------------------------------------------------------

def petshop_case(data_dir: str, case_name: str) -> CaseResult:
    """One PetShop issue through the live path: the offline planner, given only the alert, calls our
    tools, answered from the case's recordings (:mod:`evaluation.replay_petshop`); its ranking is
    scored. ``tool_calls`` counts its calls."""
    from evaluation import replay_petshop, replay_run

    case = next(c for c in petshop.discover_cases(Path(data_dir)) if c.name == case_name)
    t0 = time.perf_counter()
    bundle = petshop.case_bundle(case)
    replay = replay_petshop.bundle_replay(bundle)
    run = replay_run.investigate(replay.store(), integrations=replay.integrations, alert=bundle.alert)
    took = time.perf_counter() - t0
    expected = petshop.read_ground_truth(case.path / "target.json")   # scorer only
    ranked = run.ranking.top(5)
    h1, h3 = hits(ranked, expected)
    return CaseResult(case=case.name, expected=expected, ranked=ranked, hit1=h1, hit3=h3,
                      group=f"{case.scenario}/{bundle.alert.metric}", no_incident=run.ranking.no_incident,
                      seconds=round(took, 4), extra={"scenario": case.scenario, "split": case.split,
                                                     "metric": bundle.alert.metric, **_call_counts(run.calls)})


def petshop_windows(scenario_dir: str, index: int, targets: tuple[tuple[str, str, str], ...]) -> list[WindowResult]:
    """One specificity window, investigated once per alert target ``(node, metric, statistic)``: the
    window's recordings are built once and serve every target's investigation."""
    from evaluation import replay_petshop, replay_run

    path = Path(scenario_dir)
    store = (replay := replay_petshop.window_replay(path, index)).store()
    out = []
    for node, metric, statistic in targets:
        alert = petshop.window_alert(path, index, node=node, metric=metric, statistic=statistic)
        run = replay_run.investigate(store, integrations=replay.integrations, alert=alert)
        out.append(WindowResult(scenario=path.name, metric=metric, index=index, blamed=run.ranking.top(3)))
    return out


def _call_counts(calls: list[tuple[str, dict[str, Any], str]]) -> dict[str, Any]:
    # "error: …" is a failed call (replay_run's summary); "error_rate: …" is an answered one
    answered = sum(1 for _, _, summary in calls if not summary.startswith(("no data", "error:")))
    return {"tool_calls": len(calls), "tool_calls_answered": answered, "calls": [tool for tool, _, _ in calls]}


# --- HolmesGPT -----------------------------------------------------------------------------------

def load_labels(path: Path) -> dict[str, dict[str, Any]]:
    doc = json.loads(path.read_text())
    cases = doc.get("cases", doc) if isinstance(doc, dict) else {}
    return {k: v for k, v in cases.items() if isinstance(v, dict)}


def holmes_replay_case(case_dir: str, shape: str, label: dict[str, Any]) -> CaseResult:
    """The offline planner investigates the case's alert (investigate) or question (ask): its
    playbooks and follow-ups call our tools, a replay store built from the case's recordings
    answers them (:mod:`evaluation.replay_holmes`), and the planner's RCA is scored.
    ``tool_calls`` counts the calls it made."""
    from evaluation import replay_holmes, replay_run

    path = Path(case_dir)
    case = holmesgpt.HolmesCase(path.name, path, shape)
    t0 = time.perf_counter()
    replay = replay_holmes.case_replay(case)
    run = replay_run.investigate(replay.store(), integrations=replay.integrations,
                                 alert=holmesgpt.case_alert(case))
    took = time.perf_counter() - t0
    return _holmes_result(case.name, label, run.ranking, run.rca, took,
                          {"shape": shape, **_call_counts(run.calls), "unserved": replay.unserved})


def _holmes_result(case_name: str, label: dict[str, Any], ranking: Any, rca: RCA, took: float,
                   extra: dict[str, Any]) -> CaseResult:
    ranked = ranking.top(5)
    phrase_ok = phrases_present(rca, list(label.get("phrases", [])))
    if label.get("negative") or not label.get("culprit"):
        clean = ranking.no_incident and not ranked
        return CaseResult(case=case_name, expected="", ranked=ranked, hit1=clean, hit3=clean, group="negative",
                          no_incident=ranking.no_incident, seconds=round(took, 4),
                          extra={"culprit_ok": clean, "phrase_ok": phrase_ok, "negative": True,
                                 "summary": rca.summary, **extra})
    h1, h3 = hits(ranked, label["culprit"])
    return CaseResult(case=case_name, expected=label["culprit"], ranked=ranked, hit1=h1, hit3=h3, group="positive",
                      no_incident=ranking.no_incident, seconds=round(took, 4),
                      extra={"culprit_ok": h1, "phrase_ok": phrase_ok, "negative": False, "summary": rca.summary,
                             **extra})


# --- demo world ----------------------------------------------------------------------------------

def demo_case(name: str, bundle: EvidenceBundle, expected: str) -> CaseResult:
    t0 = time.perf_counter()
    bundle = with_call_graph(bundle)
    ranking = rank(bundle)
    rca = build_rca(ranking, bundle)
    ranked = ranking.top(5)
    h1, h3 = hits(ranked, expected)
    return CaseResult(case=name, expected=expected, ranked=ranked, hit1=h1, hit3=h3, group="demo",
                      no_incident=ranking.no_incident, seconds=round(time.perf_counter() - t0, 4),
                      extra={"summary": rca.summary})


# --- summaries -----------------------------------------------------------------------------------

def _rate(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def summarize(results: list[CaseResult]) -> dict[str, Any]:
    groups: dict[str, list[CaseResult]] = {}
    for r in results:
        groups.setdefault(r.group, []).append(r)
    return {
        "cases": len(results),
        "top1": _rate([r.hit1 for r in results]),
        "top3": _rate([r.hit3 for r in results]),
        "per_group": {g: {"cases": len(rs), "top1": _rate([r.hit1 for r in rs]), "top3": _rate([r.hit3 for r in rs])}
                      for g, rs in sorted(groups.items())},
        "per_case": [r.row() for r in results],
    }


def summarize_specificity(windows: list[WindowResult]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric in petshop.METRIC_TYPES:
        ws = [w for w in windows if w.metric == metric]
        out[f"specificity_{metric}"] = _rate([w.clean for w in ws])
    by: dict[str, list[WindowResult]] = {}
    for w in windows:
        by.setdefault(f"{w.scenario}/{w.metric}", []).append(w)
    out["specificity_windows"] = {k: {"windows": len(ws), "specificity": _rate([w.clean for w in ws])}
                                  for k, ws in sorted(by.items())}
    return out


def _holmes_totals(results: list[CaseResult]) -> dict[str, Any]:
    positives = [r for r in results if not r.extra.get("negative")]
    negatives = [r for r in results if r.extra.get("negative")]
    return {
        "cases": len(results),
        "positives": len(positives),
        "positives_passed": sum(1 for r in positives if r.extra["culprit_ok"] and r.extra["phrase_ok"]),
        "culprit_ok": sum(1 for r in results if r.extra.get("culprit_ok")),
        "phrase_ok": sum(1 for r in results if r.extra.get("phrase_ok")),
        "passed": sum(1 for r in results if r.extra.get("culprit_ok") and r.extra.get("phrase_ok")),
        "negatives": len(negatives),
        "negatives_clean": sum(1 for r in negatives if r.extra["culprit_ok"] and r.extra["phrase_ok"]),
        "tool_calls": sum(int(r.extra.get("tool_calls") or 0) for r in results),
        "seconds": round(sum(r.seconds for r in results), 3),
    }


def summarize_holmes(results: list[CaseResult], unlabelled: list[str]) -> dict[str, Any]:
    """Top-k over the positives, the counts of both shapes together, and the same counts per
    shape (``per_shape``: ``investigate``, ``ask``)."""
    base = summarize([r for r in results if not r.extra.get("negative")])
    base.update(_holmes_totals(results))
    base["per_case"] = [r.row() for r in results]
    base["unlabelled"] = unlabelled
    shapes = sorted({str(r.extra.get("shape") or holmesgpt.INVESTIGATE) for r in results})
    base["per_shape"] = {s: _holmes_totals([r for r in results if (r.extra.get("shape") or holmesgpt.INVESTIGATE) == s])
                         for s in shapes}
    return base


# --- Nezha ---------------------------------------------------------------------------------------

def nezha_case(data_dir: str, case_name: str) -> CaseResult:
    """One injected fault of the Nezha data: the offline planner's tools answered from the case's
    window (:mod:`evaluation.nezha`), its ranking scored at service level. The fault type is the
    group; the fault class the ranking states for its top suspect (``fault``: ``cpu``, ``memory``,
    ``network``, ``code`` from a resource finding, "" when none) is compared with the injected one's class
    (:data:`evaluation.nezha.FAULT_CLASS`)."""
    from evaluation import nezha, replay_run

    case = next(c for c in nezha.discover_cases(Path(data_dir)) if c.name == case_name)
    t0 = time.perf_counter()
    data = nezha.case_data(case)
    run = replay_run.investigate(data.store(), integrations=data.integrations, alert=nezha.case_alert(case))
    took = time.perf_counter() - t0
    ranked = run.ranking.top(5)
    h1, h3 = hits(ranked, case.service)
    top = run.ranking.suspects[0] if run.ranking.suspects else None
    fault = next((str(f.details["fault"]) for f in (top.findings if top else []) if f.details.get("fault")), "")
    return CaseResult(case=case_name, expected=case.service, ranked=ranked, hit1=h1, hit3=h3,
                      group=case.fault_type, no_incident=run.ranking.no_incident, seconds=round(took, 4),
                      extra={"fault_type": case.fault_type, "fault": fault,
                             "fault_expected": nezha.FAULT_CLASS.get(case.fault_type, ""),
                             "day": case.name.split("/")[0], **_call_counts(run.calls),
                             "gaps": data.gaps, "summary": run.rca.summary})


def summarize_nezha(results: list[CaseResult]) -> dict[str, Any]:
    """:func:`summarize` plus per-day numbers, the fault class (where the ranking names one) and the
    tool calls made."""
    out = summarize(results)
    days: dict[str, list[CaseResult]] = {}
    for r in results:
        days.setdefault(str(r.extra.get("day", "")), []).append(r)
    out["per_day"] = {d: {"cases": len(rs), "top1": _rate([r.hit1 for r in rs]), "top3": _rate([r.hit3 for r in rs])}
                      for d, rs in sorted(days.items())}
    named = [r for r in results if r.hit1 and r.extra.get("fault_expected")]
    out["fault_class_ok"] = _rate([r.extra.get("fault") == r.extra.get("fault_expected") for r in named])
    out["fault_class_cases"] = len(named)
    out["tool_calls"] = sum(int(r.extra.get("tool_calls") or 0) for r in results)
    out["min_tool_calls"] = min((int(r.extra.get("tool_calls") or 0) for r in results), default=0)
    return out
