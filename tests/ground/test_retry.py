"""The one retry policy (incidentfox.retry.backoff) and SQLite's locked-database retry built on it."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError
from tenacity import Retrying

from incidentfox.retry import backoff
from incidentfox.sqlite_writer import retry_locked


def _locked() -> OperationalError:
    return OperationalError("UPDATE runs", {}, Exception("database is locked"))


async def test_retry_locked_reruns_a_locked_transaction_and_nothing_else() -> None:
    calls: list[int] = []

    async def twice_locked() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _locked()
        return "done"

    assert await retry_locked(twice_locked) == "done" and len(calls) == 3
    calls.clear()
    assert await retry_locked(lambda: twice_locked()) == "done" and len(calls) == 3   # callers pass lambdas

    async def broken() -> None:
        calls.append(1)
        raise OperationalError("SELECT", {}, Exception("no such table: runs"))

    calls.clear()
    with pytest.raises(OperationalError, match="no such table"):
        await retry_locked(broken)
    assert len(calls) == 1


async def test_retry_locked_gives_up_with_the_lock_error_when_time_is_up() -> None:
    calls: list[int] = []

    async def always_locked() -> None:
        calls.append(1)
        raise _locked()

    with pytest.raises(OperationalError, match="locked"):
        await retry_locked(always_locked, total_s=0.01)   # the first wait would already end past it
    assert len(calls) == 1


def test_backoff_attempts_waits_and_hints() -> None:
    waits: list[float] = []
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        raise ValueError(f"try {len(calls)}")

    policy = backoff(retry_on=lambda e: isinstance(e, ValueError), attempts=4, first_s=1.0, max_s=3.0)
    with pytest.raises(ValueError, match="try 4"):   # the last error itself, not tenacity's RetryError
        Retrying(sleep=waits.append, **policy)(flaky)
    assert len(calls) == 4 and len(waits) == 3
    for wait, full in zip(waits, [1.0, 2.0, 3.0], strict=True):   # doubling, capped, jittered to [½, 1]
        assert full / 2 <= wait <= full

    waits.clear()
    hinted = backoff(retry_on=lambda e: True, attempts=2, max_s=3.0, wait_hint=lambda e: 99.0)
    with pytest.raises(ValueError):
        Retrying(sleep=waits.append, **hinted)(flaky)
    assert waits == [3.0]   # a hint is capped too

    calls.clear()
    refused = backoff(retry_on=lambda e: isinstance(e, KeyError), attempts=5)
    with pytest.raises(ValueError):
        Retrying(sleep=waits.append, **refused)(flaky)
    assert len(calls) == 1
