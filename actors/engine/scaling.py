"""How many investigation actors a placement key has, and which one takes the next run.

Pure policy (no Ray, no I/O) over the pool's :class:`Member` records: :func:`pick` chooses the
least-loaded actor with a free slot and asks for a new actor before that one is half full (within
``max_actors``); :func:`idle_to_stop` names the actors idle longer than ``idle_s`` that can stop
without going under ``min_actors``. The pool starts and stops the actors these decisions name.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Member:
    """One investigation actor as the pool tracks it."""

    name: str
    handle: Any
    load: int = 0                    # runs dispatched to it and not yet finished
    idle_since: float = field(default_factory=time.monotonic)
    draining: bool = False


@dataclass(frozen=True)
class Pick:
    """Where the next run goes: ``member``, or a new actor (``grow``), or nowhere yet (both unset:
    every actor is full and the pool is at ``max_actors``)."""

    member: Member | None = None
    grow: bool = False


def pick(members: Sequence[Member], *, max_concurrency: int, max_actors: int) -> Pick:
    live = [m for m in members if not m.draining]
    free = [m for m in live if m.load < max_concurrency]
    if free:
        best = min(free, key=lambda m: m.load)
        # Grow before the least-loaded actor is more than half full, while within bounds.
        if best.load >= max_concurrency // 2 and len(live) < max_actors:
            return Pick(grow=True)
        return Pick(member=best)
    if len(live) < max_actors:
        return Pick(grow=True)
    return Pick()


def idle_to_stop(members: Sequence[Member], *, now: float, idle_s: float, min_actors: int) -> list[Member]:
    """The actors to stop: idle (no load) for longer than ``idle_s``, keeping at least ``min_actors``."""
    idle = [m for m in members if m.load == 0 and now - m.idle_since > idle_s]
    spare = max(0, len(members) - min_actors)
    return idle[len(idle) - min(spare, len(idle)):][::-1]
