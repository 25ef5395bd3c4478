"""The intake's typed values: where a trigger goes (:class:`Route`), what it decided
(:class:`Decision`), what must happen after the commit (:class:`Dispatch`) and what the sender is
answered (:class:`IntakeResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from incidentfox.contracts import DeliveryOutcome


@dataclass(frozen=True)
class Route:
    """Where a trigger goes. ``stale`` means it came from the router's last good table while the
    config service was unreachable."""

    found: bool
    org_id: str | None = None
    team_id: str | None = None
    matched_by: str | None = None
    matched_value: str | None = None
    stale: bool = False
    # The org/team whose own secret verified the delivery (per-org webhook URL; None on the shared
    # URL): it may act only inside that scope.
    verified_org: str | None = None
    verified_team: str | None = None


class DispatchKind(StrEnum):
    SUBMIT = "submit"      # Runner.submit: a queued run to execute
    ATTACH = "attach"      # Runner.attach: context for a live run
    CANCEL = "cancel"      # Runner.cancel: stop a running run
    SANDBOX = "sandbox"    # SandboxRunner.submit: open a sandbox session or run its next turn
    POSTMORTEM = "postmortem"  # serve_apps.postmortem.post_postmortem: a draft into the run's thread
    REMEMBER = "remember"      # actors.engine.past_incidents.remember_run: the feedback into its past incident


@dataclass(frozen=True)
class Dispatch:
    """What a recorded delivery still needs done, after its transaction commits."""

    kind: DispatchKind
    run_id: str | None     # None for SANDBOX (the delivery itself is handed off)
    org_id: str
    team_id: str


@dataclass(frozen=True)
class Decision:
    """What a delivery does, decided inside the intake transaction."""

    outcome: DeliveryOutcome
    run_id: str | None = None
    dispatch: Dispatch | None = None
    detail: str = ""
    session_id: str | None = None   # the sandbox session a SANDBOX_CONTINUED reply goes to
    team_id: str | None = None      # overrides the route's team (a sandbox session's own team)
    action_id: str | None = None    # a proposed fix this interaction approved: run it after the commit


@dataclass(frozen=True)
class IntakeResult:
    delivery_pk: int
    outcome: DeliveryOutcome
    run_id: str | None
    duplicate: bool = False
    dispatch: Dispatch | None = None
    detail: str = ""
    session_id: str | None = None
    action_id: str | None = None    # see Decision.action_id (never re-sent for a duplicate)

    def response(self) -> dict[str, Any]:
        """The sender's 200 body."""
        body: dict[str, Any] = {"ok": True, "run_id": self.run_id, "outcome": self.outcome.value}
        if self.session_id:
            body["session_id"] = self.session_id
        if self.duplicate:
            body["duplicate"] = True
        return body

    def as_duplicate(self) -> IntakeResult:
        """This (first) delivery's answer to a later copy of it: nothing to dispatch again."""
        return IntakeResult(delivery_pk=self.delivery_pk, outcome=self.outcome, run_id=self.run_id,
                            duplicate=True, session_id=self.session_id)
