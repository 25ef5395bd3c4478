"""The offline postmortem writer: pure, every section, UTC times in order, the impact window from the
trigger and alert times, actions from approvals, the conversation from the run's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from actors.engine.postmortem import EventFact, RunFacts, draft_postmortem
from incidentfox.contracts import RCA, Evidence, RootCause, TimelineEntry

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SECTIONS = ["## Summary", "## Impact window", "## Timeline (UTC)", "## Root cause", "## Evidence",
            "## Actions taken", "## Follow-ups"]


def _run(**kw) -> RunFacts:
    base = {"run_id": "run_1", "status": "succeeded", "created_at": T0 + timedelta(minutes=3),
            "finished_at": T0 + timedelta(minutes=6),
            "trigger": {"source": "pagerduty", "title": "checkout 5xx\n# injected heading",
                        "occurred_at": (T0 + timedelta(minutes=2)).isoformat(), "services": ["checkout"]},
            "absorbed": [{"title": "frontend latency", "occurred_at": (T0 + timedelta(minutes=1)).isoformat()}]}
    return RunFacts(**(base | kw))


RCA_ = RCA(summary="checkout v2.3.1 crash-loops since its deploy",
           root_causes=[RootCause(entity="shop/deployment/checkout", description="bad deploy", confidence=0.85,
                                  evidence=[Evidence(kind="event", source="kubernetes_get_events",
                                                     quote="Back-off restarting failed container")])],
           affected_services=["checkout", "frontend"],
           timeline=[TimelineEntry(at=T0 + timedelta(seconds=30), event="deploy checkout v2.3.1")],
           recommended_actions=["roll back checkout"], notes=["one quote was not verified"])

EVENTS = [
    EventFact(T0 + timedelta(minutes=3, seconds=1), "status", {"status": "running"}),
    EventFact(T0 + timedelta(minutes=4), "approval", {"approval_id": "apr_1", "tool": "kubernetes_rollback",
                                                      "status": "pending"}),
    EventFact(T0 + timedelta(minutes=5), "note", {"approval": "apr_1", "decision": "approved", "by": "slack:U1"}),
    EventFact(T0 + timedelta(minutes=5, seconds=30), "turn", {"user": "U2", "text": "is frontend ok now?"}),
    EventFact(T0 + timedelta(minutes=5, seconds=40), "note", {"slack": "error", "reason": "x"}),
    EventFact(T0 + timedelta(minutes=6), "status", {"status": "succeeded"}),
]


def test_draft_has_every_section_in_order() -> None:
    md = draft_postmortem(_run(), EVENTS, RCA_, tool_calls=7, now=T0 + timedelta(hours=1))
    positions = [md.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    assert md.startswith("# Postmortem draft: checkout 5xx # injected heading\n")   # kept on one line
    assert "from run `run_1` (succeeded) at 2026-11-30 13:00:00 UTC" in md
    assert "checkout v2.3.1 crash-loops since its deploy" in md
    assert "**`shop/deployment/checkout`** (confidence 85%): bad deploy" in md
    assert "from `kubernetes_get_events`: > Back-off restarting failed container" in md
    assert "- [ ] roll back checkout" in md and "- [ ] Check: one quote was not verified" in md
    assert "`kubernetes_rollback` ran after approval by slack:U1" in md and "7 tool calls" in md
    assert "## Conversation" in md and "U2: is frontend ok now?" in md


def test_impact_window_starts_at_the_earliest_signal() -> None:
    md = draft_postmortem(_run(resolved_at=T0 + timedelta(minutes=47)), EVENTS, RCA_)
    # The RCA's deploy (12:00:30) is earlier than the alerts (12:01, 12:02).
    assert "- **Start:** 2026-11-30 12:00:30 UTC (the first event in the RCA timeline)" in md
    assert "- **Detected:** 2026-11-30 12:03:00 UTC" in md
    assert "- **Resolved:** 2026-11-30 12:47:00 UTC" in md and "- **Duration:** 0 h 46 min" in md
    assert "- **Affected services:** `checkout`, `frontend`" in md
    no_rca = draft_postmortem(_run(), [], None)
    assert "(a correlated alert fired)" in no_rca and "2026-11-30 12:01:00 UTC" in no_rca
    assert "not recorded (ongoing" in no_rca


def test_timeline_is_sorted_utc_and_skips_bookkeeping() -> None:
    other_zone = timezone(timedelta(hours=2))
    events = [*EVENTS, EventFact(datetime(2026, 11, 30, 14, 0, 30, tzinfo=other_zone), "phase",
                                 {"phase": "rca", "root_causes": ["shop/deployment/checkout"]})]
    md = draft_postmortem(_run(), events, RCA_)
    section = md.split("## Timeline (UTC)")[1].split("## Root cause")[0]
    rows = [r for r in section.splitlines() if r.startswith("- ")]
    times = [r[2:25] for r in rows]
    assert times == sorted(times) and all(t.endswith("UTC") for t in times)
    assert rows[0] == "- 2026-11-30 12:00:30 UTC: deploy checkout v2.3.1"
    assert "- 2026-11-30 12:00:30 UTC: Analysis finished: shop/deployment/checkout" in rows   # 14:00:30+02:00
    assert not any("error" in r or "note:" in r for r in rows)   # the Slack bookkeeping note is left out


def test_a_failed_run_without_rca_still_drafts() -> None:
    md = draft_postmortem(_run(status="failed", error="deadline exceeded", trigger={"text": "why?"}, absorbed=[]),
                          [], None)
    assert all(s in md for s in SECTIONS)
    assert "Not determined: the run failed (deadline exceeded)." in md
    assert "- No quoted evidence was recorded." in md and "## Conversation" not in md


def test_the_threads_replies_are_the_conversation() -> None:
    """Replies recorded by the thread-conversation intake (``turn`` events, author in ``actor``) appear
    in time order, with their author, in the Conversation section and the timeline."""
    turns = [EventFact(T0 + timedelta(minutes=7), "turn", {"mode": "follow_up", "actor": "U7", "text": "look at payments"}),
             EventFact(T0 + timedelta(minutes=4), "turn", {"mode": "redirect", "actor": "U8",
                                                           "text": "what about the database?"})]
    md = draft_postmortem(_run(), turns, RCA_, now=T0)
    convo = md.split("## Conversation", 1)[1]
    assert convo.index("U8: what about the database?") < convo.index("U7: look at payments")
    assert "look at payments" in md.split("## Timeline (UTC)", 1)[1].split("## Root cause", 1)[0]
