"""What a verified, routed delivery does: :func:`decide`, inside the intake transaction.

The rules, in order:

* a Slack button (INTERACTION) acts on the run it names (rerun, cancel, feedback, approve/deny);
* ``/incidentfox sandbox …`` routed to a team opens a sandbox session; a human Slack message in the
  thread of an *active* sandbox session of the routed team continues it (both handed to the sandbox
  side after the commit; the same message again under another event id is recorded, not handed
  over twice); one routed to any other team (or nowhere) is refused like a reply in
  another team's run thread. A thread has one owner, whether a run or a sandbox session bound it
  first (:func:`actors.sandbox.threads.thread_owner`): a session in a thread another team owns is
  not continued, and no run is bound to a thread another team's session (even an ended one) owns;
* a human message in the thread of the routed team's run is a turn of it (:mod:`.turns`): it steers
  the run while it is active and starts a linked follow-up run after it ended; an alert on a service
  (or fingerprint) with an active run in the correlation window is absorbed into it;
* change events are recorded for correlation (the merge of a revert pull request IncidentFox opened
  is also recorded on its proposed fix, :mod:`actors.engine.revert_merge`); unrouted events are recorded as such; ack/resolve
  updates the run of the alert's fingerprint;
* anything else routed starts a run.

What serialises concurrent deliveries (on PostgreSQL each is its own transaction; on SQLite the
transaction holds the one write lock from its delivery insert on, so these are no-ops there):

* a delivery in a Slack thread locks the thread (:func:`actors.sandbox.threads.lock_thread`) before
  it reads the thread's owner: two first mentions at once start one run (the second is a turn of
  it), and a run and a sandbox session never both bind a fresh thread for two teams;
* a thread turn locks the thread's latest run (:func:`_latest_locked`) before it reads
  ``runs.turns``: one reply delivered under two event ids is a turn once, and starts at most
  one follow-up; replies at once are all recorded, in some order, as if sent one after another;
* an alert locks its team's correlation keys (:func:`incidentfox.runs.locks.lock_names`) before it
  looks for a run to join, so a storm starts one run and every other alert is absorbed into it
  (``store.absorb`` locks that run's row).

A transaction takes its thread's lock, then its correlation locks (ascending), before any run row
lock, and a thread's runs oldest first; no path takes them in another order, so these locks never
deadlock.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from actors.sandbox.store import active_session_by_thread
from actors.sandbox.threads import lock_thread, thread_owner
from incidentfox.contracts import DeliveryOutcome, RunStatus, Trigger, TriggerAction
from incidentfox.runs import store
from incidentfox.runs.locks import correlation_lock_names, lock_names
from incidentfox.runs.models import CORRELATION_KEY_MAX, Delivery, Run, RunEvent
from incidentfox.runs.turns import message_ts
from serve_apps.deliveries.model import Decision, Dispatch, DispatchKind, Route
from serve_apps.deliveries.turns import thread_turn
from serve_apps.webhooks.scope import refusal

O = DeliveryOutcome
# The event kind serve_apps.webhooks.slack gives `/incidentfox sandbox <question>`.
SANDBOX_EVENT_KIND = "sandbox"
# How far back a copy of a Slack message continuing a sandbox session is recognised (Slack sends
# its copies within seconds; retries within minutes).
SANDBOX_SEEN_WINDOW = timedelta(hours=1)


def _key(kind: str, value: str) -> str:
    """``kind:value``, or ``kind:sha256:<digest>`` when that would not fit ``runs.correlation_key``:
    Alertmanager's group keys grow with every ``group_by`` label, and a service label has no limit."""
    key = f"{kind}:{value}"
    if len(key) <= CORRELATION_KEY_MAX:
        return key
    return f"{kind}:sha256:{hashlib.sha256(value.encode()).hexdigest()}"


def correlation_key(trigger: Trigger) -> str | None:
    # Service first: an alert storm on one service has many fingerprints but one service.
    if trigger.services:
        return _key("service", trigger.services[0].lower())
    if trigger.fingerprint:
        return _key("fp", trigger.fingerprint)
    return None


