"""The evaluation suites: what work items each runs and how its results are summarised.

* ``petshop``: every issue of the chosen split, plus the specificity windows over ``noissue``
  (independent of the split) for each alert target the scenario's issues use. ``path`` as for
  ``holmesgpt``: ``direct`` (default) or ``replay``.
* ``holmesgpt``: every case directory; cases without a label are skipped and reported. ``path``
  ``replay`` (default) runs the offline planner against a replay store built from the recordings,
  ``direct`` ranks the recordings' evidence at once.
* ``nezha``: every injected fault of the Nezha data (``rca_data/<date>/<date>-fault_list.json``),
  replayed through the offline planner with our tools answered from the case's window
  (:mod:`evaluation.nezha`); service-level top-1/top-3, per fault type. Replay only.
* ``demo``: the seeded incidents of the embedded demo world, from
  ``actors.tools.demo.world.incident_bundles() -> list[(case name, bundle, expected entity)]``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation import holmesgpt, nezha, petshop, scoring
from evaluation.harness import Item

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO_ROOT.parent / "shared" / "benchmarks"
DEFAULT_DATA = {"petshop": BENCHMARKS / "petshop", "holmesgpt": BENCHMARKS / "holmesgpt-investigate",
                "nezha": BENCHMARKS / "nezha"}
DEFAULT_LABELS = REPO_ROOT / "tests" / "data" / "holmesgpt_labels.json"
DEMO_WORLD = "actors.tools.demo.world"
PATHS = ("direct", "replay")


class SuiteError(Exception):
    """The suite cannot run (missing data, bad layout, no demo world); the message says why."""


@dataclass
class SuitePlan:
    suite: str
    items: list[Item]
    finish: Callable[[list[Any]], dict[str, Any]]
    unlabelled: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def plan_petshop(data: Path, *, split: str = "all", path: str = "direct") -> SuitePlan:
    """``path``: ``direct`` ranks each window's evidence at once; ``replay`` lets the offline planner
    call our tools against a replay store built from it (:mod:`evaluation.replay_petshop`)."""
    if path not in PATHS:
        raise SuiteError(f"--path must be one of {', '.join(PATHS)} (got {path!r})")
    if split not in ("all", *petshop.SPLITS):
        raise SuiteError(f"--split must be one of all, {', '.join(petshop.SPLITS)} (got {split!r})")
    try:
        cases = petshop.discover_cases(data, split=split)
        scenario_dirs = petshop.scenarios(data)
    except (petshop.PetshopLayoutError, OSError) as e:
        raise SuiteError(f"PetShop data not usable at {data}: {e}") from e
    case_fn, window_fn = ((scoring.petshop_replay_case, scoring.petshop_replay_window) if path == "replay"
                          else (scoring.petshop_case, scoring.petshop_window))
    items: list[Item] = [(case_fn, (str(data), c.name)) for c in cases]
    for sdir in scenario_dirs:
        metrics = sorted({m for _, m, _ in petshop.spec_targets(data, sdir.name)} & set(petshop.METRIC_TYPES))
        for metric in metrics:
            items += [(window_fn, (str(sdir), i, metric)) for i in petshop.specificity_windows(sdir)]

    def finish(results: list[Any]) -> dict[str, Any]:
        out = scoring.summarize([r for r in results if isinstance(r, scoring.CaseResult)])
        out.update(scoring.summarize_specificity([r for r in results if isinstance(r, scoring.WindowResult)]))
        if path == "replay":
            out["tool_calls"] = sum(int(c.get("tool_calls") or 0) for c in out["per_case"])
        return out

    return SuitePlan("petshop", items, finish, meta={"split": split, "data": str(data), "path": path})


def plan_holmesgpt(data: Path, *, labels: Path | None = None, path: str = "replay") -> SuitePlan:
    """``path``: ``direct`` ranks every recording's evidence at once; ``replay`` lets the offline
    planner call our tools against a replay store built from the recordings."""
    if path not in PATHS:
        raise SuiteError(f"--path must be one of {', '.join(PATHS)} (got {path!r})")
    labels = labels or DEFAULT_LABELS
    if not data.is_dir():
        raise SuiteError(f"HolmesGPT data not found at {data}")
    if not labels.is_file():
        raise SuiteError(f"labels file not found: {labels}")
    table = scoring.load_labels(labels)
    cases = holmesgpt.discover_cases(data)
    if not cases:
        raise SuiteError(f"no HolmesGPT cases (directories with investigate_request.json) under {data}")
    unlabelled = [c.name for c in cases if c.name not in table]
    fn = scoring.holmes_replay_case if path == "replay" else scoring.holmes_case
    items: list[Item] = [(fn, (str(data), c.name, table[c.name])) for c in cases if c.name in table]
    return SuitePlan("holmesgpt", items, lambda rs: scoring.summarize_holmes(rs, unlabelled), unlabelled,
                     meta={"data": str(data), "labels": str(labels), "path": path})


def plan_nezha(data: Path) -> SuitePlan:
    try:
        cases = nezha.discover_cases(data)
    except (nezha.NezhaLayoutError, OSError, ValueError, KeyError) as e:
        raise SuiteError(f"Nezha data not usable at {data}: {e}") from e
    items: list[Item] = [(scoring.nezha_case, (str(data), c.name)) for c in cases]
    return SuitePlan("nezha", items, scoring.summarize_nezha, meta={"data": str(data)})


def plan_demo() -> SuitePlan:
    try:
        world = importlib.import_module(DEMO_WORLD)
    except ModuleNotFoundError as e:
        if e.name and DEMO_WORLD.startswith(e.name):
            raise SuiteError(f"the demo world is not available ({DEMO_WORLD} is missing): the demo suite "
                             "needs actors.tools.demo.world.incident_bundles()") from e
        raise
    make = getattr(world, "incident_bundles", None)
    if not callable(make):
        raise SuiteError(f"{DEMO_WORLD} has no incident_bundles() function")
    items: list[Item] = [(scoring.demo_case, (name, bundle, expected)) for name, bundle, expected in make()]
    if not items:
        raise SuiteError(f"{DEMO_WORLD}.incident_bundles() returned no incidents")
    return SuitePlan("demo", items, scoring.summarize, meta={"source": DEMO_WORLD})


def plan(suite: str, *, data: Path | None = None, split: str = "all", labels: Path | None = None,
         path: str | None = None) -> SuitePlan:
    """``path`` None: the suite's default (``replay`` for holmesgpt and nezha, ``direct`` for petshop
    and demo)."""
    if suite == "demo" and path not in (None, "direct"):
        raise SuiteError(f"--path {path} is only available for the petshop and holmesgpt suites "
                         "(nezha runs through replay only)")
    if suite == "nezha" and path not in (None, "replay"):
        raise SuiteError(f"--path {path}: the nezha suite runs through replay only")
    if suite == "petshop":
        return plan_petshop(data or DEFAULT_DATA["petshop"], split=split, path=path or "direct")
    if suite == "holmesgpt":
        return plan_holmesgpt(data or DEFAULT_DATA["holmesgpt"], labels=labels, path=path or "replay")
    if suite == "nezha":
        return plan_nezha(data or DEFAULT_DATA["nezha"])
    if suite == "demo":
        return plan_demo()
    raise SuiteError(f"unknown suite {suite!r}: petshop, holmesgpt, nezha or demo")
