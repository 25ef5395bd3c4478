"""Log templates: masking and Drain grouping, new/surging/steady against the baseline, and the evidence."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.ranking.log_templates import mask, mine, mine_templates, template_changes
from actors.ranking.logs import log_findings
from incidentfox.evidence import Alert, LogLine
from tests.ranking_helpers import T0

# --- mining --------------------------------------------------------------------------------------


def test_lines_that_differ_only_in_masked_parts_share_a_template() -> None:
    variants = [
        "request 123e4567-e89b-12d3-a456-426614174000 from 10.0.0.5:5432 failed after 250ms on api-6f5cbdf85-c5fsf",
        ("request 9b2f1c3a-0d4e-4f5a-8b6c-7d8e9f0a1b2c from 192.168.1.17:80 failed after 8.01 seconds on "
         "api-7d9c8b6f5b-x2x4z"),
        "request 00000000-1111-2222-3333-444444444444 from 172.16.0.1 failed after 1m30s on api-57b4fd8c9f-q8t2w",
    ]
    ids, texts = mine(variants)
    assert len(set(ids)) == 1
    assert texts[ids[0]] == "request <UUID> from <IP> failed after <DURATION> on api-<POD>"
    ids, _ = mine(["trace 18af88d37ae92f8c2548ac8e1202549b slow", "trace 0xdeadbeef slow",
                   'open "pg_wal/x.88" failed', 'open "base/16384/24576" failed'])
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]


def test_masks_keep_ordinary_words() -> None:
    assert mask("nginx-https-proxy ready, can't reach it, don't retry") == \
        "nginx-https-proxy ready, can't reach it, don't retry"
    assert mask("job java-api-checker-2lhkn exited 1") == "job java-api-checker-<POD> exited <NUM>"


def test_different_messages_stay_apart() -> None:
    lines = ["ERROR could not write to file: No space left on device",
             "ERROR upstream checkout returned 503 Service Unavailable for POST /checkout",
             "INFO GET /healthz 200",
             "FATAL JavaScript heap out of memory",
             "ERROR could not write to file: No space left on device"]
    ids, texts = mine(lines)
    assert len(set(ids)) == 4 and ids[0] == ids[4]
    assert texts[ids[0]] == lines[0]
    # A shared boilerplate prefix (trace context) does not make two messages one template.
    ids, _ = mine(["TraceID: 04c87ec97bae041b1b15b3c7676a43cc SpanID: e4006dce6700e903 cart emptied",
                   "TraceID: 18af88d37ae92f8c2548ac8e1202549b SpanID: a86ed18af2a7c4a0 payment declined",
                   "TraceID: 5d291fbfb8482ba748fd8d020ab345a0 SpanID: 8f1c47170210fcd8 cart emptied"])
    assert ids[0] == ids[2] != ids[1]


# --- new, surging, steady ------------------------------------------------------------------------


def _at(minute: float, text: str, level: str = "") -> LogLine:
    return LogLine(entity="api", text=text, level=level, at=T0 + timedelta(minutes=minute))


def _hand_built() -> list[LogLine]:
    """One hour before the onset (baseline up to T0 − 15 min), 15 minutes of incident."""
    lines = []
    for m in range(-60, 15):
        lines.append(_at(m, f"INFO GET /healthz 200 in {m % 7 + 3}ms", "info"))             # steady
        if m % 10 == 0:
            lines.append(_at(m + 0.5, f"ERROR cache miss storm for key user:{m}", "error"))  # surging below
        if m >= -15:
            lines.append(_at(m + 0.5, f"ERROR cache miss storm for key user:{m}", "error"))
            lines.append(_at(m + 0.2, f"ERROR db pool exhausted (active={m + 20})", "error"))  # new
    lines.append(_at(-50, "WARN disk 81% full", "warning"))                                 # gone
    return lines


def test_new_surging_steady_and_gone_are_told_apart() -> None:
    changes = template_changes(_hand_built(), onset=T0)
    status = {c.stats.example.split(" ")[1]: c for c in changes}
    assert status["db"].status == "new" and status["db"].stats.baseline_count == 0
    assert status["cache"].status == "surging" and status["cache"].ratio >= 2
    assert status["GET"].status == "steady"
    assert status["disk"].status == "gone"
    assert status["db"].stats.incident_count == 30
    assert status["db"].stats.first_seen == T0 + timedelta(minutes=-15, seconds=12)
    # Error templates that rose come first; the steady and gone ones follow.
    assert {c.status for c in changes[:2]} == {"surging", "new"}
    assert {c.status for c in changes[2:]} == {"steady", "gone"}


def test_a_surge_needs_a_minimum_count_and_ratio() -> None:
    base = [_at(m, "ERROR retrying request", "error") for m in range(-60, -15)]           # one a minute
    steady = base + [_at(m, "ERROR retrying request", "error") for m in range(-15, 15)]   # still one a minute
    few = [_at(-60, "ERROR retrying request", "error"), _at(-14.9, "ERROR retrying request", "error"),
           _at(-14.8, "ERROR retrying request", "error"), _at(-14, "INFO ok", "info")]
    (s,) = template_changes(steady, onset=T0)
    assert s.status == "steady" and s.ratio < 2
    (f,) = [c for c in template_changes(few, onset=T0) if c.stats.error]
    assert f.status == "steady" and f.ratio >= 2 and f.stats.incident_count == 2
    (up,) = [c for c in template_changes([*few, _at(-14.7, "ERROR retrying request", "error")], onset=T0)
             if c.stats.error]
    assert up.status == "surging" and up.stats.incident_count == 3


def test_without_an_onset_every_template_is_new() -> None:
    changes = template_changes(_hand_built(), onset=None)
    assert {c.status for c in changes} == {"new"}


# --- properties ----------------------------------------------------------------------------------

_WORDS = st.sampled_from(["ERROR", "INFO", "connect", "to", "db", "failed", "ok", "retry", "user", "42",
                          "10.0.0.1", "250ms", "0xbeef", "api-6f5cbdf85-c5fsf", '"x y"', "timeout"])
_LINE = st.lists(_WORDS, min_size=1, max_size=8).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_LINE, st.integers(min_value=-120, max_value=30)), max_size=40))
def test_counts_sum_to_the_lines_and_mining_is_deterministic(rows: list[tuple[str, int]]) -> None:
    lines = [_at(m, text) for text, m in rows]
    stats = mine_templates(lines, cutoff=T0 - timedelta(minutes=15))
    assert sum(s.baseline_count + s.incident_count for s in stats) == len(lines)
    assert sorted(i for s in stats for i in s.lines) == list(range(len(lines)))
    assert mine_templates(lines, cutoff=T0 - timedelta(minutes=15)) == stats


# --- the log evidence ----------------------------------------------------------------------------


def test_the_evidence_is_the_new_and_surging_error_templates_with_counts() -> None:
    (f,) = [f for f in log_findings(_hand_built(), Alert(started_at=T0)) if f.kind == "error_signature"]
    assert f.details["new"] and f.details["status"] in ("new", "surging")
    quoted = {t["status"] for t in f.details["templates"]}
    assert quoted == {"new", "surging"}
    assert {e.quote for e in f.evidence} == {t["example"] for t in f.details["templates"]}
    assert all("healthz" not in e.quote for e in f.evidence)


def test_a_steady_error_counts_half_and_a_baseline_only_error_not_at_all() -> None:
    steady = [_at(m, "ERROR retrying request", "error") for m in range(-60, 15)]
    fresh = [_at(m, "ERROR retrying request", "error") for m in range(-15, 15)]
    (s,) = log_findings(steady, Alert(started_at=T0))
    (n,) = log_findings(fresh + [_at(-60, "INFO started", "info")], Alert(started_at=T0))
    assert s.details["status"] == "steady" and not s.details["new"]
    assert n.details["status"] == "new" and n.details["new"]
    assert s.score < n.score
    gone = [_at(m, "ERROR retrying request", "error") for m in range(-60, -30)] + [_at(10, "INFO ok", "info")]
    assert log_findings(gone, Alert(started_at=T0)) == []


def test_a_surging_error_counts_as_fully_as_a_new_one() -> None:
    surge = [_at(m, "ERROR retrying request", "error") for m in range(-60, -15, 15)]
    surge += [_at(m, "ERROR retrying request", "error") for m in range(-15, 15)]
    (f,) = log_findings(surge, Alert(started_at=T0))
    assert f.details["status"] == "surging" and f.details["baseline_count"] == 3
    (n,) = log_findings(surge[3:], Alert(started_at=T0))
    assert f.score == n.score and "surging" in f.summary