def _correlation_keys(trigger: Trigger) -> list[str]:
    keys = [_key("service", s.lower()) for s in trigger.services if s]
    if trigger.fingerprint:
        keys.append(_key("fp", trigger.fingerprint))
    return keys


def is_sandbox_command(trigger: Trigger) -> bool:
    return trigger.action is TriggerAction.START and trigger.event_kind == SANDBOX_EVENT_KIND


def may_continue_sandbox(trigger: Trigger) -> bool:
    """Whether ``trigger`` is the kind of message that continues a sandbox session in its thread."""
    thread = trigger.thread
    return (trigger.source == "slack" and trigger.human and thread is not None and bool(thread.ts)
            and trigger.action in (TriggerAction.CONTINUE, TriggerAction.START))


async def decide(session: AsyncSession, *, trigger: Trigger, route: Route, window_s: float,
                 now: datetime) -> Decision:
    """Decide what ``trigger`` does and write it (run, events), in the caller's transaction."""
    action = trigger.action
    if action is TriggerAction.INTERACTION:
        return await _interaction(session, trigger=trigger, route=route)
    if trigger.thread is not None and trigger.thread.ts:   # before reading the thread's owner
        await lock_thread(session, channel=trigger.thread.channel, thread_ts=trigger.thread.ts)
    sandbox = await _sandbox(session, trigger=trigger, route=route, now=now)
    if sandbox is not None:
        return sandbox
    if action is TriggerAction.CONTINUE or (action is TriggerAction.START and trigger.human
                                           and trigger.thread and trigger.thread.ts):
        run, foreign = await _thread_run(session, trigger=trigger, route=route)
        if foreign:
            # Another team's thread: no note, no attach, no new run bound to it, no id in the answer.
            if action is TriggerAction.CONTINUE:
                return Decision(O.UNMATCHED, detail="no active run in this thread")
            return Decision(O.REJECTED, detail="the thread belongs to another team")
        if run is not None and route.verified_org and refusal(
                scope_org=route.verified_org, scope_team=route.verified_team, run_org=run.org_id,
                run_team=run.team_id) is not None:
            run = None   # a thread of another org (or team) than the signed one: never joined
        if run is not None:
            # A turn of the thread's investigation: steers it while it runs, follows it up after.
            return await thread_turn(session, run=run, trigger=trigger, now=now)
        if action is TriggerAction.CONTINUE:
            return Decision(O.UNMATCHED, detail="no run in this thread")
    if action is TriggerAction.RECORD:
        # A merged revert pull request IncidentFox opened: recorded on its action once; the gateway
        # posts it into the run's thread after the commit (actors/engine/revert_merge.py).
        from actors.engine.revert_merge import record_merge

        merged = await record_merge(session, trigger=trigger, org_id=route.org_id if route.found else None,
                                    team_id=route.team_id if route.found else None)
        if merged is not None:
            return Decision(O.RECORDED, merged.run_id, detail="revert merged", action_id=merged.action_id)
        return Decision(O.RECORDED)
    if not route.found or not route.org_id or not route.team_id:
        return Decision(O.UNROUTED, detail="no team claims this event's identifiers")
    if action is TriggerAction.UPDATE:
        return await _update(session, trigger=trigger, route=route, now=now)
    # START
    if trigger.is_alert and not trigger.human and window_s > 0:   # 0: the team turned correlation off
        run = await _correlate(session, trigger=trigger, route=route, window_s=window_s, now=now)
        if run is not None:
            return Decision(O.CORRELATED, run.id, Dispatch(DispatchKind.ATTACH, run.id, run.org_id, run.team_id))
    run = await store.create_run(session, org_id=route.org_id, team_id=route.team_id, trigger=trigger,
                                 correlation_key=correlation_key(trigger) if trigger.is_alert else None)
    # A run created in this transaction has no events yet: its first is seq 1 (no max(seq) read).
    session.add(RunEvent(run_id=run.id, seq=1, kind="status", at=now,
                         data={"status": "queued", "source": trigger.source,
                               "route": {"matched_by": route.matched_by, "stale": route.stale}}))
    return Decision(O.ACCEPTED, run.id, Dispatch(DispatchKind.SUBMIT, run.id, run.org_id, run.team_id))


