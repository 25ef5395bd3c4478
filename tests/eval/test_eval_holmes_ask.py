"""HolmesGPT ask fixtures: a question instead of an alert, both shapes from one folder, floors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from evaluation import harness, holmesgpt, scoring, suites
from tests.eval.holmes_kit import DESCRIBE, LABELS


def _write(path: Path, tool: str, params: dict, body: str) -> None:
    path.write_text(json.dumps({"tool_name": tool, "match_params": params}) + "\n"
                    + json.dumps({"status": "success", "params": params}) + "\n" + body)


@pytest.fixture
def both_shapes(tmp_path: Path) -> Path:
    """A parent folder with one folder of each shape, each with its own labels.json."""
    inv, ask = tmp_path / "inv" / "alerted", tmp_path / "ask" / "asked"
    for case in (inv, ask):
        case.mkdir(parents=True)
        _write(case / "describe.txt", "kubectl_describe",
               {"kind": "pod", "name": "web-5d98ffcfd-tz4nc", "namespace": "shop"}, DESCRIBE)
    (inv / "investigate_request.json").write_text(json.dumps(
        {"title": "Pod is crash looping", "subject": {"name": "web-5d98ffcfd-tz4nc", "namespace": "shop", "kind": "pod"}}))
    (ask / "test_case.yaml").write_text(yaml.safe_dump(
        {"user_prompt": "what is wrong with the web deployment?", "expected_output": ["SECRET ANSWER"]}))
    (ask / "manifest.yaml").write_text("kind: Pod\nmetadata: {name: not-read}\n")
    label = {"culprit": "shop/deployment/web", "negative": False, "phrases": ["OOMKilled"]}
    (tmp_path / "inv" / "labels.json").write_text(json.dumps({"cases": {"alerted": label}}))
    (tmp_path / "ask" / "labels.json").write_text(json.dumps({"cases": {"asked": label}}))
    return tmp_path


def test_each_case_shape_is_told_by_its_files(both_shapes: Path) -> None:
    cases = holmesgpt.discover_cases(both_shapes)
    assert [(c.name, c.shape) for c in cases] == [("alerted", "investigate"), ("asked", "ask")]
    assert holmesgpt.discover_cases(both_shapes / "ask") == [cases[1]]
    alert = holmesgpt.case_alert(cases[1])
    assert alert.entity == "deployment/web" and "SECRET" not in alert.text and alert.labels["trigger"] == "question"


def test_a_parent_of_both_folders_runs_both_shapes_with_their_labels(both_shapes: Path) -> None:
    empty = both_shapes / "none.json"
    empty.write_text("{}")
    plan = suites.plan("holmesgpt", data=both_shapes, labels=empty)
    r = plan.finish(harness.run_items(plan.items, use_ray=False))
    assert r["cases"] == 2 and set(r["per_shape"]) == {"investigate", "ask"}
    for c in r["per_case"]:
        assert c["culprit_ok"] and c["phrase_ok"] and c["tool_calls"] >= 1, c
    assert r["per_shape"]["ask"]["passed"] == 1 and r["per_shape"]["ask"]["tool_calls"] >= 1


def test_an_ask_case_reads_only_the_question_from_test_case_yaml(both_shapes: Path) -> None:
    case = holmesgpt.discover_cases(both_shapes / "ask")[0]
    (case.path / "test_case.yaml").write_text(yaml.safe_dump({"user_prompt": "what is wrong with the web deployment?",
                                                              "expected_output": "shop/deployment/decoy"}))
    label = {"culprit": "shop/deployment/web", "phrases": []}
    assert scoring.holmes_replay_case(str(case.path), case.shape, label).extra["culprit_ok"]


def test_empty_or_missing_data_fails_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(suites.SuiteError, match="no HolmesGPT cases"):
        suites.plan("holmesgpt", data=tmp_path, labels=LABELS)
    with pytest.raises(suites.SuiteError, match="not found"):
        suites.plan("holmesgpt", data=tmp_path / "absent", labels=LABELS)


# --- the recorded questions -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def ask_dir(shared_dir: Path) -> Path:
    d = shared_dir / "benchmarks" / "holmesgpt-ask"
    if not (d / "labels.json").is_file():
        pytest.skip("HolmesGPT ask fixtures absent")
    return d


def test_holmesgpt_ask_floors(ask_dir: Path) -> None:
    """Measured through replay: all 11 questions with culprit and phrases right."""
    plan = suites.plan_holmesgpt(ask_dir)
    r = plan.finish(harness.run_items(plan.items, use_ray=False))
    assert r["cases"] == 11 and not r["unlabelled"]
    assert r["per_shape"]["ask"]["passed"] == 11
    assert all(c["shape"] == "ask" and c["tool_calls"] >= 1 for c in r["per_case"])


def test_questions_do_not_depend_on_case_names(ask_dir: Path, tmp_path: Path) -> None:
    labels = scoring.load_labels(ask_dir / "labels.json")
    for i, name in enumerate(("12_job_crashing", "07_high_latency")):
        renamed = tmp_path / f"case_{i}"
        shutil.copytree(ask_dir / name, renamed, ignore=shutil.ignore_patterns("manifest.yaml", "helm"))
        r = scoring.holmes_replay_case(str(renamed), holmesgpt.ASK, labels[name])
        assert r.extra["culprit_ok"] and r.extra["phrase_ok"], name


def test_eval_json_over_both_folders_keeps_the_keys(shared_dir: Path, ask_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["eval", "--suite", "holmesgpt", "--no-ray", "--data", str(ask_dir.parent),
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert {"cases", "top1", "top3", "per_case", "per_shape"} <= set(doc)
    assert doc["cases"] >= 11
    for case in doc["per_case"]:
        assert {"culprit_ok", "phrase_ok", "tool_calls", "shape"} <= set(case)
