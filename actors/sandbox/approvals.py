"""Approval of mutating MCP tool calls in a sandbox session: nothing an MCP server changes runs
without a yes from one of the team's approvers, as for the engine's mutating tools
(:mod:`actors.engine.approvals`).

* **Which calls.** :func:`is_read_only` classifies each MCP tool once, when the turn connects: the
  server's annotations decide when they say anything (``readOnlyHint: true`` → read-only;
  ``readOnlyHint: false`` or ``destructiveHint: true`` → mutating, whatever the team says); a tool
  the server does not annotate is mutating unless the team lists it in ``sandbox.mcp_read_only``
  (``"<server>/<tool>"`` or ``"<server>/*"``).
* **Waiting.** A mutating call asks the session's :class:`SessionApprovals` gate: an ``approval``
  event (``status: pending``) goes to the API stream and the Slack mirror ("awaiting approval"), and
  the call waits, up to ``approval_timeout_s``, for :meth:`SessionApprovals.decide`. Approved: the
  call runs. Denied or expired: the model gets an ``is_error`` tool result saying so (and not to
  retry without asking). An interrupt cancels the wait like any tool.
* **Who decides** (checked by the caller of ``decide``, :mod:`actors.sandbox.access`): in Slack, a
  reply ``approve <id>`` / ``deny <id>`` in the session's thread from a user listed in
  ``access.approvers`` (directly or through a user group); over the API, ``POST
  /sessions/{id}/approvals/{approval_id}`` by the global admin or the org's admin, or a team token
  when ``access.api_approvals`` is true (a team token is a shared machine credential).

The pending approvals live in the hosting process: a host that dies loses them along with the turn
that waited (its ``tool_use`` gets an "interrupted" result when the session resumes).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from actors.sandbox.events import SandboxEvent, approval
from incidentfox.mcp_allowlist import is_read_only  # noqa: F401 - one classification, re-exported


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass
class Pending:
    id: str
    tool: str
    input: dict[str, Any]
    future: asyncio.Future[tuple[ApprovalStatus, str]] = field(repr=False)

    def view(self) -> dict[str, Any]:
        return {"approval_id": self.id, "tool": self.tool, "input": self.input, "status": "pending"}


@dataclass(frozen=True)
class Verdict:
    status: ApprovalStatus
    by: str = ""

    def refusal(self, tool: str) -> str | None:
        """The tool error the model reads, or None when the call may run."""
        if self.status is ApprovalStatus.APPROVED:
            return None
        if self.status is ApprovalStatus.DENIED:
            return (f"The call to {tool} was denied by an approver ({self.by}). It changes things outside "
                    "the sandbox; do not retry it unless the user asks you to.")
        return (f"The call to {tool} needs an approval and none came in time; it did not run. Ask the "
                "user to have an approver ready, then try again.")


class SessionApprovals:
    """The approval gate of one session (in its host)."""

    def __init__(self, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._pending: dict[str, Pending] = {}

    def pending(self) -> list[dict[str, Any]]:
        return [p.view() for p in self._pending.values()]

    async def request(self, tool: str, tool_input: dict[str, Any],
                      publish: Callable[[SandboxEvent], None]) -> Verdict:
        """Announce a pending approval and wait for a decision (bounded by :attr:`timeout_s`)."""
        pending = Pending(id="sapr_" + secrets.token_hex(8), tool=tool, input=tool_input,
                          future=asyncio.get_running_loop().create_future())
        self._pending[pending.id] = pending
        publish(approval(pending.id, tool, tool_input, ApprovalStatus.PENDING.value))
        try:
            status, by = await asyncio.wait_for(asyncio.shield(pending.future), self.timeout_s)
        except TimeoutError:
            status, by = ApprovalStatus.EXPIRED, ""
        finally:
            self._pending.pop(pending.id, None)
        publish(approval(pending.id, tool, tool_input, status.value, by=by))
        return Verdict(status, by)

    def decide(self, approval_id: str, *, approve: bool, by: str) -> bool:
        """pending → approved | denied; False if ``approval_id`` is not pending here."""
        pending = self._pending.get(approval_id)
        if pending is None or pending.future.done():
            return False
        pending.future.set_result((ApprovalStatus.APPROVED if approve else ApprovalStatus.DENIED, by[:128]))
        return True


def parse_decision(text: str) -> tuple[bool, str] | None:
    """A Slack reply ``approve sapr_…`` / ``deny sapr_…`` → (approve, approval id); else None."""
    words = text.strip().split()
    # Slack prefixes a mention of the bot when the reply addresses it: skip leading mentions.
    while words and words[0].startswith("<@"):
        words.pop(0)
    if len(words) != 2 or words[0].lower() not in ("approve", "deny") or not words[1].startswith("sapr_"):
        return None
    return words[0].lower() == "approve", words[1][:64]
