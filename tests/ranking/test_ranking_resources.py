"""Resources: a service's own saturation and network delay, alone and inside the ranking.

Synthetic systems only (web → api → {db, queue}); no benchmark names.
"""

from __future__ import annotations

from datetime import timedelta

from actors.ranking import rank
from actors.ranking.anomaly import TAU, score_series
from actors.ranking.resources import CALLER_SATURATED, resource_findings
from incidentfox.evidence import EvidenceBundle, MetricSeries
from tests.ranking_helpers import T0, alert, baseline, edges, incident, series

GRAPH = edges(("web", "api"), ("api", "db"), ("api", "queue"))
SERVICES = ("web", "api", "db", "queue")


def _steady(metric: str, level: float, *, skip: tuple[str, ...] = ()) -> list[MetricSeries]:
    out = []
    for svc in SERVICES:
        if svc not in skip:
            out += [baseline(svc, level, metric=metric), incident(svc, level, level, metric=metric)]
    return out


def _bundle(*parts: list[MetricSeries], alert_on: str = "web") -> EvidenceBundle:
    return EvidenceBundle(alert=alert(alert_on, "latency_p99"), topology=GRAPH,
                          metrics=[s for p in parts for s in p])


def _latency(peaks: dict[str, float]) -> list[MetricSeries]:
    out = []
    for svc in SERVICES:
        level = {"web": 200.0, "api": 100.0}.get(svc, 10.0)
        out += [baseline(svc, level, metric="latency_p99"),
                incident(svc, level, peaks.get(svc, level), metric="latency_p99")]
    return out


def _one(metric: str, svc: str, level: float, peak: float) -> list[MetricSeries]:
    return [baseline(svc, level, metric=metric), incident(svc, level, peak, metric=metric)]


def test_a_saturated_dependency_is_blamed_and_the_alerting_service_is_a_symptom() -> None:
    b = _bundle(_latency({"web": 900.0, "api": 800.0, "db": 700.0}), _steady("cpu", 10.0, skip=("db",)),
                _one("cpu", "db", 10.0, 95.0))
    f = resource_findings(b)
    assert [(x.entity, x.kind, x.details["fault"]) for x in f] == [("db", "cpu_saturation", "cpu")]
    r = rank(b)
    assert r.top(1) == ["db"]
    web = next(s for s in r.suspects if s.entity == "web") if "web" in r.top(10) else None
    assert web is None or all(x.details.get("explained_by_dependency") for x in web.findings)


def test_the_entry_service_is_blamed_when_it_is_the_one_saturated() -> None:
    b = _bundle(_latency({"web": 900.0}), _steady("cpu", 10.0, skip=("web",)), _one("cpu", "web", 10.0, 90.0))
    r = rank(b)
    assert r.top(1) == ["web"]
    assert any(x.kind == "cpu_saturation" for x in r.suspects[0].findings)


def test_network_delay_is_the_callers_view_rising_while_the_service_sees_nothing() -> None:
    b = _bundle(_latency({"web": 900.0, "api": 800.0}), _steady("cpu", 10.0),
                _one("call_latency_client", "db", 5.0, 300.0), _one("call_latency_server", "db", 4.0, 4.0),
                _one("call_latency_client", "api", 100.0, 100.0), _one("call_latency_server", "api", 95.0, 95.0))
    f = resource_findings(b)
    assert [(x.entity, x.kind, x.details["fault"]) for x in f] == [("db", "network_delay", "network")]
    assert f[0].details["network_share"] > 0.9
    assert rank(b).top(1) == ["db"]


def test_a_slow_service_is_not_a_network_delay() -> None:
    # Both sides see the same rise: the time is spent inside db.
    b = _bundle(_latency({"web": 900.0}), _one("call_latency_client", "db", 5.0, 300.0),
                _one("call_latency_server", "db", 4.0, 299.0))
    assert resource_findings(b) == []


def test_a_small_rise_over_a_flat_baseline_is_not_a_network_delay() -> None:
    b = _bundle(_latency({"web": 900.0}), _one("call_latency_client", "db", 3.0, 4.5),
                _one("call_latency_server", "db", 3.0, 3.0))
    assert resource_findings(b) == []


