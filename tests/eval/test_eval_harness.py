"""The evaluation harness: batching, the Ray path, the demo suite, the docs writer, the CLI."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from evaluation import harness, report, scoring, suites

LABELS = Path(__file__).parents[1] / "data" / "holmesgpt_labels.json"


def _square(x: int) -> int:
    return x * x


def test_items_are_batched_a_few_per_worker_and_keep_their_order() -> None:
    items = [(_square, (i,)) for i in range(52)]
    parts = harness.batches(items, workers=2)
    assert len(parts) == 2 * harness.BATCHES_PER_WORKER
    assert sum(len(p) for p in parts) == 52
    seen: list[int] = []
    assert harness.run_items(items, use_ray=False, progress=seen.append) == [i * i for i in range(52)]
    assert sum(seen) == 52 and len(seen) == len(parts)
    assert harness.batches([], workers=2) == []


@pytest.mark.ray
def test_cases_run_in_parallel_batches_on_ray(ray_session: None, shared_dir: Path) -> None:
    data = shared_dir / "benchmarks" / "holmesgpt-investigate"
    if not data.is_dir():
        pytest.skip("HolmesGPT fixtures absent")
    plan = suites.plan_holmesgpt(data, labels=LABELS)
    progress: list[int] = []
    on_ray = plan.finish(harness.run_items(plan.items, workers=2, use_ray=True, progress=progress.append))
    local = plan.finish(harness.run_items(plan.items, use_ray=False))
    assert sum(progress) == len(plan.items)
    assert [(c["case"], c["hit1"], c["phrase_ok"]) for c in on_ray["per_case"]] == \
        [(c["case"], c["hit1"], c["phrase_ok"]) for c in local["per_case"]]


def test_demo_suite_ranks_the_seeded_incidents() -> None:
    try:
        plan = suites.plan_demo()
    except suites.SuiteError as e:
        pytest.skip(str(e))
    r = plan.finish(harness.run_items(plan.items, use_ray=False))
    assert r["cases"] >= 4
    # Measured 4/4 top-1; the bad deploy (the demo's default incident) must always be found.
    assert r["top1"] >= 0.75
    assert next(c for c in r["per_case"] if c["case"].endswith("bad_deploy"))["hit1"]


def test_demo_suite_without_the_demo_world_fails_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def missing(name: str, *a: object, **k: object) -> object:
        if name == suites.DEMO_WORLD:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *a, **k)

    monkeypatch.setattr(suites.importlib, "import_module", missing)
    with pytest.raises(suites.SuiteError, match="demo world is not available"):
        suites.plan_demo()
    res = CliRunner().invoke(app, ["eval", "--suite", "demo", "--no-ray"])
    assert res.exit_code == 1 and "demo world is not available" in res.stderr


def test_matching_accepts_a_pod_for_its_workload() -> None:
    assert scoring.matches("shop/pod/cart-7d9c8b6f5b-x2x4z", "cart")
    assert scoring.matches("default/pod/api-6f5cbdf85-c5fsf", "default/deployment/api")
    assert not scoring.matches("PetSearch_client", "PetSearch_AWS::ECS::Fargate")
    assert scoring.hits(["a", "b", "c"], "c") == (False, True)


def test_docs_writer_replaces_one_suite_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "evaluation.md"
    report.write_docs("holmesgpt", {"cases": 9, "positives": 8, "positives_passed": 8, "negatives": 1,
                                    "negatives_clean": 1, "per_case": [], "wall_seconds": 1.0}, path=path)
    report.write_docs("demo", {"cases": 4, "top1": 1.0, "top3": 1.0, "per_case": [], "wall_seconds": 1.0}, path=path)
    text = path.read_text()
    assert "**8/8**" in text and "Top-1 **1.00**" in text
    assert "CC-BY-4.0" in text and "Apache-2.0" in text and "windows" in text.lower()
    assert "Not run yet: `incidentfox eval --suite petshop --write-docs`" in text


def test_eval_help_lists_the_options() -> None:
    res = CliRunner().invoke(app, ["eval", "--help"])
    assert res.exit_code == 0
    for opt in ("--suite", "--split", "--data", "--labels", "--json", "--write-docs"):
        assert opt in res.output
    assert "--path" not in res.output and "One path per suite" in res.output


def test_default_data_and_labels_are_the_checkouts_own(shared_dir: Path) -> None:
    """`incidentfox eval --suite …` with no --data/--labels reads ../shared/benchmarks beside the
    checkout and the labels under tests/data (the paths moved once with the package; this pins them)."""
    root = Path(__file__).resolve().parents[2]
    assert suites.REPO_ROOT == root
    assert suites.DEFAULT_LABELS == root / "tests" / "data" / "holmesgpt_labels.json" and suites.DEFAULT_LABELS.is_file()
    assert report.DOCS_PATH == root / "docs" / "evaluation.md" and report.DOCS_PATH.is_file()
    for name, path in suites.DEFAULT_DATA.items():
        assert path.is_dir() and path.parent == shared_dir / "benchmarks", name
