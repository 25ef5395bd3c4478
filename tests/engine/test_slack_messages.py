"""What a reader of an investigation's Slack message sees: the incident title in the header while
running and when done, Cancel only while the run is active, a link to the run when the install has
a public URL (and none otherwise), and times as Slack date tokens with a dated UTC fallback."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from actors.slack.client import slack_client
from actors.slack.reporter import (
    ACTION_CANCEL,
    ACTION_FEEDBACK_DOWN,
    ACTION_FEEDBACK_UP,
    ACTION_POSTMORTEM,
    ACTION_RERUN,
    ProgressState,
    SlackReporter,
    progress_blocks,
    rca_blocks,
)
from cli.demo.slack_recorder import SlackRecorder
from incidentfox.contracts import RCA, Hypothesis, TimelineEntry
from incidentfox.links import check_public_url, run_url
from incidentfox.settings import Settings

TOKEN = "xoxb-test-0000000000-secretvalue"
STARTED = datetime(2026, 5, 4, 9, 30, 15, tzinfo=UTC)
PUBLIC = "https://fox.example.com"
DATE_TOKEN = re.compile(r"<!date\^(\d+)\^\{date_short_pretty\} \{time(?:_secs)?\}\|([^<>|]+)>")


def header(blocks: list[dict]) -> str:
    assert blocks[0]["type"] == "header" and blocks[0]["text"]["type"] == "plain_text"
    return blocks[0]["text"]["text"]


def actions(blocks: list[dict]) -> set[str]:
    return {e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]}


def mrkdwn(blocks: list[dict]) -> str:
    out = []
    for b in blocks:
        if b["type"] == "section":
            out.append(b["text"]["text"])
        elif b["type"] == "context":
            out.extend(e["text"] for e in b["elements"])
    return "\n".join(out)


def links(blocks: list[dict]) -> list[tuple[str, str]]:
    return re.findall(r"<(https?://[^|<>]+)\|([^<>]+)>", mrkdwn(blocks))


def test_progress_message_keeps_the_title_and_offers_cancel() -> None:
    state = ProgressState(title="High error rate on checkout", phase="gathering evidence",
                          started_at=STARTED, run_url=run_url(PUBLIC, "run_1"))
    blocks = progress_blocks(state, run_id="run_1")
    assert header(blocks) == "🔍 High error rate on checkout"
    assert actions(blocks) == {ACTION_CANCEL}
    assert links(blocks) == [(f"{PUBLIC}/api/v1/agent/runs/run_1", "Open run")]
    text = mrkdwn(blocks)
    assert "Investigation running" in text and "gathering evidence" in text
    (unix, fallback), = DATE_TOKEN.findall(text)
    assert int(unix) == int(STARTED.timestamp()) and fallback == "2026-05-04 09:30 UTC"
    assert "{date_short_pretty} {time}" in text


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_a_finished_runs_message_keeps_the_title_and_has_no_cancel(status: str) -> None:
    blocks = rca_blocks(RCA(summary="done"), run_id="run_7", status=status, title="checkout 5xx",
                        finished_at=STARTED + timedelta(minutes=3), run_url=run_url(PUBLIC + "/", "run_7"))
    assert header(blocks).endswith(" checkout 5xx")
    assert actions(blocks) == {ACTION_RERUN, ACTION_FEEDBACK_UP, ACTION_FEEDBACK_DOWN, ACTION_POSTMORTEM}
    assert all(e["value"] == "run_7" for b in blocks if b["type"] == "actions" for e in b["elements"])
    assert links(blocks) == [(f"{PUBLIC}/api/v1/agent/runs/run_7", "Open run")]
    text = mrkdwn(blocks)
    assert f"Investigation {status}" in text and "finished <!date^" in text
    assert DATE_TOKEN.findall(text) == [(str(int(STARTED.timestamp()) + 180), "2026-05-04 09:33 UTC")]


def test_an_active_status_still_offers_cancel() -> None:
    assert ACTION_CANCEL in actions(rca_blocks(RCA(summary="x"), run_id="r", status="running"))


def test_without_a_public_url_there_is_no_link() -> None:
    assert run_url("", "run_1") is None
    for blocks in (rca_blocks(RCA(summary="x"), run_id="run_1", run_url=run_url("", "run_1")),
                   progress_blocks(ProgressState(title="t", run_url=run_url("", "run_1")), run_id="run_1")):
        text = mrkdwn(blocks)
        assert "Open run" not in text and "<http" not in text and "<|" not in text and "<>" not in text


def test_header_titles_are_plain_and_fit_slacks_limit() -> None:
    long = "Disk pressure on " + "node-a " * 60
    assert len(header(rca_blocks(RCA(summary="x"), run_id="r", title=long))) == 150
    assert header(rca_blocks(RCA(summary="x"), run_id="r", title=long)).endswith("…")
    mention = "why is <#C123|payments> slow since <https://ci.example/run/9|deploy 9> &amp; <@U42>?"
    assert header(progress_blocks(ProgressState(title=mention), run_id="r")) == \
        "🔍 why is #payments slow since deploy 9 & @U42?"
    # No title (an API run without one): the status stands in.
    assert header(rca_blocks(RCA(summary="x"), run_id="r", status="failed")) == "❌ Investigation failed"
    assert header(progress_blocks(ProgressState(), run_id="r")) == "🔍 Investigating…"


def test_the_follow_up_hypotheses_and_what_they_found_are_shown_grouped_and_escaped() -> None:
    why = "pod shop/api-1 is crash-looping (5 restarts): read <its> logs"
    rca = RCA(summary="x", notes=["Follow-ups ended by the time budget (investigation.time_budget_s = 30 s)"],
              hypotheses=[Hypothesis(round=1, hypothesis=why, tool="kubernetes_get_pod_logs",
                                     found="40 log lines from api-1, 3 errors"),
                          Hypothesis(round=1, hypothesis=why, tool="kubernetes_get_events", found=""),
                          *(Hypothesis(round=2, hypothesis=f"checkout-{i} is slow", tool="tempo_search_traces",
                                       found="3 traces") for i in range(7))])
    text = mrkdwn(rca_blocks(rca, run_id="r"))
    section = text[text.index("*Follow-ups*"):].split("\n\n")[0]
    rows = section.split("\n")
    assert rows[1] == ("• R1 pod shop/api-1 is crash-looping (5 restarts): read &lt;its&gt; logs → "
                       "`kubernetes_get_pod_logs`: 40 log lines from api-1, 3 errors; `kubernetes_get_events`: "
                       "nothing returned")
    assert rows[2].startswith("• R2 checkout-0 is slow") and rows[-1] == "…and 2 more (see the run)"
    assert "time budget" in text
    assert "*Follow-ups*" not in mrkdwn(rca_blocks(RCA(summary="x"), run_id="r"))


def test_timeline_times_carry_date_and_zone() -> None:
    berlin = timezone(timedelta(hours=2))
    rca = RCA(summary="x", timeline=[TimelineEntry(at=datetime(2026, 5, 4, 11, 30, 5, tzinfo=berlin), event="deploy"),
                                     TimelineEntry(at=datetime(2026, 5, 4, 9, 31, 0), event="errors rise"),  # naive: UTC
                                     TimelineEntry(event="undated note")])
    sections = [b["text"]["text"] for b in rca_blocks(rca, run_id="r") if b["type"] == "section"]
    rows = next(t for t in sections if t.startswith("*Timeline*")).split("\n")[1:]
    assert rows[0] == f"• <!date^{int(STARTED.timestamp()) - 10}^{{date_short_pretty}} {{time_secs}}" \
                      "|2026-05-04 09:30:05 UTC> deploy"
    assert DATE_TOKEN.findall(rows[1]) == [(str(int(STARTED.timestamp()) + 45), "2026-05-04 09:31:00 UTC")]
    assert rows[2] == "• undated note"


def test_public_url_is_checked_when_the_settings_load() -> None:
    assert Settings(public_url="https://fox.example.com/").public_url == PUBLIC
    assert check_public_url("") == ""
    for bad in ("fox.example.com", "ftp://fox.example.com", "https://", "https://fox.example.com/?a=1",
                "https://fox.example.com/x|y"):
        with pytest.raises(ValidationError, match="public_url"):
            Settings(public_url=bad)


@pytest.fixture
async def recorder():
    rec = SlackRecorder()
    await rec.start()
    yield rec
    await rec.stop()


async def test_the_posted_and_final_messages_through_slack(recorder: SlackRecorder) -> None:
    async with slack_client(token=TOKEN, base_url=recorder.url) as client:
        reporter = SlackReporter(client, run_id="run_c", title="PodCrashLooping cart", now=STARTED,
                                 run_url=run_url(PUBLIC, "run_c"), debounce_s=0.05)
        await reporter.start(channel="C1", thread_ts=None)
        await reporter.finish(RCA(summary="The investigation was cancelled."), status="cancelled",
                              now=STARTED + timedelta(seconds=40))
    post, = recorder.calls_to("chat.postMessage")
    final = recorder.calls_to("chat.update")[-1]
    posted, done = post.args["blocks"], final.args["blocks"]
    assert header(posted) == "🔍 PodCrashLooping cart" and ACTION_CANCEL in actions(posted)
    assert header(done) == "🚫 PodCrashLooping cart" and ACTION_CANCEL not in actions(done)
    assert links(done) == [(f"{PUBLIC}/api/v1/agent/runs/run_c", "Open run")]
    assert "2026-05-04 09:30 UTC" in mrkdwn(done) and "Investigation cancelled" in mrkdwn(done)
