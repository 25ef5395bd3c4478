"""Throttled edits of one Slack message: the single implementation the run reporter and the
sandbox mirror both use.

:class:`ThrottledEditor` keeps the edits of one posted message at least ``min_interval_s``
(:data:`MIN_INTERVAL_S`, 0.5 s) apart: :meth:`~ThrottledEditor.set` records the latest state and a
background task delivers it once the interval has passed, so changes in between are coalesced;
:meth:`~ThrottledEditor.flush` delivers the latest state itself (waiting out the interval) and raises
if that edit fails, so the final state is never lost silently. Background edit failures are logged
and counted (:attr:`~ThrottledEditor.failures`), never raised into the caller.

:class:`ThrottledMessage` adds posting on first use over a :class:`actors.slack.client.Reporter`
and never raises: the shape a mirror of progress wants.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from actors.slack.client import Reporter

log = logging.getLogger("incidentfox.slack.throttle")

MIN_INTERVAL_S = 0.5
CALL_TIMEOUT_S = 10.0
MAX_TEXT = 2900   # Slack caps a section's text at 3,000 characters
Blocks = list[dict[str, Any]] | None
Edit = Callable[[str, Blocks], Awaitable[None]]


class ThrottledEditor:
    """Coalesced, spaced edits of one message through ``edit(text, blocks)``.

    ``last_edit_at`` is when the message was last written (its post), on ``clock``'s scale.
    """

    def __init__(self, edit: Edit, *, min_interval_s: float = MIN_INTERVAL_S, last_edit_at: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._edit = edit
        self.min_interval_s = min_interval_s
        self._clock, self._sleep = clock, sleep
        self._last = float("-inf") if last_edit_at is None else last_edit_at
        self._pending: tuple[str, Blocks] | None = None
        self._task: asyncio.Task[None] | None = None
        self._editing = False
        self._stopping = False
        self.failures = 0

    def set(self, text: str, blocks: Blocks = None) -> None:
        """Make ``text``/``blocks`` the message's next state (delivered in the background)."""
        self._pending = (text, blocks)
        if not self._stopping and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._drain())

    async def flush(self) -> None:
        """Deliver the latest state now, after the interval; raises if that edit fails.

        A background edit already on the wire is awaited (its state is older), a background wait is
        cancelled, then the pending state, if any, is written by this call.
        """
        task = self._task
        self._stopping = True
        try:
            if task is not None and not task.done():
                if not self._editing:
                    task.cancel()
                # Wait for it to stop without swallowing a cancel of *this* task.
                await asyncio.wait([task])
            if self._pending is not None:
                await self._deliver()
        finally:
            self._stopping = False

    async def aclose(self) -> None:
        """Drop any pending state and stop the background task."""
        self._pending = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task])

    async def _drain(self) -> None:
        while self._pending is not None and not self._stopping:
            try:
                await self._deliver()
            except Exception as exc:  # noqa: BLE001 - a progress edit failing must not fail the caller
                self.failures += 1
                log.warning("slack edit failed: %s", type(exc).__name__)

    async def _deliver(self) -> None:
        delay = self._last + self.min_interval_s - self._clock()
        if delay > 0:
            await self._sleep(delay)   # rate limiting, not synchronisation
        if self._pending is None:
            return
        (text, blocks), self._pending = self._pending, None
        self._editing = True
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                await self._edit(text, blocks)
        finally:
            self._editing = False
            self._last = self._clock()


class ThrottledMessage:
    """One Slack message, posted on first :meth:`set` and then edited through a :class:`ThrottledEditor`.

    Slack failures are logged and counted (:attr:`failures`), never raised: a post that fails is not
    retried, and later states are dropped.
    """

    def __init__(self, reporter: Reporter, *, channel: str, thread_ts: str | None,
                 min_interval_s: float = MIN_INTERVAL_S, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.reporter, self.channel, self.thread_ts = reporter, channel, thread_ts
        self.min_interval_s = min_interval_s
        self._clock, self._sleep = clock, sleep
        self.ts: str | None = None
        self._state: tuple[str, Blocks] = ("", None)
        self._given: tuple[str, Blocks] | None = None   # the state last posted or handed to the editor
        self._posting: asyncio.Future[None] | None = None
        self._editor: ThrottledEditor | None = None
        self._post_failures = 0

    @property
    def failures(self) -> int:
        return self._post_failures + (self._editor.failures if self._editor else 0)

    async def set(self, text: str, blocks: Blocks = None) -> None:
        """Make ``text`` the message's next state; posts the message on first use."""
        self._state = (text[:MAX_TEXT], blocks)
        if self._posting is None:
            self._posting = asyncio.ensure_future(self._post())
        await self._posting
        if self._editor is not None and self._state != self._given:
            self._given = self._state
            self._editor.set(*self._state)

    async def close(self) -> None:
        """Deliver the last state (waiting out the interval) and stop; never raises."""
        if self._posting is not None:
            await self._posting
        if self._editor is None:
            return
        try:
            await self._editor.flush()
        except Exception as exc:  # noqa: BLE001 - Slack trouble must not fail the caller
            self._editor.failures += 1
            log.warning("slack edit failed: %s", type(exc).__name__)

    async def _post(self) -> None:
        text, blocks = self._state
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                self.ts = await self.reporter.post(self.channel, self.thread_ts, text, blocks)
        except Exception as exc:  # noqa: BLE001 - Slack trouble must not fail the caller
            self._post_failures += 1
            log.warning("slack post failed: %s", type(exc).__name__)
            return
        ts, self._given = self.ts, (text, blocks)

        async def edit(text: str, blocks: Blocks) -> None:
            await self.reporter.update(self.channel, ts, text, blocks)
        self._editor = ThrottledEditor(edit, min_interval_s=self.min_interval_s, last_edit_at=self._clock(),
                                       clock=self._clock, sleep=self._sleep)

