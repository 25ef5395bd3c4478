"""CLI: ``incidentfox eval``: score the root-cause ranking on public incident datasets.

``incidentfox eval --suite petshop|holmesgpt|nezha|demo [--split all|train|test] [--data DIR]
[--labels FILE] [--json OUT] [--write-docs]`` runs the cases in parallel on Ray (a few batch tasks),
shows a progress bar, a per-case table and a summary, and optionally writes the results as JSON and
``docs/evaluation.md``. Each suite has one path: petshop, holmesgpt and nezha through replay (the
offline planner calls our tools, answered from the recordings), demo ranked directly.
"""

from __future__ import annotations

import json
import os
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.choices import one_of
from cli.errors import fail


class Suite(StrEnum):
    petshop = "petshop"
    holmesgpt = "holmesgpt"
    nezha = "nezha"
    demo = "demo"


def _splits() -> tuple[str, ...]:
    from evaluation.petshop import SPLITS

    return ("all", *SPLITS)


def _mark(ok: Any) -> str:
    return "[green]✓[/]" if ok else "[red]✗[/]"


def _case_table(suite: str, result: dict[str, Any]) -> Table:
    t = Table(title=f"{suite}: per case", show_lines=False)
    if suite == "holmesgpt":
        for col in ("case", "shape", "expected culprit", "ranked first", "culprit", "phrases", "tool calls"):
            t.add_column(col)
        for c in result["per_case"]:
            t.add_row(c["case"], c.get("shape", ""), c["expected"] or "(no incident)", (c["ranked"] or ["—"])[0],
                      _mark(c.get("culprit_ok")), _mark(c.get("phrase_ok")), str(c.get("tool_calls", "")))
        return t
    cols = ("case", "metric", "expected", "top 3", "top-1", "top-3") if suite == "petshop" else \
        ("case", "expected", "top 3", "top-1", "top-3")
    calls = "tool_calls" in result
    for col in (*cols, *(("tool calls",) if calls else ())):
        t.add_column(col)
    for c in result["per_case"]:
        row = [c["case"], *( [c.get("metric", "")] if suite == "petshop" else []), c["expected"],
               ", ".join(c["ranked"][:3]) or "(nothing)", _mark(c["hit1"]), _mark(c["hit3"]),
               *((str(c.get("tool_calls", "")),) if calls else ())]
        t.add_row(*row)
    return t


def _summary_table(suite: str, result: dict[str, Any]) -> Table:
    t = Table(title=f"{suite}: summary")
    t.add_column("measure")
    t.add_column("value", justify="right")
    if suite in ("petshop", "nezha"):
        for g, v in result.get("per_group", {}).items():
            t.add_row(f"{g} top-1 / top-3 ({v['cases']})", f"{v['top1']:.2f} / {v['top3']:.2f}")
    if suite == "petshop":
        for key in ("specificity_latency", "specificity_availability"):
            v = result.get(key)
            t.add_row(key.replace("_", " "), "n/a" if v is None else f"{v:.2f}")
    if suite == "holmesgpt":
        t.add_row("positives passed (culprit + phrases)", f"{result['positives_passed']}/{result['positives']}")
        t.add_row("negatives clean", f"{result['negatives_clean']}/{result['negatives']}")
        for shape, v in result.get("per_shape", {}).items():
            t.add_row(f"{shape}: culprit / phrases / both ({v['cases']})",
                      f"{v['culprit_ok']} / {v['phrase_ok']} / {v['passed']}; {v['tool_calls']} tool calls")
        if result.get("unlabelled"):
            t.add_row("unlabelled (skipped)", ", ".join(result["unlabelled"]))
    top1, top3 = result.get("top1"), result.get("top3")
    t.add_row("cases", str(result["cases"]))
    t.add_row("top-1 / top-3", "n/a" if top1 is None else f"{top1:.2f} / {top3:.2f}")
    t.add_row("wall time", f"{result['wall_seconds']:.1f} s ({'Ray' if result['ray'] else 'in-process'}, "
                           f"{result['workers']} workers); {result['total_seconds']:.1f} s with start-up")
    return t


def eval_command(
    suite: Annotated[Suite, typer.Option("--suite", help="Which dataset: petshop, holmesgpt, nezha or demo.")],
    split: Annotated[str, typer.Option("--split", metavar="SPLIT", help="PetShop split: all (default), train or test.",
                                       **one_of(_splits, default="all"))] = "all",
    data: Annotated[Path | None, typer.Option(
        "--data", help="Dataset directory (default: the suite's folder under ../shared/benchmarks/).")] = None,
    labels: Annotated[Path | None, typer.Option(
        "--labels", help="HolmesGPT labels file (default: tests/data/holmesgpt_labels.json; a labels.json in "
        "a case folder is read too).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON to this file.")] = None,
    write_docs: Annotated[bool, typer.Option("--write-docs", help="Rewrite docs/evaluation.md with these numbers.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help="Parallel Ray tasks (CPUs).")] = 2,
    no_ray: Annotated[bool, typer.Option("--no-ray", help="Run in this process instead of on Ray.")] = False,
) -> None:
    """Rank every case of a suite, score it against ground truth, and report the numbers.

    One path per suite: petshop, holmesgpt and nezha run through replay (the offline planner calls our
    tools, answered from the case's recordings); demo ranks its seeded incidents directly."""
    from evaluation import harness, suites

    console = Console()
    t_start = time.perf_counter()
    try:
        plan = suites.plan(suite.value, data=data, split=split, labels=labels)
    except suites.SuiteError as e:
        fail(f"eval {suite.value}: {e}")
    for name in plan.unlabelled:
        console.print(f"[yellow]skipped {name}: no label[/]")
    started_ray = False if no_ray else harness.ensure_ray(workers)
    t0 = time.perf_counter()
    try:
        with Progress(TextColumn(f"[bold]{suite.value}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=False) as bar:
            task = bar.add_task("cases", total=len(plan.items))
            results = harness.run_items(plan.items, workers=workers, use_ray=not no_ray,
                                        progress=lambda n: bar.advance(task, n))
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    result: dict[str, Any] = {"suite": suite.value, **plan.meta, **plan.finish(results),
              "wall_seconds": round(time.perf_counter() - t0, 2), "workers": workers, "ray": not no_ray,
              "items": len(plan.items)}
    result["total_seconds"] = round(time.perf_counter() - t_start, 2)   # including Ray start-up
    # Wall times depend on what else the machine runs: the 1-minute load average says how busy it was.
    result["load_average"], result["cpus"] = round(os.getloadavg()[0], 1), os.cpu_count()
    console.print(_case_table(suite.value, result))
    console.print(_summary_table(suite.value, result))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        console.print(f"wrote {json_out}")
    if write_docs:
        from evaluation.report import write_docs as render

        console.print(f"wrote {render(suite.value, result)}")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("eval")(eval_command)
