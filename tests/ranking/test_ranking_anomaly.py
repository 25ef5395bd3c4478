"""Anomaly scoring on its own: robust z, direction, change point, alert gate and alignment."""

from __future__ import annotations

from actors.ranking.anomaly import GATE_Z, TAU, analyze, direction, score_one
from incidentfox.evidence import EvidenceBundle
from tests.ranking_helpers import T0, alert, baseline, incident, series


def test_direction_by_metric_family() -> None:
    assert direction("latency_p99") == 1
    assert direction("error_rate") == 1
    assert direction("availability") == -1
    assert direction("free_storage_gb") == -1
    assert direction("requests") == 0


def test_spike_against_baseline_scores_high_and_normal_scores_low() -> None:
    base = baseline("svc", 0.10)
    hot = score_one(incident("svc", 0.10, 0.30), base, T0.timestamp())
    calm = score_one(incident("svc", 0.10, 0.101), base, T0.timestamp())
    assert hot is not None and calm is not None
    assert hot.z.max() > 20
    assert calm.z.max() < 1
    assert hot.delta.max() > 0.19          # native units: seconds


def test_flat_baseline_uses_the_floor_not_infinity() -> None:
    base = baseline("svc", 100.0, jitter=0.0, metric="availability")
    drop = score_one(incident("svc", 100.0, 99.0, metric="availability"), base, T0.timestamp())
    assert drop is not None
    assert 3 < drop.z.max() < 5            # 1 point over the 0.25-point floor


def test_availability_counts_downwards_only() -> None:
    base = baseline("svc", 100.0, jitter=0.0, metric="availability")
    up = score_one(incident("svc", 99.0, 100.0, metric="availability"), base, T0.timestamp())
    assert up is not None and up.z.max() <= 0


def test_level_already_there_before_the_onset_is_drift_not_incident() -> None:
    base = baseline("svc", 0.10)
    drift = score_one(incident("svc", 0.30, 0.30), base, T0.timestamp())   # high before and after
    assert drift is not None and drift.z.max() < 1


def test_without_baseline_the_window_before_the_onset_is_the_baseline() -> None:
    # 30 points before the onset, then a jump: the fallback baseline still shows it.
    s = incident("svc", 0.10, 0.50, n_pre=30)
    scored = score_one(s, None, T0.timestamp() + 20 * 60)
    assert scored is not None and scored.z.max() > TAU


def test_too_little_history_is_not_scored() -> None:
    short = series("svc", [0.1] * 5, baseline=True)
    assert score_one(incident("svc", 0.1, 0.5), short, T0.timestamp()) is None


def test_gate_confirms_the_alert_only_when_its_series_moved() -> None:
    moved = EvidenceBundle(alert=alert("front"), metrics=[baseline("front", 0.1), incident("front", 0.1, 0.4)])
    still = EvidenceBundle(alert=alert("front"), metrics=[baseline("front", 0.1), incident("front", 0.1, 0.1)])
    assert analyze(moved).confirmed is True and analyze(moved).alert_z >= GATE_Z
    assert analyze(still).confirmed is False


def test_nodes_are_scored_only_while_the_alert_is_elevated() -> None:
    # front is elevated for the first 2 incident points; "late" peaks only after that.
    front = series("front", [0.1] * 10 + [0.4, 0.4, 0.1, 0.1, 0.1])
    late = series("late", [0.1] * 10 + [0.1, 0.1, 0.9, 0.9, 0.9])
    early = series("early", [0.1] * 10 + [0.9, 0.9, 0.1, 0.1, 0.1])
    b = EvidenceBundle(alert=alert("front"), metrics=[
        front, late, early, baseline("front", 0.1), baseline("late", 0.1), baseline("early", 0.1)])
    view = analyze(b)
    assert view.nodes["early"].z > TAU
    assert view.nodes["late"].z < 1


def test_alert_metric_inferred_from_text_when_not_stated() -> None:
    b = EvidenceBundle(
        alert=alert("api", metric="", title="api is slow"),
        metrics=[incident("api", 0.1, 0.5, metric="latency_p99"), baseline("api", 0.1, metric="latency_p99"),
                 incident("api", 0.01, 0.01, metric="error_rate"), baseline("api", 0.01, metric="error_rate")])
    view = analyze(b)
    assert view.metric == "latency_p99"
    assert view.confirmed is True


def test_of_several_latency_families_the_alerts_statistic_is_compared() -> None:
    """The average moved, the p99 did not: an alert on the average is judged on the average."""
    def metrics() -> list:
        out = []
        for fam, peak in (("latency_p99", 0.3), ("latency_average", 0.5)):
            out += [incident("api", 0.3 if fam == "latency_p99" else 0.1, peak, metric=fam, statistic=""),
                    baseline("api", 0.3 if fam == "latency_p99" else 0.1, metric=fam, statistic="")]
        return out

    on_average = analyze(EvidenceBundle(alert=alert("api", labels={"statistic": "Average"}), metrics=metrics()))
    assert on_average.metric == "latency_average" and on_average.confirmed is True
    on_p99 = analyze(EvidenceBundle(alert=alert("api", title="api p99 latency high"), metrics=metrics()))
    assert on_p99.metric == "latency_p99" and on_p99.confirmed is False


def test_other_metric_families_are_kept_as_secondary() -> None:
    b = EvidenceBundle(
        alert=alert("api", metric="error_rate"),
        metrics=[incident("api", 0.01, 0.2, metric="error_rate"), baseline("api", 0.01, metric="error_rate"),
                 incident("db", 0.004, 0.9, metric="latency_p99"), baseline("db", 0.004, metric="latency_p99"),
                 incident("db", 50, 20, metric="connections"), baseline("db", 50, metric="connections")])
    view = analyze(b)
    assert "db" in view.secondary and view.secondary["db"].series.metric == "latency_p99"
    assert "db" not in view.nodes                       # not in the alert's family
