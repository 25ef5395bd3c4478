"""Background tasks a request starts and does not await (dispatches, sandbox turns).

asyncio keeps only weak references to tasks, so a fire-and-forget task must be held somewhere until
it ends; :class:`BackgroundTasks` is that place, and :meth:`drain` waits for them (tests, graceful
shutdown), including tasks started by tasks it was already waiting for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout_s: float) -> None:
        """Wait until no task is left (each round bounded by ``timeout_s``); errors are the tasks' own."""
        while self._tasks:
            await asyncio.wait_for(asyncio.gather(*list(self._tasks), return_exceptions=True), timeout_s)