async def _correlate(session: AsyncSession, *, trigger: Trigger, route: Route, window_s: float,
                     now: datetime) -> Run | None:
    """Absorb the alert into the team's active run for one of its keys, or return None (the caller
    starts a run, under the same locks). Locks every key the alert reads, and the one its own run
    would be stored under, until the commit: a concurrent alert sharing any waits for this one."""
    keys = _correlation_keys(trigger)
    await lock_names(session, correlation_lock_names(org_id=route.org_id, team_id=route.team_id,
                                                     keys=[*keys, correlation_key(trigger) or ""]))
    # A run that ended after it was found is skipped (a terminal run never turns active again).
    while (run := await store.find_correlated(session, org_id=route.org_id, team_id=route.team_id,
                                              keys=keys, window_s=window_s, now=now)) is not None:
        if await store.absorb(session, run_id=run.id, trigger=trigger):
            return run
    return None


async def _sandbox(session: AsyncSession, *, trigger: Trigger, route: Route, now: datetime) -> Decision | None:
    """A sandbox open or turn, or None for anything that is not sandbox traffic. An unrouted sandbox
    command is not: it is recorded ``unrouted`` like any other unrouted event."""
    routed = route.found and bool(route.org_id) and bool(route.team_id)
    if is_sandbox_command(trigger):
        if not routed or trigger.thread is None:
            return None
        return Decision(O.SANDBOX_OPENED,
                        dispatch=Dispatch(DispatchKind.SANDBOX, None, route.org_id, route.team_id))
    if not may_continue_sandbox(trigger):
        return None
    thread = trigger.thread
    found = await active_session_by_thread(session, channel=thread.channel, thread_ts=thread.ts)
    if found is None:
        return None
    if await thread_owner(session, channel=thread.channel, thread_ts=thread.ts) != (found.org_id, found.team_id):
        return None   # bound into a thread another team owned first: the thread is the owner's (_thread_run)
    # The thread is the session's team's, as a run's thread is its run's team's: a reply routed to
    # another org, to a sibling team the channel's claim moved to, or nowhere (or signed for another
    # scope) never reaches the session, nor starts a run bound to its thread, and learns nothing of it.
    if not routed or (route.org_id, route.team_id) != (found.org_id, found.team_id) or (
            route.verified_org and refusal(scope_org=route.verified_org, scope_team=route.verified_team,
                                           run_org=found.org_id, run_team=found.team_id) is not None):
        if trigger.action is TriggerAction.CONTINUE:
            return Decision(O.UNMATCHED, detail="no active run in this thread")
        return Decision(O.REJECTED, detail="the thread belongs to another team")
    if await _sandbox_turn_seen(session, trigger=trigger, org_id=found.org_id, now=now):
        # One Slack message under another event id: the session already has this turn.
        return Decision(O.SANDBOX_CONTINUED, session_id=found.id, team_id=found.team_id,
                        detail="turn already recorded")
    return Decision(O.SANDBOX_CONTINUED, session_id=found.id, team_id=found.team_id,
                    dispatch=Dispatch(DispatchKind.SANDBOX, None, found.org_id, found.team_id))