def test_a_cpu_starved_caller_explains_slow_calls_from_it() -> None:
    b = _bundle(_latency({"web": 900.0, "api": 800.0}), _steady("cpu", 10.0, skip=("api",)),
                _one("cpu", "api", 10.0, 95.0),
                _one("call_latency_client", "db", 5.0, 300.0), _one("call_latency_server", "db", 4.0, 4.0))
    f = {x.entity: x for x in resource_findings(b)}
    assert f["db"].details["saturated_callers"] == ["api"]
    assert f["db"].score < f["api"].score
    assert CALLER_SATURATED < 1
    assert rank(b).top(1) == ["api"]


def test_a_spike_measured_before_the_onset_is_not_a_finding() -> None:
    # CPU spiked in the minute before the alert and is back to normal after it.
    vals = [10.0] * 9 + [95.0] + [10.0] * 5
    b = _bundle(_latency({"web": 900.0}), [baseline("db", 10.0, metric="cpu"),
                                           series("db", vals, metric="cpu", start=T0 - timedelta(minutes=10))])
    assert resource_findings(b) == []


def test_network_time_is_scored_against_its_own_history_when_the_callers_view_is_noisy() -> None:
    # The service's own work swings 100–700 ms and its callers see the same swing: alone, their view
    # rising 2.25× is within its noise (z < TAU); minus the service's own view it is a clear jump.
    own = [100.0 + 600.0 * ((i * 7) % 5) / 4 for i in range(40)]
    rest = [200.0] * 5
    client = own + [r + 700.0 for r in rest]
    server = own + rest
    start = T0 - timedelta(minutes=40)
    b = _bundle(_latency({"web": 900.0}),
                [series("api", client, metric="call_latency_client", start=start),
                 series("api", server, metric="call_latency_server", start=start)])
    alone = next(s for s in score_series(b) if s.metric == "call_latency_client")
    assert float(alone.z.max()) < TAU
    f = resource_findings(b)
    assert [(x.entity, x.kind) for x in f] == [("api", "network_delay")]
    assert f[0].details["network_time_z"] is True and f[0].details["z"] >= 4


def _calls(entity: str, *, stop: bool, n_pre: int = 10, n_post: int = 3) -> MetricSeries:
    """Calls into ``entity`` as its callers time them: one point a minute, none after the onset when
    they ``stop``."""
    return series(entity, [5.0] * n_pre + ([] if stop else [5.0] * n_post), metric="call_latency_client")


def test_a_service_that_stops_calling_its_dependencies_while_still_called_is_blamed() -> None:
    b = _bundle(_latency({"web": 900.0}), _steady("cpu", 10.0),
                [_calls("api", stop=False), _calls("db", stop=True), _calls("queue", stop=True)])
    f = resource_findings(b)
    assert [(x.entity, x.kind, x.details["fault"], x.details["stopped"]) for x in f] == [
        ("api", "calls_stopped", "code", ["db", "queue"])]
    assert rank(b).top(1) == ["api"]


def test_calls_stopped_because_another_dependency_is_saturated_weigh_less() -> None:
    # api stopped calling queue, but db (its other dependency) is CPU-saturated: db is the cause.
    b = _bundle(_latency({"web": 900.0}), _steady("cpu", 10.0, skip=("db",)), _one("cpu", "db", 10.0, 95.0),
                [_calls("api", stop=False), _calls("db", stop=False), _calls("queue", stop=True)])
    f = {x.entity: x for x in resource_findings(b)}
    assert f["api"].details["saturated_dependencies"] == ["db"] and f["api"].score < f["db"].score
    assert rank(b).top(1) == ["db"]


def test_data_that_ends_at_the_onset_is_not_calls_stopping() -> None:
    b = _bundle(_latency({"web": 900.0}), [_calls("api", stop=True), _calls("db", stop=True)])
    assert [x for x in resource_findings(b) if x.kind == "calls_stopped"] == []
