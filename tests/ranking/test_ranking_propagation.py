"""Propagation over the call graph on its own."""

from __future__ import annotations

from actors.ranking.anomaly import analyze
from actors.ranking.propagation import propagation_findings
from incidentfox.evidence import EvidenceBundle, ObjectState
from tests.ranking_helpers import alert, baseline, edges, incident


def _bundle(levels: dict[str, tuple[float, float]], topology: list[tuple[str, str]], *, alert_on: str = "front",
            objects: list[ObjectState] | None = None) -> EvidenceBundle:
    metrics = []
    for node, (level, peak) in levels.items():
        metrics += [baseline(node, level), incident(node, level, peak)]
    return EvidenceBundle(alert=alert(alert_on), topology=edges(*topology), metrics=metrics, objects=objects or [])


def _ranked(b: EvidenceBundle) -> list[str]:
    return [f.entity for f in propagation_findings(b, analyze(b))]


def test_deepest_anomalous_callee_that_explains_its_callers_ranks_first() -> None:
    # front → api → db; db's extra latency (0.5 s) is all of api's and front's.
    b = _bundle({"front": (0.2, 0.7), "api": (0.1, 0.6), "db": (0.01, 0.51), "cache": (0.01, 0.01)},
                [("front", "api"), ("api", "db"), ("api", "cache")])
    findings = propagation_findings(b, analyze(b))
    assert next(f.entity for f in findings) == "db"
    api = next(f for f in findings if f.entity == "api")
    assert api.kind == "explained_anomaly" and api.details["explained_by"] == "db"
    assert findings[0].kind == "root_of_anomaly" and "api" in findings[0].details["explains"]


def test_a_barely_anomalous_callee_does_not_explain_a_big_anomaly() -> None:
    # api is 1 s slower; db only 20 ms slower (still anomalous): api is where it starts.
    b = _bundle({"front": (0.2, 1.2), "api": (0.1, 1.1), "db": (0.01, 0.03)}, [("front", "api"), ("api", "db")])
    assert _ranked(b)[0] == "api"


def test_nodes_off_the_anomalous_path_are_not_candidates() -> None:
    # "batch" is anomalous but front does not call it (and nothing anomalous links them).
    b = _bundle({"front": (0.2, 0.7), "api": (0.1, 0.6), "batch": (0.1, 5.0)}, [("front", "api"), ("cron", "batch")])
    assert "batch" not in _ranked(b)


def test_unconfirmed_alert_yields_nothing() -> None:
    b = _bundle({"front": (0.2, 0.2), "api": (0.1, 0.9)}, [("front", "api")])
    assert propagation_findings(b, analyze(b)) == []


def test_alert_node_blames_itself_only_when_nothing_below_is_anomalous() -> None:
    alone = _bundle({"front": (0.2, 0.9), "api": (0.1, 0.1)}, [("front", "api")])
    assert _ranked(alone) == ["front"]
    below = _bundle({"front": (0.2, 0.9), "api": (0.1, 0.8)}, [("front", "api")])
    assert _ranked(below)[0] == "api"


def test_client_side_views_rank_below_the_service_behind_them() -> None:
    # front calls both the load balancer view (remote) and the service; both show the same jump.
    objs = [ObjectState(name="lb_remote", kind="remote"), ObjectState(name="search", kind="service")]
    b = _bundle({"front": (0.2, 0.7), "lb_remote": (0.1, 0.6), "search": (0.1, 0.6)},
                [("front", "lb_remote"), ("front", "search")], objects=objs)
    assert _ranked(b)[:2] == ["search", "lb_remote"]


def test_other_metric_families_count_only_when_corroborated() -> None:
    metrics = [baseline("api", 0.01, metric="error_rate"), incident("api", 0.01, 0.2, metric="error_rate"),
               baseline("db", 0.004, metric="latency_p99"), incident("db", 0.004, 0.9, metric="latency_p99")]
    b = EvidenceBundle(alert=alert("api", metric="error_rate"), topology=edges(("api", "db")), metrics=metrics)
    view = analyze(b)
    assert [f.entity for f in propagation_findings(b, view)] == ["api"]
    with_logs = propagation_findings(b, view, corroborated=lambda e: e == "db")
    assert with_logs[0].entity == "db"
    assert with_logs[0].details["secondary"] is True


def test_every_candidate_is_above_the_blame_threshold() -> None:
    b = _bundle({"front": (0.2, 0.7), "api": (0.1, 0.6)}, [("front", "api")])
    assert all(f.score >= 0.3 for f in propagation_findings(b, analyze(b)))
