"""SlackReporter and the Slack client factory against the local Slack-compatible recorder, through
the real slack_sdk client."""

from __future__ import annotations

import itertools

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError

from actors.slack.client import SlackWebReporter, slack_client
from actors.slack.reporter import (
    ACTION_FEEDBACK_DOWN,
    ACTION_FEEDBACK_UP,
    ACTION_POSTMORTEM,
    ACTION_RERUN,
    DEBOUNCE_S,
    SlackReporter,
    rca_blocks,
)
from cli.demo.slack_recorder import SlackRecorder
from incidentfox.contracts import RCA, Evidence, RootCause

TOKEN = "xoxb-test-0000000000-secretvalue"


@pytest.fixture
async def recorder():
    rec = SlackRecorder()
    await rec.start()
    yield rec
    await rec.stop()


def _rca() -> RCA:
    return RCA(summary="checkout errors after deploy v2.3.1",
               root_causes=[RootCause(entity="shop/deployment/checkout", description="bad deploy", confidence=0.9,
                                      evidence=[Evidence(kind="change", quote="deploy checkout v2.3.1 <@U123>")])],
               affected_services=["checkout", "frontend"], recommended_actions=["Roll back checkout"])


async def test_post_once_then_debounced_updates(recorder: SlackRecorder) -> None:
    async with slack_client(token=TOKEN, base_url=recorder.url) as client:
        reporter = SlackReporter(client, run_id="run_abc", title="checkout 5xx")
        msg = await reporter.start(channel="C1", thread_ts="111.222")
        # A burst of 50 state changes within a few milliseconds…
        for i in range(50):
            reporter.set_agent(["kubernetes", "metrics", "logs"][i % 3], status="running", tool_count=i)
        for name in ("kubernetes", "metrics", "logs"):
            reporter.set_agent(name, status="ok", tool_count=3, duration_s=1.25)
        await reporter.finish(_rca(), status="succeeded")

    posts = recorder.calls_to("chat.postMessage")
    updates = recorder.calls_to("chat.update")
    assert len(posts) == 1 and posts[0].args["thread_ts"] == "111.222" and posts[0].args["channel"] == "C1"
    assert "Investigating" in posts[0].args["text"]
    # …is coalesced: one progress edit at most, then the final one.
    assert 1 <= len(updates) <= 2
    assert all(u.args["ts"] == msg.ts for u in updates)
    times = [posts[0].at] + [u.at for u in updates]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g >= DEBOUNCE_S - 0.02 for g in gaps), gaps
    # The token authenticates every call but is never part of a payload.
    assert all(c.token == TOKEN for c in recorder.calls)
    assert all(TOKEN not in repr(c.args) for c in recorder.calls)


async def test_progress_lines_per_subagent(recorder: SlackRecorder) -> None:
    async with slack_client(token=TOKEN, base_url=recorder.url) as client:
        reporter = SlackReporter(client, run_id="run_p")
        await reporter.start(channel="C1", thread_ts=None)
        reporter.set_agent("kubernetes", status="ok", tool_count=4, duration_s=0.8)
        reporter.set_agent("logs", status="failed", tool_count=1, duration_s=2.0)
        await recorder.wait_for(lambda calls: [c for c in calls if c.method == "chat.update"], timeout=5)
        await reporter.aclose()
    text = recorder.calls_to("chat.update")[-1].args["text"]
    assert "*kubernetes*: ok, 4 tool calls, 0.8s" in text
    assert "*logs*: failed, 1 tool call, 2.0s" in text


async def test_rate_limited_post_is_retried(recorder: SlackRecorder) -> None:
    recorder.rate_limit(1, retry_after=1)
    async with slack_client(token=TOKEN, base_url=recorder.url) as client:
        reporter = SlackReporter(client, run_id="run_rl")
        msg = await reporter.start(channel="C9", thread_ts=None)
    posts = recorder.calls_to("chat.postMessage")
    assert [p.response.get("ok") for p in posts] == [False, True]
    assert msg.ts == posts[1].response["ts"]


