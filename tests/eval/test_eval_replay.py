"""HolmesGPT through replay: recordings for our tools from a case, the offline planner's calls
answered by them, and the JSON keys of its results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from evaluation import holmesgpt, replay_holmes, replay_run, scoring
from incidentfox.evidence import Alert
from tests.eval.holmes_kit import DESCRIBE, LABELS


def _write(path: Path, tool: str, params: dict, body: str, status: str = "success") -> None:
    path.write_text(json.dumps({"tool_name": tool, "match_params": params}) + "\n"
                    + json.dumps({"status": status, "params": params}) + "\n" + body)


@pytest.fixture
def small_case(tmp_path: Path) -> holmesgpt.HolmesCase:
    case = tmp_path / "any_case"
    case.mkdir()
    (case / "investigate_request.json").write_text(json.dumps(
        {"title": "Pod is crash looping", "source": "prometheus",
         "subject": {"name": "web-5d98ffcfd-tz4nc", "namespace": "shop", "kind": "pod"}}))
    _write(case / "describe.txt", "kubectl_describe", {"kind": "pod", "name": "web-5d98ffcfd-tz4nc", "namespace": "shop"},
           DESCRIBE)
    _write(case / "prev.txt", "kubectl_previous_logs", {"pod_name": "web-5d98ffcfd-tz4nc", "namespace": "shop"},
           "ERROR out of memory allocating buffer\n")
    _write(case / "job.txt", "kubectl_describe", {"kind": "job", "name": "nightly", "namespace": "shop"},
           "Name:           nightly\nNamespace:      shop\n")
    return holmesgpt.HolmesCase(case.name, case)


def test_recordings_are_filed_under_our_tools_and_matched_on_their_parameters(small_case) -> None:
    replay = replay_holmes.case_replay(small_case)
    store = replay.store()
    pods = store.answer("kubernetes_list_pods", {"namespace": None, "label_selector": None, "limit": 500})
    assert [(o.namespace, o.name) for o in pods.evidence.objects] == [("shop", "web-5d98ffcfd-tz4nc")]
    assert store.answer("kubernetes_list_pods", {"namespace": "shop"}).evidence.objects
    assert store.answer("kubernetes_list_pods", {"namespace": "other"}).evidence.objects == []
    events = store.answer("kubernetes_get_events", {"namespace": None, "warnings_only": True})
    assert [e.reason for e in events.evidence.events] == ["BackOff"]
    prev = store.answer("kubernetes_get_pod_logs",
                        {"namespace": "shop", "pod": "web-5d98ffcfd-tz4nc", "previous": True, "container": None})
    assert [ln.text for ln in prev.evidence.logs] == ["ERROR out of memory allocating buffer"]
    nothing = store.answer("kubernetes_get_pod_logs", {"namespace": "shop", "pod": "other", "previous": True})
    assert nothing.ok and nothing.summary.startswith("no data")
    assert replay.integrations == {"kubernetes": {"enabled": True}}
    jobs = store.answer("kubernetes_list_jobs", {"namespace": "shop", "label_selector": None, "limit": 500})
    assert [(o.kind.lower(), o.name) for o in jobs.evidence.objects] == [("job", "nightly")]
    assert not any("nightly" in u for u in replay.unserved)   # jobs are served by kubernetes_list_jobs


def test_the_planner_calls_our_tools_and_ranks_what_they_answer(small_case) -> None:
    replay = replay_holmes.case_replay(small_case)
    run = replay_run.investigate(replay.store(), integrations=replay.integrations,
                                 alert=Alert(title="Pod is crash looping"))
    called = [tool for tool, _, _ in run.calls]
    assert "kubernetes_list_pods" in called and "kubernetes_get_events" in called
    assert all(t.startswith("kubernetes_") for t in called)   # only the team's integration is offered
    assert run.ranking.top(1) == ["shop/pod/web-5d98ffcfd-tz4nc"]


def _real_case(shared_dir: Path, name: str) -> Path:
    data = shared_dir / "benchmarks" / "holmesgpt-investigate"
    if not (data / name / "investigate_request.json").is_file():
        pytest.skip(f"{name} is absent from ../shared/benchmarks")
    return data


def test_a_recorded_case_replayed_names_the_culprit(shared_dir: Path) -> None:
    data = _real_case(shared_dir, "01_oom_kill")
    label = scoring.load_labels(LABELS)["01_oom_kill"]
    res = scoring.holmes_replay_case(str(data / "01_oom_kill"), holmesgpt.INVESTIGATE, label)
    assert res.extra["tool_calls"] >= 1 and res.extra["tool_calls_answered"] >= 1
    assert res.extra["culprit_ok"] and res.extra["phrase_ok"] and res.extra["shape"] == "investigate"
    # The playbooks never read pod logs; the OOM-killed pod's follow-up round does (previous container).
    assert "kubernetes_get_pod_logs" in res.extra["calls"], res.extra["calls"]


def test_eval_replay_json_keeps_the_keys_and_adds_tool_calls(shared_dir: Path, tmp_path: Path) -> None:
    data = _real_case(shared_dir, "01_oom_kill")
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["eval", "--suite", "holmesgpt", "--no-ray",
                                   "--data", str(data), "--json", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["path"] == "replay" and doc["cases"] >= 1 and {"top1", "top3", "per_case"} <= set(doc)
    for case in doc["per_case"]:
        assert {"culprit_ok", "phrase_ok", "tool_calls"} <= set(case)
        assert case["tool_calls"] >= 1


def test_eval_has_no_path_option() -> None:
    """One path per suite: there is nothing to choose, so ``--path`` is not an option."""
    res = CliRunner().invoke(app, ["eval", "--suite", "holmesgpt", "--path", "replay"])
    assert res.exit_code == 2 and "--path" in res.output + (res.stderr or "")


def test_docs_get_a_section_per_fixture_shape_with_its_failing_cases(tmp_path: Path) -> None:
    from evaluation.report import write_docs

    rows = [{"case": "c1", "shape": "investigate", "expected": "ns/pod/p", "ranked": ["ns/pod/p"], "hit1": True,
             "hit3": True, "culprit_ok": True, "phrase_ok": True, "tool_calls": 6, "tool_calls_answered": 2},
            {"case": "q1", "shape": "ask", "expected": "ns/statefulset/mq", "ranked": [], "hit1": False,
             "hit3": False, "culprit_ok": False, "phrase_ok": False, "tool_calls": 7, "tool_calls_answered": 0,
             "unserved": ["get_mq_status: cluster status"]}]
    doc = tmp_path / "evaluation.md"
    write_docs("holmesgpt", {"cases": 2, "positives": 2, "positives_passed": 1, "negatives": 0,
                                    "negatives_clean": 0, "tool_calls": 13, "per_case": rows,
                                    "per_shape": {"investigate": {"culprit_ok": 1, "phrase_ok": 1, "tool_calls": 6},
                                                  "ask": {"culprit_ok": 0, "phrase_ok": 0, "tool_calls": 7}}},
               path=doc)
    text = doc.read_text()
    inv = text.split("<!-- results:holmesgpt -->")[1].split("<!-- /results:holmesgpt -->")[0]
    ask = text.split("<!-- results:holmesgpt-ask -->")[1].split("<!-- /results:holmesgpt-ask -->")[0]
    assert "| c1 |" in inv and "| q1 |" not in inv and "| 6 (2) |" in inv and "Failing cases: none." in inv
    assert "| q1 |" in ask and "**7** tool calls" in ask and "Culprit right **0/1**" in ask
    assert "- q1: blamed nothing, expected ns/statefulset/mq; key phrases missing" in ask
    assert "get_mq_status: cluster status" in ask
    assert "results:holmesgpt-replay" not in text


def test_replay_is_the_holmesgpt_path(small_case) -> None:
    from evaluation import suites

    data, labels = small_case.path.parent, small_case.path.parent / "labels.json"
    labels.write_text(json.dumps({small_case.name: {"culprit": "shop/pod/web", "phrases": []}}))
    assert suites.plan("holmesgpt", data=data, labels=labels).meta["path"] == "replay"


def test_a_broker_status_recording_is_served_by_our_broker_tool(tmp_path: Path) -> None:
    case = tmp_path / "asked"
    case.mkdir()
    nodes = [{"name": "rabbit@mq-0.mq-h.queues.svc.cluster.local", "running": False},
             {"name": "rabbit@mq-1.mq-h.queues.svc.cluster.local", "running": True,
              "partitions": ["rabbit@mq-0.mq-h.queues.svc.cluster.local"]}]
    _write(case / "status.txt", "get_rabbitmq_cluster_status", {},
           json.dumps({"status": "success", "data": {"nodes": [], "raw_node_data": nodes}}))
    replay = replay_holmes.case_replay(holmesgpt.HolmesCase(case.name, case, holmesgpt.ASK))
    assert replay.integrations["rabbitmq"] == {"enabled": True}
    got = replay.store().answer("rabbitmq_cluster_status", {})
    assert {(e.name, e.reason) for e in got.evidence.events} == {("mq-0", "NodeDown"), ("mq-1", "NetworkPartition")}
    assert replay.store().answer("kubernetes_get_events", {"namespace": None}).summary.startswith("no data")
    run = replay_run.investigate(replay.store(), integrations=replay.integrations, alert=Alert(title="is mq ok?"))
    assert run.ranking.top(1) == ["queues/pod/mq-1"] and "partition" in run.rca.summary.lower()
