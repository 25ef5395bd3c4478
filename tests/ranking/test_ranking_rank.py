"""Entities, the no-incident decision, rank() combining signals, and build_rca()."""

from __future__ import annotations

from datetime import timedelta

from actors.ranking import build_rca, rank
from actors.ranking.anomaly import analyze
from actors.ranking.entities import parse_entity, same_workload, workload_key
from actors.ranking.no_incident import decide, heartbeat_note
from incidentfox.evidence import Alert, ChangeEvent, EvidenceBundle, K8sEvent, LogLine, ObjectState
from tests.ranking_helpers import T0, alert, baseline, edges, incident

# --- entities ------------------------------------------------------------------------------------


def test_entity_parsing_keeps_service_names_with_slashes_whole() -> None:
    assert parse_entity("default/pod/x").kind == "pod"
    assert parse_entity("deployment/checkout") == ("", "deployment", "checkout")
    assert parse_entity("PetAdoptionStatusUpdater/prod_AWS::ApiGateway::Stage").kind == ""


def test_workload_membership_uses_kubernetes_generated_suffixes() -> None:
    assert same_workload("default/pod/api-6f5cbdf85-c5fsf", "default/deployment/api")
    assert same_workload("default/pod/nightly-2lhkn", "default/job/nightly")
    assert same_workload("shop/pod/cart-7d9c8b6f5b-x2x4z", "cart")
    assert not same_workload("default/pod/logging-agent", "default/deployment/logging")
    assert not same_workload("default/pod/api-6f5cbdf85-c5fsf", "other/deployment/api")
    assert not same_workload("default/deployment/customer-orders-for-medium", "default/deployment/customer-orders")
    assert workload_key("default/pod/api-6f5cbdf85-c5fsf") == workload_key("default/pod/api-6f5cbdf85-xx2lk")


# --- no incident ---------------------------------------------------------------------------------


def test_heartbeat_alerts_are_recognised() -> None:
    b = EvidenceBundle(alert=Alert(title="Watchdog", labels={"severity": "none"},
                                   text="An alert that should always be firing"))
    assert "heartbeat" in heartbeat_note(b)
    assert heartbeat_note(EvidenceBundle(alert=Alert(title="HighLatency", labels={"severity": "critical"}))) == ""


def test_nothing_stands_out_means_no_incident() -> None:
    ranking = rank(EvidenceBundle(alert=Alert(title="Watchdog", labels={"severity": "none"})))
    assert ranking.no_incident and ranking.suspects == []
    rca = build_rca(ranking, EvidenceBundle())
    assert rca.no_incident and rca.summary.startswith("No incident") and rca.root_causes == []


def test_normal_alert_metric_means_no_incident_even_with_other_anomalies() -> None:
    b = EvidenceBundle(alert=alert("front"), topology=edges(("front", "api")),
                       metrics=[baseline("front", 0.1), incident("front", 0.1, 0.1),
                                baseline("api", 0.1), incident("api", 0.1, 0.9)])
    no, reason = decide(b, analyze(b), [])
    assert no and "normal range" in reason
    assert rank(b).no_incident


def test_strong_kubernetes_evidence_overrides_a_quiet_metric() -> None:
    b = EvidenceBundle(alert=alert("front"), metrics=[baseline("front", 0.1), incident("front", 0.1, 0.1)],
                       objects=[ObjectState(namespace="d", kind="pod", name="front-6f5cbdf85-c5fsf",
                                            reasons=["OOMKilled"])])
    ranking = rank(b)
    assert not ranking.no_incident and ranking.top(1) == ["d/pod/front-6f5cbdf85-c5fsf"]


# --- combining -----------------------------------------------------------------------------------


def _bad_deploy_bundle() -> EvidenceBundle:
    return EvidenceBundle(
        alert=alert("front", metric="error_rate"),
        topology=edges(("front", "checkout"), ("front", "cart")),
        metrics=[baseline("front", 0.01, metric="error_rate"), incident("front", 0.01, 0.08, metric="error_rate"),
                 baseline("checkout", 0.01, metric="error_rate"), incident("checkout", 0.01, 0.2, metric="error_rate"),
                 baseline("cart", 0.01, metric="error_rate"), incident("cart", 0.01, 0.01, metric="error_rate")],
        changes=[ChangeEvent(entity="shop/deployment/checkout", kind="deploy", at=T0 - timedelta(minutes=6),
                             description="shrink DB pool", ref="v2.14.0"),
                 ChangeEvent(entity="shop/deployment/cart", kind="deploy", at=T0 - timedelta(minutes=90),
                             description="copy tweaks", ref="v1.8.3")],
        logs=[LogLine(entity="checkout", text="ERROR pool exhausted (max=5)", level="error")] * 30,
        events=[K8sEvent(namespace="other", kind="pod", name="batch-6f5cbdf85-c5fsf", type="Warning",
                         reason="BackOff", message="Back-off restarting failed container")],
    )


