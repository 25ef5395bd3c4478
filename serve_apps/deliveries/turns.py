"""A human message in the thread of the routed team's run: a turn of that investigation.

Called by :func:`serve_apps.deliveries.decide.decide` once the thread's run is known and in scope
(:mod:`incidentfox.runs.turns` has the model):

* a Slack author who is not a responder (``access.responders``): recorded on the run as refused,
  nothing else (an API request in the thread was authorised by its token);
* the same Slack message again (another event id for one message): the first turn's answer, also
  when it lands on the run the first copy started (a first mention's run, or a follow-up: that
  run's trigger is the message);
* the run is active: recorded (``redirect``) and handed to the live run (``ATTACH``);
* the run ended: a follow-up run, bound to the same thread with ``parent_run_id``, is started
  (``SUBMIT``); the parent records the turn and the follow-up's id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.contracts import DeliveryOutcome, RunStatus, Trigger
from incidentfox.runs import store
from incidentfox.runs.models import Run
from incidentfox.runs.turns import seen, turn_entry
from serve_apps.deliveries.model import Decision, Dispatch, DispatchKind

O = DeliveryOutcome
# The event kind of a follow-up run's trigger (its text is the reply).
FOLLOW_UP_KIND = "thread_reply"


async def thread_turn(session: AsyncSession, *, run: Run, trigger: Trigger, now: datetime) -> Decision:
    from actors.engine.responders import ResponderVerdict, authorize_turn

    first = next((t for t in run.turns or [] if seen([t], trigger)), None)
    if first is None and _started_by(run, trigger):
        first = {"mode": "follow_up", "follow_up_run_id": run.id}
    if first is not None:   # one Slack message, delivered again under another event id
        return _again(first, run)
    thread = trigger.thread
    # A Slack author is checked against access.responders; an API request was authorised by its token.
    verdict = ResponderVerdict.ALLOWED if trigger.source != "slack" else await authorize_turn(
        session, org_id=run.org_id, team_id=run.team_id, user=trigger.actor,
        channel=thread.channel if thread else None, thread_ts=thread.ts if thread else None)
    if verdict is not ResponderVerdict.ALLOWED:
        await store.add_turn(session, run_id=run.id,
                             entry=turn_entry(trigger, mode="refused", at=now, reason=verdict.value))
        return Decision(O.REJECTED, run.id, detail="not a responder (team config access.responders)")
    if not RunStatus(run.status).terminal:
        await store.add_turn(session, run_id=run.id, entry=turn_entry(trigger, mode="redirect", at=now))
        return Decision(O.CONTINUED, run.id, Dispatch(DispatchKind.ATTACH, run.id, run.org_id, run.team_id))
    reply = trigger.model_copy(update={"event_kind": FOLLOW_UP_KIND, "title": _title(trigger)})
    child = await store.create_run(session, org_id=run.org_id, team_id=run.team_id, trigger=reply,
                                   kind=run.kind, parent_run_id=run.id, deadline_s=run.deadline_s)
    await store.append_event(session, run_id=child.id, kind="status",
                             data={"status": "queued", "source": trigger.source, "follow_up_of": run.id,
                                   "by": trigger.actor})
    await store.add_turn(session, run_id=run.id,
                         entry=turn_entry(trigger, mode="follow_up", at=now, follow_up_run_id=child.id))
    return Decision(O.ACCEPTED, child.id, Dispatch(DispatchKind.SUBMIT, child.id, child.org_id, child.team_id),
                    detail="follow_up")


def _started_by(run: Run, trigger: Trigger) -> bool:
    """Whether ``trigger``'s message started ``run`` (a mention that opened the thread's first run, or
    a reply that started a follow-up): the thread's latest run, which a later copy of the message
    (another event id) finds, must not take it as a turn."""
    if not run.trigger:
        return False
    return seen([turn_entry(Trigger.model_validate(run.trigger), mode="follow_up", at=run.created_at)], trigger)


def _again(first: dict, run: Run) -> Decision:
    """The answer to a message already recorded as a turn: what the first copy did, nothing new."""
    mode = first.get("mode")
    outcome = {"redirect": O.CONTINUED, "follow_up": O.ACCEPTED}.get(mode, O.REJECTED)
    return Decision(outcome, first.get("follow_up_run_id") or run.id, detail="turn already recorded")


def _title(trigger: Trigger) -> str:
    first = (trigger.text or trigger.title).strip().splitlines()
    return f"Follow-up: {first[0][:180]}" if first else "Follow-up"
