"""The evaluation suites: what work items each runs and how its results are summarised.

* ``petshop``: every issue of the chosen split, plus the specificity windows over ``noissue``
  (independent of the split), each window investigated once per alert target the scenario's issues
  use; through replay only (the offline planner calls our tools, :mod:`evaluation.replay_petshop`).
* ``holmesgpt``: every case directory of both shapes (investigate requests and ask questions,
  :func:`evaluation.holmesgpt.discover_cases`), from ``--data`` (one folder, or a parent holding
  folders of cases; default: ``holmesgpt-investigate`` and ``holmesgpt-ask`` under the shared
  benchmarks, each skipped when absent). The offline planner investigates each against a replay
  store built from its recordings; replay only. Labels: ``--labels`` (default the repo's
  ``tests/data/holmesgpt_labels.json``) plus any ``labels.json`` in the case folders (same format;
  the ``--labels`` file wins on a name in both). Cases without a label are skipped and reported.
* ``nezha``: every injected fault of the Nezha data (``rca_data/<date>/<date>-fault_list.json``),
  replayed through the offline planner with our tools answered from the case's window
  (:mod:`evaluation.nezha`); service-level top-1/top-3, per fault type. Replay only.
* ``demo``: the seeded incidents of the embedded demo world, from
  ``actors.tools.demo.world.incident_bundles() -> list[(case name, bundle, expected entity)]``, ranked
  directly (no recordings to replay).

One path per suite: nothing chooses between replay and direct ranking. The ``path`` key of the
petshop and holmesgpt results (``replay``) is kept for readers of their JSON.
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
DEFAULT_HOLMES = (BENCHMARKS / "holmesgpt-investigate", BENCHMARKS / "holmesgpt-ask")   # both shapes
DEFAULT_LABELS = REPO_ROOT / "tests" / "data" / "holmesgpt_labels.json"
DEMO_WORLD = "actors.tools.demo.world"


class SuiteError(Exception):
    """The suite cannot run (missing data, bad layout, no demo world); the message says why."""


@dataclass
class SuitePlan:
    suite: str
    items: list[Item]
    finish: Callable[[list[Any]], dict[str, Any]]
    unlabelled: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def plan_petshop(data: Path, *, split: str = "all") -> SuitePlan:
    """Every issue of ``split`` and every specificity window, each investigated by the offline
    planner against a replay store built from its evidence (:mod:`evaluation.replay_petshop`)."""
    if split not in ("all", *petshop.SPLITS):
        raise SuiteError(f"--split must be one of all, {', '.join(petshop.SPLITS)} (got {split!r})")
    try:
        cases = petshop.discover_cases(data, split=split)
        scenario_dirs = petshop.scenarios(data)
    except (petshop.PetshopLayoutError, OSError) as e:
        raise SuiteError(f"PetShop data not usable at {data}: {e}") from e
    items: list[Item] = [(scoring.petshop_case, (str(data), c.name)) for c in cases]
    for sdir in scenario_dirs:
        targets = tuple(t for t in petshop.spec_targets(data, sdir.name) if t[1] in petshop.METRIC_TYPES)
        if targets:
            items += [(scoring.petshop_windows, (str(sdir), i, targets)) for i in petshop.specificity_windows(sdir)]

    def finish(results: list[Any]) -> dict[str, Any]:
        windows = [w for r in results if isinstance(r, list) for w in r]
        out = scoring.summarize([r for r in results if isinstance(r, scoring.CaseResult)])
        out.update(scoring.summarize_specificity(windows))
        out["tool_calls"] = sum(int(c.get("tool_calls") or 0) for c in out["per_case"])
        return out

    return SuitePlan("petshop", items, finish, meta={"split": split, "data": str(data), "path": "replay"})


def _holmes_roots(data: Path | None) -> list[Path]:
    if data is not None:
        if not data.is_dir():
            raise SuiteError(f"HolmesGPT data not found at {data}")
        return [data]
    roots = [d for d in DEFAULT_HOLMES if d.is_dir()]
    if not roots:
        raise SuiteError(f"HolmesGPT data not found at {' or '.join(str(d) for d in DEFAULT_HOLMES)}")
    return roots


def holmes_labels(labels: Path, cases: list[holmesgpt.HolmesCase]) -> dict[str, dict[str, Any]]:
    """The labels of ``cases``: each case folder's ``labels.json``, then ``labels`` over them."""
    table: dict[str, dict[str, Any]] = {}
    for folder in sorted({c.path.parent for c in cases}):
        if (folder / "labels.json").is_file():
            table.update(scoring.load_labels(folder / "labels.json"))
    table.update(scoring.load_labels(labels))
    return table


def plan_holmesgpt(data: Path | None = None, *, labels: Path | None = None) -> SuitePlan:
    """Both fixture shapes through replay (the offline planner against the recordings)."""
    labels = labels or DEFAULT_LABELS
    roots = _holmes_roots(data)
    if not labels.is_file():
        raise SuiteError(f"labels file not found: {labels}")
    cases = [c for root in roots for c in holmesgpt.discover_cases(root)]
    if not cases:
        raise SuiteError(f"no HolmesGPT cases (directories with investigate_request.json, or test_case.yaml "
                         f"with a user_prompt and tool recordings) under {', '.join(map(str, roots))}")
    table = holmes_labels(labels, cases)
    unlabelled = [c.name for c in cases if c.name not in table]
    items: list[Item] = [(scoring.holmes_replay_case, (str(c.path), c.shape, table[c.name]))
                         for c in cases if c.name in table]
    return SuitePlan("holmesgpt", items, lambda rs: scoring.summarize_holmes(rs, unlabelled), unlabelled,
                     meta={"data": ", ".join(map(str, roots)), "labels": str(labels), "path": "replay"})


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


def plan(suite: str, *, data: Path | None = None, split: str = "all", labels: Path | None = None) -> SuitePlan:
    """The work of ``suite``, on its one path: replay for petshop, holmesgpt and nezha; demo ranks its
    incidents directly."""
    if suite == "petshop":
        return plan_petshop(data or DEFAULT_DATA["petshop"], split=split)
    if suite == "holmesgpt":
        return plan_holmesgpt(data, labels=labels)
    if suite == "nezha":
        return plan_nezha(data or DEFAULT_DATA["nezha"])
    if suite == "demo":
        return plan_demo()
    raise SuiteError(f"unknown suite {suite!r}: petshop, holmesgpt, nezha or demo")