def test_independent_signals_on_one_workload_combine_into_the_top_suspect() -> None:
    ranking = rank(_bad_deploy_bundle())
    top = ranking.suspects[0]
    assert top.entity == "checkout"                     # named after the call-graph service
    assert {"propagation", "change", "log_signature"} <= set(top.signals)
    assert "shop/deployment/checkout" in top.related
    assert top.score > max(f.score for f in top.findings)   # noisy-OR of the signals
    assert 0 < top.confidence <= top.score


def test_unrelated_breakage_is_damped() -> None:
    ranking = rank(_bad_deploy_bundle())
    batch = next(s for s in ranking.suspects if "batch" in s.entity)
    assert batch.findings[0].details.get("unrelated_to_alert") is True
    assert batch.score < 0.4


def test_rca_quotes_evidence_and_derives_actions() -> None:
    b = _bad_deploy_bundle()
    rca = build_rca(rank(b), b)
    assert not rca.no_incident
    assert rca.root_causes[0].entity == "checkout"
    quotes = [e.quote for e in rca.root_causes[0].evidence]
    assert any("deploy of shop/deployment/checkout (v2.14.0)" in q for q in quotes)
    assert any("pool exhausted" in q for q in quotes)
    assert any(a.startswith("Roll back the deploy of shop/deployment/checkout (v2.14.0)") for a in rca.recommended_actions)
    assert "front" in rca.affected_services and "checkout" in rca.affected_services
    times = [t.at for t in rca.timeline if t.at is not None]
    assert times == sorted(times) and any("alert fired" in t.event for t in rca.timeline)


def test_now_stands_in_for_a_missing_alert_start() -> None:
    b = _bad_deploy_bundle()
    b = b.model_copy(update={"alert": b.alert.model_copy(update={"started_at": None})})
    assert rank(b, now=T0).top(1) == ["checkout"]


def test_rca_leads_with_a_strong_change_and_orders_actions_by_specificity() -> None:
    b = _bad_deploy_bundle()
    rca = build_rca(rank(b), b)
    assert "Most likely root cause: checkout — deploy of shop/deployment/checkout" in rca.summary
    assert rca.recommended_actions[0].startswith("Roll back the deploy")
    assert rca.recommended_actions[-1].startswith(("Investigate", "Fix the recurring error"))


def test_confidence_never_increases_down_the_ranking() -> None:
    ranking = rank(_bad_deploy_bundle())
    confs = [s.confidence for s in ranking.suspects]
    assert confs == sorted(confs, reverse=True)


def test_known_failure_signatures_yield_their_fix_once() -> None:
    lines = [LogLine(entity=e, text='could not write to file "pg_wal/x": No space left on device', level="error")
             for e in ("db", "api") for _ in range(10)]
    b = EvidenceBundle(alert=Alert(title="api errors"), logs=lines)
    rca = build_rca(rank(b), b)
    disk = [a for a in rca.recommended_actions if a.startswith("Free disk space")]
    assert len(disk) == 1


def test_a_cause_of_the_alerts_subject_is_not_damped_as_unrelated() -> None:
    """An unbound claim is named like nothing the alert names, but it explains the alerted pod."""
    pod = "cache-5d8f7c9b6d-q2w4x"
    b = EvidenceBundle(
        alert=Alert(title="what is wrong with cache?", entity="cache"),
        objects=[ObjectState(namespace="shop", kind="pod", name=pod, status="Pending", extra={"claims": ["data"]}),
                 ObjectState(namespace="shop", kind="PersistentVolumeClaim", name="data", status="Pending")],
        events=[K8sEvent(namespace="shop", kind="pod", name=pod, type="Warning", reason="FailedScheduling",
                         message="pod has unbound immediate PersistentVolumeClaims"),
                K8sEvent(namespace="shop", kind="persistentvolumeclaim", name="data", type="Warning",
                         reason="ProvisioningFailed", message='storageclass "x" not found')])
    r = rank(b)
    assert r.top(2) == ["shop/persistentvolumeclaim/data", f"shop/pod/{pod}"]
    assert not r.suspects[0].findings[0].details.get("unrelated_to_alert")
