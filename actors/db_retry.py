"""Retrying a database transaction that lost to a lock (SQLite under a burst).

SQLite has one writer at a time. When hundreds of runs finish at once on a busy 2-core node, a
transaction can wait longer than the connection's ``busy_timeout`` and fail with ``database is
locked``, even though nothing is wrong. The engine's state-changing transactions (claim, first
message, finish) are idempotent compare-and-set updates, so retrying them is safe: :func:`retry_locked`
re-runs the whole transaction with jittered backoff until ``total_s`` has passed. Any other error
(and a lock that persists past ``total_s``) propagates. PostgreSQL never raises this error.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

T = TypeVar("T")
TOTAL_S = 120.0


def is_locked(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) and "locked" in str(exc).lower()


async def retry_locked(op: Callable[[], Awaitable[T]], *, total_s: float = TOTAL_S) -> T:
    """Run ``op`` (a whole transaction), retrying while SQLite reports the database locked."""
    deadline = time.monotonic() + total_s
    delay = 0.05
    while True:
        try:
            return await op()
        except OperationalError as exc:
            if not is_locked(exc) or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay * (0.5 + random.random()))   # backoff before retrying the transaction
        delay = min(delay * 2, 2.0)
