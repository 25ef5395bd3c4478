"""Answer a finished run's RCA where its alert came from: the one entry point, :func:`answer_back`.

1. The run's trigger names an :class:`~incidentfox.contracts.AnswerTarget` (set by the gateway's
   parser), and the team's ``integrations.<source>.answer_back`` is true; otherwise nothing happens
   (Slack alone, as before).
2. The source's block is parsed (:mod:`config_service.integration_blocks`) and its module plans the
   writes (:mod:`.github`, :mod:`.pagerduty`, :mod:`.incidentio`); a missing key or a bad value is a
   ``bad_config`` outcome naming the path, and nothing is sent.
3. Each write is claimed in ``run_answers`` (:func:`incidentfox.runs.answers.claim_answer`): already
   ``posted`` → nothing is sent (a re-run of the finish step, a redelivery); else it is written,
   looking for an earlier post first whenever an earlier attempt may have reached the destination
   (a retried claim, or a retry after a 5xx or a rate limit). Transient errors are retried within
   :class:`~.http.Outbound`'s bounds. The outcome is recorded on the row.
4. Writes of one source run in order and stop at the first failure (PagerDuty's status change
   follows its note only).

Returns one :class:`AnswerOutcome` per destination. :func:`answer_run` is what a finished run
calls: the same, bounded in time, each outcome (or what stopped it) handed on as a run ``note``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actors.answerback import github, incidentio, pagerduty
from actors.answerback.http import AnswerError, Outbound, with_retries
from actors.answerback.markdown import rca_markdown
from actors.answerback.write import Write, parse_block
from config_service import GitHubBlock, IncidentIoBlock, PagerDutyBlock
from incidentfox.contracts import RCA, AnswerTarget
from incidentfox.runs.answers import claim_answer, record_answer
from incidentfox.runs.store import get_run
from incidentfox.sqlite_writer import retry_locked, write_lock

log = logging.getLogger(__name__)
T = TypeVar("T")
ANSWER_TIMEOUT_S = 120.0
Status = Literal["posted", "already_posted", "failed", "skipped"]
_SECRET_KEYS = ("token", "api_key", "private_key")
_BLOCKS = {"github": GitHubBlock, "pagerduty": PagerDutyBlock, "incidentio": IncidentIoBlock}


@dataclass(frozen=True)
class AnswerOutcome:
    destination: str            # github.comment | github.check_run | pagerduty.note | pagerduty.status |
                                # incidentio.update, or the source alone when nothing could be planned
    status: Status
    external_id: str | None = None
    reason: str = ""            # snake_case, for failed and skipped
    message: str = ""           # one line, secret-free

    def event(self) -> dict[str, Any]:
        """The run ``note`` event that records this outcome."""
        data: dict[str, Any] = {"answer_back": self.status, "destination": self.destination}
        if self.external_id:
            data["external_id"] = self.external_id
        if self.reason:
            data["reason"] = self.reason
        if self.message:
            data["message"] = self.message
        return data


def target_of(trigger: Mapping[str, Any]) -> AnswerTarget | None:
    """The trigger's AnswerTarget, only when it names the trigger's own source (the parser of that
    source's signed delivery is the only writer of one)."""
    raw = trigger.get("answer_to")
    if not isinstance(raw, Mapping):
        return None
    try:
        target = AnswerTarget.model_validate(raw)
    except ValidationError:
        return None
    return target if target.source == trigger.get("source") else None


def enabled(target: AnswerTarget | None, integrations: Mapping[str, Any]) -> bool:
    block = integrations.get(target.source) if target is not None else None
    return isinstance(block, Mapping) and block.get("answer_back") is True


async def answer_back(*, sessions: async_sessionmaker[AsyncSession], run_id: str, trigger: Mapping[str, Any],
                      integrations: Mapping[str, Any], rca: RCA, title: str = "", run_link: str | None = None,
                      since: datetime | None = None, out: Outbound | None = None,
                      routing: Mapping[str, Any]) -> list[AnswerOutcome]:
    """See the module docstring. ``routing``: the team's ``routing`` claims, required (a forgotten
    argument must not open the boundary): a GitHub
    answer goes only to a repository the team claims (:func:`.github.writes`), a PagerDuty one only
    to an incident of a service it claims (:func:`.pagerduty.writes`), an incident.io one only to an
    incident the router would give it (:func:`.incidentio.writes`)."""
    target = target_of(trigger)
    if target is None or not enabled(target, integrations):
        return []
    out = out or Outbound()
    raw = integrations[target.source]
    secrets = [str(raw[k]) for k in _SECRET_KEYS if isinstance(raw.get(k), str) and len(raw[k]) >= 4]
    try:
        block = parse_block(_BLOCKS[target.source], raw, name=target.source)
        text = rca_markdown(rca, run_id=run_id, title=title, run_link=run_link)
        plan = _plan(target, block, out=out, run_id=run_id, title=title, text=text, run_link=run_link, since=since,
                     routing=routing, foreign_claims=_foreign_claims(sessions, run_id))
    except AnswerError as exc:
        return [AnswerOutcome(target.source, "failed", reason=exc.reason, message=_scrub(exc.message, secrets))]
    outcomes: list[AnswerOutcome] = []
    for i, write in enumerate(plan):
        outcome = await _deliver(sessions, run_id, write, out, secrets)
        outcomes.append(outcome)
        if outcome.status in ("failed", "skipped"):
            outcomes += [AnswerOutcome(w.destination, "skipped", reason=f"{write.destination}_not_posted")
                         for w in plan[i + 1:]]
            break
    return outcomes


async def answer_run(*, note: Callable[[dict[str, Any]], None], timeout_s: float = ANSWER_TIMEOUT_S,
                     **kwargs: Any) -> None:
    """:func:`answer_back` (``kwargs``) for a finished run, within ``timeout_s``: each outcome's
    :meth:`AnswerOutcome.event` is passed to ``note``, and so is an error that stopped it
    (``{"answer_back": "error", "reason"}``); nothing is raised but cancellation."""
    run_id = kwargs.get("run_id")
    try:
        async with asyncio.timeout(timeout_s):
            outcomes = await answer_back(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the RCA stands in Slack and on the run whatever happens here
        log.warning("answering back for %s failed: %s", run_id, type(exc).__name__)
        note({"answer_back": "error", "reason": f"{type(exc).__name__}: {str(exc)[:300]}".rstrip(": ")})
        return
    for outcome in outcomes:
        note(outcome.event())


def _plan(target: AnswerTarget, block: Any, *, out: Outbound, run_id: str, title: str, text: str,
          run_link: str | None, since: datetime | None, routing: Mapping[str, Any],
          foreign_claims: incidentio.ForeignClaims | None = None) -> list[Write]:
    if target.source == "github":
        claimed = list(routing.get("github_repos") or [])
        return github.writes(target, block, out=out, run_id=run_id, title=title, text=text, run_link=run_link,
                             since=since, claimed=claimed)
    if target.source == "pagerduty":
        claimed = list(routing.get("pagerduty_service_ids") or [])
        return pagerduty.writes(target, block, out=out, run_id=run_id, text=text, claimed=claimed)
    return incidentio.writes(target, block, out=out, run_id=run_id, text=text, routing=routing,
                             foreign_claims=foreign_claims)


def _foreign_claims(sessions: async_sessionmaker[AsyncSession], run_id: str) -> incidentio.ForeignClaims:
    """Which of some routing claims teams other than the run's hold (the run gone: all of them)."""
    async def foreign(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        from config_service import foreign_claim_owners

        async with sessions() as session:
            run = await get_run(session, run_id)
            if run is None:
                return set(pairs)
            owners = await foreign_claim_owners(session, org_id=run.org_id, team_node_id=run.team_id, claims=pairs)
        return {(o["kind"], o["value"]) for o in owners}
    return foreign


async def _txn(sessions: async_sessionmaker[AsyncSession], fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def once() -> T:
        async with write_lock(sessions), sessions() as session:
            result = await fn(session)
            await session.commit()
            return result
    return await retry_locked(once)


async def _deliver(sessions: async_sessionmaker[AsyncSession], run_id: str, write: Write, out: Outbound,
                   secrets: list[str]) -> AnswerOutcome:
    dest = write.destination
    claim = await _txn(sessions, lambda s: claim_answer(s, run_id=run_id, destination=dest))
    if not claim.claimed:
        if claim.reason == "posted":
            return AnswerOutcome(dest, "already_posted", external_id=claim.external_id)
        return AnswerOutcome(dest, "skipped", reason=claim.reason)
    look = write.always_find or not claim.first

    async def once(_attempt: int) -> tuple[str, bool]:
        nonlocal look
        if look:
            found = await write.find()
            if found:
                return found, True
        look = True    # this post may reach the destination even if its answer is lost
        return await write.post(), False

    try:
        external_id, existed = await with_retries(out, once)
    except AnswerError as exc:
        reason, message = exc.reason, _scrub(exc.message, secrets)
        await _txn(sessions, lambda s: record_answer(s, run_id=run_id, destination=dest, status="failed",
                                                     error=f"{reason}: {message}"))
        return AnswerOutcome(dest, "failed", reason=reason, message=message)
    await _txn(sessions, lambda s: record_answer(s, run_id=run_id, destination=dest, status="posted",
                                                 external_id=external_id))
    return AnswerOutcome(dest, "already_posted" if existed else "posted", external_id=external_id)


def _scrub(message: str, secrets: list[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, "***")
    return message


__all__ = ["ANSWER_TIMEOUT_S", "AnswerOutcome", "answer_back", "answer_run", "enabled", "target_of"]
