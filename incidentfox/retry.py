"""The platform's one retry policy, as keyword arguments for tenacity.

``Retrying(**backoff(...))`` / ``AsyncRetrying(**backoff(...))``: retry the errors ``retry_on``
accepts, waiting ``first_s``, ``2·first_s``, ``4·first_s`` … (at most ``max_s``), each scaled by a
random factor in [0.5, 1] so that contending callers spread out. ``wait_hint`` may name the wait for
one error instead (an upstream's ``Retry-After``, or 0 to retry at once); it is capped by ``max_s``
too. Retrying stops after ``attempts`` calls, or before a wait that would end ``within_s`` after the
first call, whichever comes first; then the last error is re-raised as it was (never tenacity's
``RetryError``). Errors ``retry_on`` refuses, and cancellation, propagate at once.

With ``AsyncRetrying`` pass an ``async def`` (or a bound async method): tenacity calls anything else
as a plain function, so ``lambda: coro()`` would hand back an unawaited coroutine as the result.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from tenacity import (
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
    stop_never,
)


def backoff(*, retry_on: Callable[[BaseException], bool], attempts: int | None = None,
            within_s: float | None = None, first_s: float = 0.05, max_s: float = 2.0,
            wait_hint: Callable[[BaseException], float | None] | None = None) -> dict[str, Any]:
    """tenacity arguments for the policy above (``retry``, ``stop``, ``wait``, ``reraise``)."""
    stops = ([stop_after_attempt(attempts)] if attempts is not None else []) + \
            ([stop_before_delay(within_s)] if within_s is not None else [])

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        hint = wait_hint(exc) if wait_hint is not None and exc is not None else None
        if hint is not None:
            return min(max_s, max(0.0, hint))
        return min(max_s, first_s * 2 ** (state.attempt_number - 1)) * random.uniform(0.5, 1.0)

    return {"retry": retry_if_exception(retry_on), "stop": stop_any(*stops) if stops else stop_never,
            "wait": wait, "reraise": True}
