"""The final Slack message names a similar past incident ("seen before: …, fixed by …") and the
runbook sections the RCA cited, linked; tenant text is escaped and unsafe links are not linked."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from actors.slack.citations import seen_before_text, sources_text
from actors.slack.reporter import rca_blocks
from incidentfox.contracts import RCA, Citation

WHEN = datetime(2026, 11, 2, 14, 5, tzinfo=UTC)
RCA_ = RCA(summary="checkout's DB pool is exhausted", recommended_actions=["Roll back checkout (runbook: …)"],
           citations=[
               Citation(kind="runbook", title="Checkout returns 5xx", section="Mitigation", used_for="action",
                        url="https://wiki.example/checkout"),
               Citation(kind="postmortem", title="2025 pool outage", section="", url="javascript:alert(1)"),
               Citation(kind="incident", title="High 5xx rate on frontend /checkout", used_for="seen_before",
                        url="https://ifx.example/runs/run_old", when=WHEN, fixed_by="roll back checkout to v2.13.1"),
           ])


def test_seen_before_names_the_incident_when_and_what_fixed_it() -> None:
    line = seen_before_text(RCA_)
    assert line.startswith("🔁 *Seen before:* <https://ifx.example/runs/run_old|High 5xx rate on frontend /checkout>")
    assert f"<!date^{int(WHEN.timestamp())}^" in line and "2026-11-02 14:05 UTC" in line
    assert line.endswith(", fixed by roll back checkout to v2.13.1")
    assert seen_before_text(RCA(summary="x")) == "" and sources_text(RCA(summary="x")) == ""


def test_sources_are_linked_only_through_safe_urls() -> None:
    text = sources_text(RCA_)
    assert "📘 <https://wiki.example/checkout|Checkout returns 5xx › Mitigation> (recommended actions)" in text
    assert "📝 2025 pool outage" in text and "javascript:" not in text
    assert "Seen before" not in text


def test_the_final_message_carries_both() -> None:
    blocks = rca_blocks(RCA_, run_id="run_1")
    texts = [json.dumps(b, ensure_ascii=False) for b in blocks]
    seen = next(i for i, t in enumerate(texts) if "Seen before" in t)
    summary = next(i for i, t in enumerate(texts) if "*Summary*" in t)
    sources = next(i for i, t in enumerate(texts) if "*Sources*" in t)
    actions = next(i for i, t in enumerate(texts) if "Recommended actions" in t)
    assert summary < seen < actions < sources


def test_hostile_titles_cannot_inject_markup() -> None:
    rca = RCA(summary="x", citations=[Citation(kind="incident", used_for="seen_before", title="<!channel> pwned",
                                               fixed_by="<https://evil.example|click>", url="https://a.example/x|y")])
    line = seen_before_text(rca)
    assert "<!channel>" not in line and "<https://evil" not in line and "&lt;!channel&gt; pwned" in line
    assert "https://a.example/x|y" not in line      # a URL with markup in it is not linked
