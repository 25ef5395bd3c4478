"""Small helpers for awaiting Ray work from async code without leaking it.

Awaiting an ``ObjectRef`` and then being cancelled (a run cancelled, a deadline passed) does not stop
the remote task by itself. :func:`await_ref` does: on cancellation or timeout it calls ``ray.cancel``
on the ref (which raises ``CancelledError`` inside an async actor method) and then re-raises, so
cancelling a run really stops its sub-agents and their tool calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray


async def await_ref(ref: ray.ObjectRef, *, timeout: float | None) -> Any:
    """``await ref`` bounded by ``timeout``; the remote task is cancelled if we stop waiting."""
    try:
        async with asyncio.timeout(timeout):
            return await ref
    except (asyncio.CancelledError, TimeoutError):
        ray.cancel(ref)
        raise


def is_actor_gone(exc: BaseException) -> bool:
    """True for the errors Ray raises when the actor serving a call died or is unreachable."""
    return isinstance(exc, (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError))
