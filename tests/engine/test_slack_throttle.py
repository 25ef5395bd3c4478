"""actors/slack/throttle.py: the one throttled-edit implementation (run reporter and sandbox mirror).

A virtual clock and sleep make the spacing exact and the tests free of real waiting.
"""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import Any

import pytest

from actors.slack.throttle import ThrottledEditor, ThrottledMessage


class VirtualTime:
    """``clock`` / ``sleep`` pair: sleeping advances the clock (and yields to other tasks)."""

    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Edits:
    def __init__(self, vt: VirtualTime, *, fail: int = 0) -> None:
        self.vt, self.fail = vt, fail
        self.calls: list[tuple[float, str]] = []

    async def __call__(self, text: str, blocks: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("slack down")
        self.calls.append((self.vt.now, text))


def _editor(vt: VirtualTime, edits: Edits, **kw: Any) -> ThrottledEditor:
    return ThrottledEditor(edits, min_interval_s=0.5, last_edit_at=vt.now, clock=vt.clock, sleep=vt.sleep, **kw)


async def test_a_burst_is_coalesced_spaced_and_the_last_state_lands() -> None:
    vt = VirtualTime()
    posted_at = vt.now
    edits = Edits(vt)
    editor = _editor(vt, edits)
    for i in range(50):
        editor.set(f"state {i}")
    await asyncio.sleep(0)            # the background task starts waiting out the interval
    editor.set("final")
    await editor.flush()
    times = [posted_at] + [t for t, _ in edits.calls]
    assert all(b - a >= 0.5 for a, b in pairwise(times)), times
    assert edits.calls[-1][1] == "final" and len(edits.calls) <= 2


async def test_flush_raises_a_failed_final_edit_but_background_failures_are_counted() -> None:
    vt = VirtualTime()
    edits = Edits(vt, fail=1)
    editor = _editor(vt, edits)
    editor.set("progress")
    for _ in range(5):
        await asyncio.sleep(0)        # let the background edit run (and fail)
    assert editor.failures == 1 and edits.calls == []
    edits.fail = 1
    editor.set("final")
    with pytest.raises(RuntimeError):
        await editor.flush()
    editor.set("final")               # the caller's retry
    await editor.flush()
    assert [text for _, text in edits.calls] == ["final"]


async def test_flush_waits_for_an_edit_on_the_wire_instead_of_cancelling_it() -> None:
    vt = VirtualTime()
    started, release = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def slow_edit(text: str, blocks: Any) -> None:
        started.set()
        await release.wait()
        seen.append(text)

    editor = ThrottledEditor(slow_edit, min_interval_s=0.5, clock=vt.clock, sleep=vt.sleep)
    editor.set("progress")
    await started.wait()
    editor.set("final")
    flushing = asyncio.create_task(editor.flush())
    await asyncio.sleep(0)
    release.set()
    await flushing
    assert seen == ["progress", "final"]


async def test_aclose_drops_what_is_pending() -> None:
    vt = VirtualTime()
    edits = Edits(vt)
    editor = _editor(vt, edits)
    editor.set("never sent")
    await editor.aclose()
    await editor.flush()
    assert edits.calls == []


class Poster:
    def __init__(self, *, fail_post: bool = False) -> None:
        self.fail_post = fail_post
        self.calls: list[tuple[str, str]] = []

    async def post(self, channel: str, thread_ts: str | None, text: str, blocks: Any) -> str:
        self.calls.append(("post", text))
        if self.fail_post:
            raise RuntimeError("slack down")
        return "1.0"

    async def update(self, channel: str, ts: str, text: str, blocks: Any) -> None:
        assert ts == "1.0"
        self.calls.append(("update", text))


async def test_message_posts_once_and_never_resends_the_posted_state() -> None:
    vt = VirtualTime()
    poster = Poster()
    msg = ThrottledMessage(poster, channel="C1", thread_ts=None, clock=vt.clock, sleep=vt.sleep)
    await msg.set("a")
    await msg.set("a")
    await msg.close()
    assert poster.calls == [("post", "a")]
    await msg.set("b")
    await msg.close()
    assert poster.calls == [("post", "a"), ("update", "b")] and msg.failures == 0


async def test_message_post_failure_is_counted_and_later_states_are_dropped() -> None:
    vt = VirtualTime()
    poster = Poster(fail_post=True)
    msg = ThrottledMessage(poster, channel="C1", thread_ts=None, clock=vt.clock, sleep=vt.sleep)
    await msg.set("a")
    await msg.set("b")
    await msg.close()
    assert poster.calls == [("post", "a")] and msg.failures == 1