def test_rca_blocks_buttons_carry_the_run_id() -> None:
    blocks = rca_blocks(_rca(), run_id="run_42")
    actions = next(b for b in blocks if b["type"] == "actions")["elements"]
    # A finished run cannot be cancelled: its message offers rerun, feedback and a postmortem draft.
    assert {e["action_id"] for e in actions} == {ACTION_RERUN, ACTION_FEEDBACK_UP, ACTION_FEEDBACK_DOWN, ACTION_POSTMORTEM}
    assert all(e["value"] == "run_42" for e in actions)
    text = "\n".join(b.get("text", {}).get("text", "") for b in blocks if b["type"] == "section")
    assert "shop/deployment/checkout" in text and "90%" in text
    # Untrusted evidence cannot ping people or inject links.
    assert "<@U123>" not in text and "&lt;@U123&gt;" in text


async def test_unknown_method_and_thread_replies(recorder: SlackRecorder) -> None:
    async with slack_client(token=TOKEN, base_url=recorder.url) as client:
        await _thread_and_upload(client, recorder)


async def _thread_and_upload(client, recorder: SlackRecorder) -> None:
    root = await client.chat_postMessage(channel="C2", text="root")
    await client.chat_postMessage(channel="C2", text="reply", thread_ts=root["ts"])
    replies = await client.conversations_replies(channel="C2", ts=root["ts"])
    assert [m["text"] for m in replies["messages"]] == ["root", "reply"]
    up = await client.files_getUploadURLExternal(filename="r.png", length=3)
    async with __import__("aiohttp").ClientSession() as http, http.post(up["upload_url"], data=b"png") as resp:
        assert resp.status == 200
    done = await client.files_completeUploadExternal(files=[{"id": up["file_id"], "title": "Report"}], channel_id="C2")
    assert done["files"][0]["title"] == "Report" and recorder.files[up["file_id"]]["content"] == b"png"


async def test_the_client_factory_always_closes_what_it_opened(recorder: SlackRecorder) -> None:
    async with slack_client(token=TOKEN, base_url=recorder.url) as client:
        await client.chat_postMessage(channel="C3", text="hi")
        own = client.session
        assert own is not None and not own.closed
    assert own.closed
    # A borrowed session (the investigation actor's) is the caller's to close.
    async with aiohttp.ClientSession() as borrowed:
        async with slack_client(token=TOKEN, base_url=recorder.url, session=borrowed) as client:
            await client.chat_postMessage(channel="C3", text="again")
        assert not borrowed.closed
    # …and the session is closed when the call fails too.
    with pytest.raises(SlackApiError):
        async with slack_client(token=TOKEN, base_url=recorder.url) as client:
            failing = client.session
            await client.chat_postMessage(channel="", text="no channel")
    assert failing.closed


async def test_web_reporter_posts_and_updates_through_closed_clients(recorder: SlackRecorder) -> None:
    reporter = SlackWebReporter(TOKEN, base_url=recorder.url)
    ts = await reporter.post("C4", None, "first", None)
    await reporter.update("C4", ts, "second", None)
    assert [c.method for c in recorder.calls] == ["chat.postMessage", "chat.update"]
    assert recorder.calls[1].args["ts"] == ts and all(c.token == TOKEN for c in recorder.calls)
    assert TOKEN not in repr(reporter)


@pytest.mark.parametrize("thread_ts", ["111.222", None])
async def test_say_answers_in_the_run_thread(recorder: SlackRecorder, thread_ts: str | None) -> None:
    async with slack_client(token=TOKEN, base_url=recorder.url) as client:
        reporter = SlackReporter(client, run_id="run_say", title="checkout 5xx")
        await reporter.say("before the first post: nowhere to answer")
        msg = await reporter.start(channel="C1", thread_ts=thread_ts)
        await reporter.say("Turning to *payments*, as <@W222> asked.")
        await reporter.aclose()
    posts = recorder.calls_to("chat.postMessage")
    assert len(posts) == 2
    assert posts[1].args["text"] == "Turning to *payments*, as <@W222> asked."
    assert posts[1].args["thread_ts"] == (thread_ts or msg.ts) and posts[1].args["channel"] == "C1"