async def _sandbox_turn_seen(session: AsyncSession, *, trigger: Trigger, org_id: str, now: datetime) -> bool:
    """Whether ``trigger``'s Slack message (its ts, channel and author) already continued a sandbox
    session under another event id within :data:`SANDBOX_SEEN_WINDOW`. The thread's lock (taken in
    :func:`decide`) makes a concurrent copy wait for the first's commit and then see it here."""
    ts = message_ts(trigger)
    if not ts or trigger.thread is None:
        return False
    recorded = Delivery.trigger
    q = select(Delivery.id).where(
        Delivery.source == trigger.source, Delivery.org_id == org_id,
        Delivery.outcome == O.SANDBOX_CONTINUED.value, Delivery.received_at >= now - SANDBOX_SEEN_WINDOW,
        Delivery.delivery_id != trigger.delivery_id, recorded["external_ref"].as_string() == ts,
        recorded[("thread", "channel")].as_string() == trigger.thread.channel)
    if trigger.actor:
        q = q.where(recorded["actor"].as_string() == trigger.actor)
    return (await session.scalar(q.limit(1))) is not None


async def _thread_run(session: AsyncSession, *, trigger: Trigger, route: Route) -> tuple[Run | None, bool]:
    """``(the routed team's latest run in the trigger's thread, foreign)``. ``foreign`` when the thread
    belongs to another team (by a run or a sandbox session: ``thread_owner``), or to anyone while the
    route names no team: an unrouted follow-up cannot show it comes from the owner."""
    if trigger.thread is None or not trigger.thread.ts:
        return None, False
    owner = await thread_owner(session, channel=trigger.thread.channel, thread_ts=trigger.thread.ts)
    if owner is None:
        return None, False
    if not route.found or (route.org_id, route.team_id) != owner:
        return None, True
    return await _latest_locked(session, channel=trigger.thread.channel, thread_ts=trigger.thread.ts,
                                org_id=owner[0], team_id=owner[1]), False


async def _latest_locked(session: AsyncSession, *, channel: str, thread_ts: str, org_id: str,
                         team_id: str) -> Run | None:
    """The team's latest run in the thread, row-locked until the commit and still the latest once
    the lock is held: a delivery that waited re-reads, and when the holder started a follow-up in
    the thread meanwhile, locks that one too (so a thread's runs are locked oldest first)."""
    where = {"channel": channel, "thread_ts": thread_ts, "org_id": org_id, "team_id": team_id}
    run = await store.find_by_thread(session, **where)
    while run is not None:
        locked = await store.get_run(session, run.id, for_update=True)
        latest = await store.find_by_thread(session, **where)   # a new statement: sees what committed meanwhile
        if latest is None or latest.id == locked.id:
            return locked
        run = latest
    return None


async def _find_by_fingerprint(session: AsyncSession, *, org_id: str, team_id: str,
                               fingerprint: str) -> Run | None:
    """The team's most recent run started by (or absorbing) the alert ``fingerprint``.

    Bounded: only the team's 200 most recent runs are examined (ack/resolve follow their trigger
    within hours, and the (org, team, created_at) index serves this query)."""
    runs = await store.list_runs(session, org_id=org_id, team_id=team_id, limit=200)
    for run in runs:
        if (run.trigger or {}).get("fingerprint") == fingerprint:
            return run
        if any(a.get("fingerprint") == fingerprint for a in (run.absorbed or [])):
            return run
    return None


async def _update(session: AsyncSession, *, trigger: Trigger, route: Route, now: datetime) -> Decision:
    if not trigger.fingerprint:
        return Decision(O.UNMATCHED, detail="update carries no fingerprint")
    run = await _find_by_fingerprint(session, org_id=route.org_id, team_id=route.team_id,
                                     fingerprint=trigger.fingerprint)
    if run is None:
        return Decision(O.UNMATCHED, detail="no run for this fingerprint")
    kind = trigger.event_kind.lower()
    field = "resolved_at" if "resolve" in kind else "acknowledged_at"
    await session.execute(update(Run).where(Run.id == run.id, getattr(Run, field).is_(None))
                          .values({field: trigger.occurred_at or now})
                          .execution_options(synchronize_session=False))
    await store.append_event(session, run_id=run.id, kind="note",
                             data={"update": trigger.event_kind, "source": trigger.source})
    return Decision(O.UPDATED, run.id, detail=field)


