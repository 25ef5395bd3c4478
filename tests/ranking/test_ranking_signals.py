"""Change correlation, log signatures and traces, each on its own."""

from __future__ import annotations

from datetime import timedelta

from actors.ranking.changes import change_findings
from actors.ranking.log_templates import mine
from actors.ranking.logs import dependency_of, log_findings, slow_threshold
from actors.ranking.traces import trace_findings
from incidentfox.evidence import Alert, ChangeEvent, LogLine, TraceSpan
from tests.ranking_helpers import T0

# --- change correlation --------------------------------------------------------------------------


def _change(minutes_before: float | None, kind: str = "deploy") -> ChangeEvent:
    at = None if minutes_before is None else T0 - timedelta(minutes=minutes_before)
    return ChangeEvent(entity="checkout", kind=kind, description="bump pool", at=at, ref="v2", author="dana")


def test_a_deploy_just_before_the_onset_scores_highest() -> None:
    scores = {m: change_findings([_change(m)], T0)[0].score for m in (5, 30, 100)}
    assert scores[5] > scores[30] > scores[100]
    assert scores[5] > 0.75


def test_changes_after_the_onset_or_long_before_are_ignored() -> None:
    assert change_findings([_change(-10)], T0) == []
    assert change_findings([_change(60 * 5)], T0) == []
    assert change_findings([_change(-1)], T0)  # within clock skew


def test_commits_weigh_less_than_deploys_and_untimed_changes_are_weak() -> None:
    deploy = change_findings([_change(10)], T0)[0].score
    commit = change_findings([_change(10, kind="commit")], T0)[0].score
    assert commit < deploy
    assert change_findings([_change(None)], T0)[0].score == 0.3


def test_change_evidence_quotes_the_change() -> None:
    f = change_findings([_change(10)], T0)[0]
    assert f.evidence[0].kind == "change"
    assert "deploy of checkout (v2)" in f.evidence[0].quote and "by dana" in f.evidence[0].quote


# --- log signatures ------------------------------------------------------------------------------


def test_error_lines_group_by_signature_and_name_the_dependency() -> None:
    lines = [LogLine(entity="job", text=f"All host(s) tried for db query failed (tried: prod-db:3333) id={i}")
             for i in range(20)]
    lines.append(LogLine(entity="job", text="INFO started", level="info"))
    (f,) = log_findings(lines, Alert())
    assert f.kind == "error_signature" and f.details["count"] == 20
    assert f.details["dependency"] == "prod-db:3333"
    ids, _ = mine(["took 12 ms id=1", "took 99 ms id=7"])
    assert ids[0] == ids[1]


def test_errors_that_stopped_early_are_transient() -> None:
    def line(minute: int, text: str) -> LogLine:
        return LogLine(entity="api", text=text, at=T0 + timedelta(minutes=minute))
    early = [line(0, "ERROR dns not ready"), line(1, "ERROR dns not ready")] + [line(m, "ok") for m in range(2, 60)]
    late = [line(m, "ok") for m in range(58)] + [line(58, "ERROR dns not ready"), line(59, "ERROR dns not ready")]
    (e,), (l,) = log_findings(early, Alert()), log_findings(late, Alert())
    assert e.details["transient"] and not l.details["transient"]
    assert e.score < l.score


def test_fatal_lines_score_more_than_errors() -> None:
    err = log_findings([LogLine(entity="db", text="could not write", level="error")] * 5, Alert())[0]
    fatal = log_findings([LogLine(entity="db", text="PANIC could not write", level="fatal")] * 5, Alert())[0]
    assert fatal.score > err.score


def test_slow_operations_use_the_alerts_own_threshold() -> None:
    alert = Alert(title="checkout slow", text="requests are taking longer than 3 seconds")
    assert slow_threshold(alert) == 3.0
    lines = [LogLine(entity="api", text="Database call completed in 8.01 seconds."),
             LogLine(entity="api", text="Database call completed in 7.50 seconds."),
             LogLine(entity="api", text="cache lookup completed in 2.5 seconds.")]
    (slow,) = log_findings(lines, alert)
    assert slow.kind == "slow_operation" and slow.details["count"] == 2 and slow.details["max_seconds"] == 8.01


def test_dependency_extraction() -> None:
    assert dependency_of("getaddrinfo EAI_AGAIN auth-service") == "auth-service"
    assert dependency_of("dial tcp 10.0.0.5:5432: connect: connection refused") == "10.0.0.5:5432"
    assert dependency_of("all good") == ""


# --- traces --------------------------------------------------------------------------------------


def _span(sid: str, parent: str, entity: str, name: str, ms: float, **attrs: str) -> TraceSpan:
    return TraceSpan(trace_id="t1", span_id=sid, parent_id=parent, entity=entity, name=name, duration_ms=ms,
                     attributes=attrs)


def test_the_service_spending_the_time_itself_is_found_with_its_db_query() -> None:
    spans = [
        _span("a", "", "backend", "/checkout", 7000),
        _span("b", "a", "backend", "callout", 6900),
        _span("c", "b", "fraud", "check", 6800),
        _span("d", "c", "fraud", "postgres.query", 6500, **{"db.system": "postgresql",
                                                            "db.statement": "SELECT * FROM banned"}),
        _span("e", "a", "auth", "authenticate", 50),
    ]
    findings = trace_findings(spans, Alert(text="latency > 4s"))
    assert findings[0].entity == "fraud"
    assert findings[0].details["database"] is True
    assert "slow database query" in findings[0].summary and "SELECT * FROM banned" in findings[0].evidence[0].quote
    assert all(f.entity != "auth" for f in findings)


def test_no_spans_no_findings() -> None:
    assert trace_findings([], Alert()) == []
