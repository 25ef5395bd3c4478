"""One investigation, from a claimed run to its posted RCA.

:func:`investigate` runs inside a pool actor after the run was claimed (``running``, leased):

1. snapshot the team's effective config (secrets decrypted, held only in memory);
2. post "🔍 Investigating…" to the trigger's thread, or the team's ``slack.default_channel`` while no other
   team claims it (``config_service.team_has_channel``; else a ``channel_not_claimed`` note, no post);
   an alert-started run adopts that message as its thread, so follow-ups find it;
3. plan: the offline planner, or the LLM planner when the team configured a provider; sub-agents
   run as parallel Ray calls (:mod:`actors.engine.fanout`), the Slack message is edited as each finishes;
   the LLM planner's quoted evidence is verified against the run's tool output
   (:mod:`actors.engine.evidence_check`);
4. persist the RCA and finish the run (compare-and-set, so a concurrent cancel wins cleanly), then
   post the RCA as Block Kit;
5. answer where the alert came from when the team turned it on (:mod:`actors.answerback`: a GitHub
   check run or comment, a PagerDuty note, an incident.io update), after Slack, bounded, each write
   once; how each went is a ``note`` event, never a run failure;
6. the knowledge base (:mod:`actors.engine.knowledge_use`): consulted before planning, cited in the
   RCA, and the finished run (succeeded, failed or cancelled) written back as a past-incident
   document (best effort, bounded).

Lifecycle rules:

* **deadline** (``investigation.deadline_s``, default 300 s, or the run's own): when it passes the
  planner is cancelled and the run ends *succeeded with what it has*: the evidence gathered so far
  is ranked, and the RCA says the deadline cut it short;
* **cancellation**: cancelling the task (``ray.cancel``/the pool's cancel) cancels the sub-agent
  Ray calls and their tool calls, marks the run ``cancelled`` and says so in Slack, then re-raises;
* **errors** (model errors and timeouts included) end the run ``failed`` with a one-line reason.

Every phase is a ``run_events`` row (kind ``phase`` / ``agent`` / ``status`` / ``note``); tool calls
are recorded by the ToolExecutors. No secret is put into an event, a result or a log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack
from typing import Any

from sqlalchemy import update

from actors.answerback.dispatch import answer_run
from actors.engine.fanout import SubAgentFanout
from actors.engine.knowledge_use import knowledge_step, warm_knowledge
from actors.engine.llm_plan import plan_llm
from actors.engine.offline_planner import (
    followup_event,
    investigation_window,
    latency_statistics,
    merged_bundle,
    plan_offline,
    rca_from_evidence,
    trigger_services,
)
from actors.engine.outcomes import RunOutcome, SubAgentStatus
from actors.engine.run_state import (
    DB_TIMEOUT_S,
    SLACK_TIMEOUT_S,
    EngineContext,
    LiveRun,
    RunFailed,
    finish,
    finish_succeeded,
    reason_of,
)
from actors.engine.thread_turns import (
    Steering,
    evidence_snapshot,
    load_follow_up,
    sayer,
)
from actors.slack.client import slack_client
from actors.slack.reporter import SlackReporter
from config_service import TeamConfig, team_has_channel
from incidentfox.contracts import RCA, RunStatus
from incidentfox.db import utcnow
from incidentfox.links import run_url
from incidentfox.runs import store
from incidentfox.runs.models import Run
from incidentfox.runs.turns import ENTRY_KIND
from incidentfox.sqlite_writer import retry_locked

log = logging.getLogger(__name__)


async def _post_first(ctx: EngineContext, run: Run, cfg: TeamConfig, live: LiveRun,
                      scope: AsyncExitStack) -> SlackReporter | None:
    """Post the progress message; the Slack client lives (and is closed) with ``scope``."""
    token, channel = cfg.slack_bot_token, run.thread_channel or cfg.slack_default_channel
    if not token or not channel:
        ctx.writer.event(run.id, "note", {"slack": "skipped", "reason": "no bot token or channel configured"})
        return None
    if not run.thread_channel:   # the default channel is any org admin's text: only while no other team claims it
        async with asyncio.timeout(DB_TIMEOUT_S), ctx.sessions() as s:
            ours = await team_has_channel(s, org_id=run.org_id, team_id=run.team_id, channel=channel, config=cfg.doc)
        if not ours:
            ctx.writer.event(run.id, "note", {"slack": "skipped", "reason": "channel_not_claimed"})
            return None
    trigger = run.trigger or {}
    title = str(trigger.get("title") or "") or str(trigger.get("text") or "").strip().split("\n")[0]
    client = await scope.enter_async_context(
        slack_client(token=token, base_url=ctx.slack_api_url, session=ctx.http_session))
    reporter = SlackReporter(client, run_id=run.id, title=title, run_url=run_url(ctx.public_url, run.id))
    thread_ts = run.thread_ts if run.thread_channel else None
    try:
        async with asyncio.timeout(SLACK_TIMEOUT_S):
            msg = await reporter.start(channel=channel, thread_ts=thread_ts)
    except Exception as exc:  # noqa: BLE001 - Slack down must not stop the investigation
        ctx.writer.event(run.id, "note", {"slack": "error", "reason": reason_of(exc)})
        return None
    live.first_message_at = time.monotonic()
    values: dict[str, Any] = {"slack_message": {"channel": msg.channel, "ts": msg.ts},
                              "first_message_at": utcnow()}
    if not run.thread_channel or not run.thread_ts:
        # The run gets its thread now, so follow-ups in it find the run while it is still running.
        values.update(thread_channel=msg.channel, thread_ts=thread_ts or msg.ts)

        async def txn() -> None:
            async with asyncio.timeout(DB_TIMEOUT_S):
                async with ctx.sessions() as s:
                    await s.execute(update(Run).where(Run.id == run.id).values(**values)
                                    .execution_options(synchronize_session=False))
                    await s.commit()
        await retry_locked(txn)
    else:
        # The thread is known already: record the message with the final status (one write fewer).
        live.finish_fields.update(values)
    ctx.writer.event(run.id, "phase", {"phase": "slack_posted", "channel": msg.channel, "ts": msg.ts})
    return reporter


async def investigate(ctx: EngineContext, live: LiveRun, *, org_id: str, team_id: str,
                      workers: list[Any], executors: list[Any]) -> RunOutcome:
    """Run a claimed run to a terminal status; returns how it ended (see the module docstring and
    :class:`actors.engine.outcomes.RunOutcome`). A cancelled run raises ``CancelledError``."""
    run_id = live.run_id
    started = time.monotonic()
    reporter: SlackReporter | None = None
    slack_scope = AsyncExitStack()

    async def read() -> Run | None:
        async with asyncio.timeout(DB_TIMEOUT_S):
            async with ctx.sessions() as s:
                return await store.get_run(s, run_id)
    run = await retry_locked(read)
    if run is None:
        return RunOutcome.MISSING
    try:
        try:
            doc = await ctx.load_config(org_id, team_id)
        except Exception as exc:
            raise RunFailed(f"could not load the team's config: {reason_of(exc)}") from exc
        cfg = TeamConfig(doc, org_id=org_id, team_id=team_id)
        warm_knowledge(cfg, bases=ctx.knowledge)   # the embedder loads (if anything can match) while the run starts
        deadline_s = float(run.deadline_s or cfg.deadline_s)
        deadline_at = started + deadline_s
        from actors.engine.agents.toolset import allowed_tools

        allowed = allowed_tools(cfg)
        subagents = cfg.enabled_subagents
        mode = cfg.planner_mode
        ctx.writer.event(run_id, "phase", {"phase": "config", "planner": mode, "subagents": subagents,
                                           "tools": sorted(allowed), "deadline_s": deadline_s})
        live.absorb(*(run.absorbed or []))
        live.absorb(*({**t, "kind": ENTRY_KIND} for t in run.turns or [] if t.get("mode") == "redirect"))
        trigger = dict(run.trigger or {})
        try:
            follow = await retry_locked(lambda: load_follow_up(ctx.sessions, run, llm=mode == "llm" and bool(allowed),
                                                               timeout_s=DB_TIMEOUT_S))
        except LookupError as exc:
            raise RunFailed(str(exc)) from exc
        if follow is not None:
            trigger = follow.trigger
            ctx.writer.event(run_id, "phase", {"phase": "follow_up", "parent_run_id": run.parent_run_id,
                                               "intent": follow.intent.as_dict()})
        reporter = await _post_first(ctx, run, cfg, live, slack_scope)
        knowledge = live.knowledge = knowledge_step(cfg, run_id=run_id, bases=ctx.knowledge,
                                                    note=lambda data: ctx.writer.event(run_id, "note", data))
        await knowledge.consult(trigger, live.absorbed)   # bounded; a problem is a note
        steering = Steering(take=live.take_turns, trigger=trigger, say=sayer(reporter, timeout_s=SLACK_TIMEOUT_S),
                            record=lambda data: ctx.writer.event(run_id, "turn", data))

        def progress(agent: str, status: SubAgentStatus, tools: int | None, dur: float | None) -> None:
            data: dict[str, Any] = {"agent": agent, "status": status.value}
            if tools is not None:
                data["tool_count"] = tools
            if dur is not None:
                data["duration_s"] = round(dur, 3)
            ctx.writer.event(run_id, "agent", data)
            if reporter is not None:
                reporter.set_agent(agent, status=status, tool_count=tools, duration_s=dur)

        now = utcnow()
        fanout = SubAgentFanout(run_id=run_id, org_id=org_id, team_id=team_id, config=cfg.doc, workers=workers,
                                executors=executors, services=trigger_services(trigger, live.absorbed),
                                window=investigation_window(trigger, now), deadline_at=deadline_at,
                                on_progress=progress, seed=follow.seed if follow else None,
                                latency_statistics=latency_statistics(trigger, live.absorbed,
                                                                      cfg.metrics.latency_statistics))
        ctx.writer.event(run_id, "phase", {"phase": "planning", "planner": mode})
        if reporter:
            reporter.set_phase("gathering evidence")
        cut_short = False
        try:
            async with asyncio.timeout(max(0.1, deadline_at - time.monotonic())):
                if follow is not None and follow.answer is not None:
                    rca = follow.answer   # answered from the parent's evidence: no tool call
                elif mode == "llm" and allowed:
                    rca, check = await plan_llm(fanout, cfg, trigger=trigger, absorbed=live.absorbed,
                                                 subagents=subagents, steering=steering, follow=follow,
                                                 allowed=allowed, knowledge=knowledge.for_llm())
                    if check.total:
                        ctx.writer.event(run_id, "note", {"evidence_check": check.summary()})
                else:
                    def followed_up(n: int, todo: list[Any], cut: list[Any]) -> None:
                        ctx.writer.event(run_id, "phase", followup_event(n, todo, cut))

                    rca, _ = await plan_offline(fanout, subagents=subagents, tool_count=len(allowed),
                                                trigger=trigger, absorbed=live.absorbed, now=now,
                                                on_round=followed_up, started=started,
                                                steer=lambda b: steering.offline(fanout, subagents, b))
        except TimeoutError:
            cut_short = True
            bundle = merged_bundle(fanout, trigger=trigger, absorbed=live.absorbed)
            rca = await asyncio.to_thread(rca_from_evidence, bundle, now=now, allowed=set(allowed))
            missing = [a for a in subagents if a not in fanout.results
                       or fanout.results[a].status is SubAgentStatus.TIMEOUT]
            rca.summary = (f"Deadline of {deadline_s:g}s reached; partial analysis from what finished"
                           f"{' (unfinished: ' + ', '.join(missing) + ')' if missing else ''}. {rca.summary}")
            ctx.writer.event(run_id, "phase", {"phase": "deadline", "deadline_s": deadline_s, "unfinished": missing})
        if live.absorbed:
            rca.summary += f" ({len(live.absorbed)} correlated alert(s) absorbed into this run.)"
        rca = knowledge.apply(rca)   # citations, a runbook's mitigation steps, a similar past incident
        bundle = merged_bundle(fanout, trigger=trigger, absorbed=live.absorbed)
        steering.answer_questions(rca, bundle)
        steering.too_late(rca)
        if follow is not None and follow.preface:
            rca.summary = follow.preface + rca.summary
        live.finish_fields["evidence"] = evidence_snapshot(trigger, bundle)
        result = rca.model_dump(mode="json")
        result["partial"] = cut_short
        ctx.writer.event(run_id, "phase", {"phase": "rca", "root_causes": [c.entity for c in rca.root_causes],
                                           "no_incident": rca.no_incident})
        ok = await finish_succeeded(ctx, live, rca, result)
        if reporter is not None and ok:
            await _post_final(ctx, live.run_id, reporter, rca, RunStatus.SUCCEEDED)
        if ok:   # bounded; each outcome a note event; never changes the run's result
            await answer_run(sessions=ctx.sessions, run_id=run_id, trigger=run.trigger or {}, rca=rca,
                             integrations=cfg.integrations, routing=cfg.effective.routing,
                             run_link=run_url(ctx.public_url, run_id),
                             since=run.created_at, out=ctx.outbound(),
                             note=lambda data: ctx.writer.event(run_id, "note", data))
            await knowledge.remember(ctx.sessions, public_url=ctx.public_url)   # never raises
        return RunOutcome.SUCCEEDED if ok else RunOutcome.LOST_RACE
    except asyncio.CancelledError:
        if not live.abandoned:
            await asyncio.shield(_on_cancel(ctx, live, reporter))
        raise
    except RunFailed as exc:
        await _on_failure(ctx, live, reporter, exc.reason)
        return RunOutcome.FAILED
    except Exception as exc:  # noqa: BLE001 - any other error fails this run, recorded, not the actor
        log.warning("run %s failed: %s", run_id, reason_of(exc))
        await _on_failure(ctx, live, reporter, reason_of(exc))
        return RunOutcome.FAILED
    finally:
        if reporter is not None:
            await reporter.aclose()
        await slack_scope.aclose()
        await _forget_run(executors, run_id)


async def _forget_run(executors: list[Any], run_id: str) -> None:
    """Drop the run's tool context (its decrypted integrations) from every tool executor: a tenant's
    credentials live in memory only while its run does (issue 12). Bounded; a dead executor holds nothing."""
    if not executors:
        return
    try:
        async with asyncio.timeout(SLACK_TIMEOUT_S):
            await asyncio.gather(*(e.forget.remote(run_id) for e in executors), return_exceptions=True)
    except TimeoutError:
        log.warning("tool executors did not confirm dropping run %s's credentials in time", run_id)


async def _on_failure(ctx: EngineContext, live: LiveRun, reporter: SlackReporter | None, reason: str) -> None:
    ok = await finish(ctx, live, RunStatus.FAILED, error=reason)
    if reporter is not None and ok:
        await _post_final(ctx, live.run_id, reporter, RCA(summary=f"The investigation failed: {reason}"),
                          RunStatus.FAILED)
    if ok and live.knowledge is not None:   # a failed run is a past incident too (never raises)
        await live.knowledge.remember(ctx.sessions, public_url=ctx.public_url)


async def _post_final(ctx: EngineContext, run_id: str, reporter: SlackReporter, rca: RCA,
                      status: RunStatus) -> None:
    """The final Block Kit edit, after the run's status is durable: a Slack problem here is recorded
    (a ``note`` event) and retried once, never turned into a run failure."""
    for attempt in (1, 2):
        try:
            async with asyncio.timeout(SLACK_TIMEOUT_S):
                await reporter.finish(rca, status=status)
            return
        except Exception as exc:  # noqa: BLE001 - Slack down or slow: the run's result stands either way
            log.warning("final Slack edit of %s failed (attempt %d): %s", run_id, attempt, type(exc).__name__)
            ctx.writer.event(run_id, "note", {"slack": "error", "phase": "final", "attempt": attempt,
                                              "reason": reason_of(exc)})


async def _on_cancel(ctx: EngineContext, live: LiveRun, reporter: SlackReporter | None) -> None:
    run_id = live.run_id
    try:
        ok = await finish(ctx, live, RunStatus.CANCELLED, error="cancelled")
        if reporter is not None and ok:
            await _post_final(ctx, run_id, reporter, RCA(summary="The investigation was cancelled."),
                              RunStatus.CANCELLED)
        if ok and live.knowledge is not None:   # remembered in the background: the cancel goes on now
            live.knowledge.remember_later(ctx.sessions, public_url=ctx.public_url)
    except Exception as exc:  # noqa: BLE001 - the cancel stands; a failed cleanup is logged
        log.warning("cleanup after cancelling %s failed: %s", run_id, type(exc).__name__)


__all__ = ["EngineContext", "LiveRun", "RunFailed", "investigate"]