async def _interaction(session: AsyncSession, *, trigger: Trigger, route: Route) -> Decision:
    # Shape from serve_apps.webhooks.slack.parse_interaction: action (the bare verb of our
    # "incidentfox_<verb>" action_id), value, user, run_id, data.
    spec = trigger.interaction or {}
    kind = str(spec.get("action") or spec.get("action_id") or "")
    extra = spec.get("data") if isinstance(spec.get("data"), dict) else {}
    run_id = str(spec.get("run_id") or "")
    run = await store.get_run(session, run_id) if run_id else None
    if run is None:
        return Decision(O.REJECTED, detail="the button names no known run")
    refused = refusal(scope_org=route.verified_org, scope_team=route.verified_team, run_org=run.org_id,
                      run_team=run.team_id, routed_org=route.org_id if route.found else None)
    if refused is not None:
        # Only inside the org (and team) that signed it, or that claims the channel: never by run id alone.
        return Decision(O.REJECTED, detail=refused.value)
    user = str(spec.get("user") or trigger.actor or "unknown")[:128]
    if kind == "rerun":
        # A follow-up's rerun is that follow-up again: same reply, same parent (runs/turns.py).
        new = await store.create_run(session, org_id=run.org_id, team_id=run.team_id,
                                     trigger=Trigger.model_validate(run.trigger), kind=run.kind,
                                     parent_run_id=run.parent_run_id)
        await store.append_event(session, run_id=new.id, kind="status",
                                 data={"status": "queued", "rerun_of": run.id, "by": user})
        return Decision(O.INTERACTION, new.id, Dispatch(DispatchKind.SUBMIT, new.id, new.org_id, new.team_id),
                        "rerun")
    if kind == "cancel":
        status = await store.request_cancel(session, run_id=run.id)
        await store.append_event(session, run_id=run.id, kind="note", data={"cancel_requested_by": user})
        if RunStatus(status) is RunStatus.RUNNING:
            return Decision(O.INTERACTION, run.id, Dispatch(DispatchKind.CANCEL, run.id, run.org_id, run.team_id),
                            "cancel")
        return Decision(O.INTERACTION, run.id, detail="cancel")
    if kind in ("feedback_up", "feedback_down"):
        await store.record_feedback(session, run_id=run.id, user=user, value=1 if kind == "feedback_up" else -1)
        # After the commit, the run's past-incident document is rewritten with the new feedback.
        return Decision(O.INTERACTION, run.id, Dispatch(DispatchKind.REMEMBER, run.id, run.org_id, run.team_id),
                        "feedback")
    if kind == "postmortem":
        await store.append_event(session, run_id=run.id, kind="note", data={"postmortem_requested_by": user})
        return Decision(O.INTERACTION, run.id, Dispatch(DispatchKind.POSTMORTEM, run.id, run.org_id, run.team_id),
                        "postmortem")
    if kind in ("approve", "deny"):
        from actors.engine.approvals import authorize_slack
        from actors.engine.approvals import decide as decide_approval

        approval_id = str(extra.get("approval_id") or "")
        if not await authorize_slack(session, run=run, approval_id=approval_id, user=user, decision=kind,
                                     channel=trigger.thread.channel if trigger.thread else None):
            return Decision(O.REJECTED, run.id, detail="not an approver (team config access.approvers)")
        if not await decide_approval(session, run_id=run.id, approval_id=approval_id,
                                     approve=kind == "approve", by=f"slack:{user}"):
            return Decision(O.REJECTED, run.id, detail="no pending approval with that id")
        # An approved proposed fix runs after the commit (actors/engine/actions.py); a tool call the
        # run waits on is run by the waiting ToolExecutor.
        is_action = approval_id.startswith("act_") and kind == "approve"
        return Decision(O.INTERACTION, run.id, detail=kind, action_id=approval_id if is_action else None)
    return Decision(O.REJECTED, run.id, detail=f"unknown interaction {kind!r}")
