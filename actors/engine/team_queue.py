"""Fair dispatch across teams: per-team FIFO queues, per-team concurrency limits, round-robin.

The pool keeps one :class:`FairQueue` per placement key (``shared`` or a dedicated team's resource).
A team's queued run is handed out only while fewer than its ``quotas.max_concurrent_runs`` of that
group's runs are dispatched and not yet finished; teams with a dispatchable run are served in turn,
so one team's burst waits in its own queue while other teams' runs start. Pure (no Ray, no I/O):
the pool calls :meth:`push` on submit, :meth:`pop` when an actor has a free slot and
:meth:`release` when a dispatched run ends.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")
Team = tuple[str, str]   # (org_id, team_id)


class FairQueue(Generic[T]):
    """Round-robin over teams with queued work; a team at its limit is skipped until a run ends."""

    def __init__(self) -> None:
        self._queues: dict[Team, deque[T]] = {}
        self._turns: deque[Team] = deque()       # teams with queued work, in serving order
        self._running: dict[Team, int] = {}
        self._limits: dict[Team, int] = {}

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def push(self, item: T, *, team: Team, limit: int) -> None:
        """Queue ``item`` for ``team``; ``limit`` (≥ 1) is the team's current quota (latest wins)."""
        self._limits[team] = max(1, int(limit))
        queue = self._queues.setdefault(team, deque())
        if not queue:
            self._turns.append(team)
        queue.append(item)

    def _eligible(self, team: Team) -> bool:
        return bool(self._queues.get(team)) and self._running.get(team, 0) < self._limits.get(team, 1)

    def ready(self) -> bool:
        """Whether :meth:`pop` would return an item."""
        return any(self._eligible(t) for t in self._turns)

    def pop(self) -> T | None:
        """The next team's oldest item (counted as running), or None when every team is at its limit."""
        for _ in range(len(self._turns)):
            team = self._turns[0]
            self._turns.rotate(-1)               # the next call starts with the following team
            if not self._eligible(team):
                continue
            queue = self._queues[team]
            item = queue.popleft()
            self._running[team] = self._running.get(team, 0) + 1
            if not queue:
                self._turns.remove(team)
                del self._queues[team]
            return item
        return None

    def release(self, team: Team) -> None:
        """A dispatched run of ``team`` ended (whatever its outcome)."""
        left = self._running.get(team, 0) - 1
        if left > 0:
            self._running[team] = left
        else:
            self._running.pop(team, None)

    def running(self, team: Team) -> int:
        return self._running.get(team, 0)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{"org/team": {"running", "queued", "limit"}}`` for stats."""
        teams = set(self._running) | set(self._queues)
        return {f"{o}/{t}": {"running": self._running.get((o, t), 0), "queued": len(self._queues.get((o, t), ())),
                             "limit": self._limits.get((o, t), 0)} for o, t in sorted(teams)}
