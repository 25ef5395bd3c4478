"""The engine's typed outcomes: how a hosted run ended, and where a sub-agent stands.

Both are ``StrEnum`` s whose values are the strings stored in ``run_events`` and shown in Slack,
so JSON and database rows read exactly as before; code compares members, never bare strings.
"""

from __future__ import annotations

from enum import StrEnum

from incidentfox.contracts import RunStatus


class RunOutcome(StrEnum):
    """What :func:`actors.engine.investigation.investigate` (and the actor's ``run``) returns.

    ``succeeded`` / ``failed`` are the terminal statuses this actor wrote; the others wrote none:
    the run was not claimable, had vanished, or another writer (a cancel, the recovery sweep) moved
    it first. A cancelled run raises ``CancelledError`` instead of returning.
    """

    SUCCEEDED = RunStatus.SUCCEEDED.value
    FAILED = RunStatus.FAILED.value
    NOT_CLAIMED = "not_claimed"   # another actor claimed it, or it was cancelled while queued
    MISSING = "missing"           # no such run row
    LOST_RACE = "lost_race"       # the run finished, but another writer set its status first

    @property
    def status(self) -> RunStatus | None:
        """The terminal status this outcome wrote, if it wrote one."""
        return RunStatus(self.value) if self in (RunOutcome.SUCCEEDED, RunOutcome.FAILED) else None


class SubAgentStatus(StrEnum):
    """A sub-agent's state, in ``agent`` run events, progress callbacks and the Slack progress lines."""

    RUNNING = "running"
    OK = "ok"               # it ran and at least one tool call (or none needed) succeeded
    FAILED = "failed"       # every tool call failed, or its worker call raised
    SKIPPED = "skipped"     # no tool of the sub-agent is allowed for the team
    TIMEOUT = "timeout"     # the run's deadline passed before it finished
    CANCELLED = "cancelled"  # the run was cancelled while it ran

    @property
    def unsuccessful(self) -> bool:
        """Whether the sub-agent produced nothing usable (the planner is told it failed)."""
        return self in (SubAgentStatus.FAILED, SubAgentStatus.TIMEOUT)
