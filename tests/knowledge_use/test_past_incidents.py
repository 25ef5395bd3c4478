"""Every finished run (succeeded, failed or cancelled) becomes a past-incident document of its team,
its status plain in the document; 👍/👎 feedback rewrites it (after the gateway's commit); a failure
to write never raises; "seen before" never offers a failed or cancelled run's finding as a fix."""

from __future__ import annotations

import asyncio
import uuid

from knowledge_kit import bases
from sqlalchemy import update

from actors.engine.knowledge_use import KnowledgeStep
from actors.engine.past_incidents import fixed_by, remember_run
from actors.tools.knowledge_bases import TeamKnowledge
from incidentfox.contracts import RCA, Evidence, ProposedAction, RootCause, Trigger
from incidentfox.db import make_async_engine, session_factory
from incidentfox.knowledge import document_id
from incidentfox.runs import store
from incidentfox.runs.models import Run, ToolApproval, ToolCall

RESULT = RCA(summary="checkout v2.14.0 shrank its DB pool", recommended_actions=["Roll back checkout"],
             root_causes=[RootCause(entity="shop/deployment/checkout", description="bad deploy", confidence=0.9,
                                    evidence=[Evidence(kind="log", source="loki", quote="pool exhausted (max=5)")])],
             proposed_actions=[ProposedAction(id="act_1", kind="rollback", target="shop/deployment/checkout",
                                              effect="roll back shop/deployment/checkout to v2.13.1",
                                              tool="kubernetes_rollback_deployment")])


async def _run(sessions, *, status: str = "succeeded", title: str = "High 5xx rate on frontend /checkout",
               error: str | None = None) -> str:
    async with sessions() as s:
        run = await store.create_run(s, org_id="acme", team_id="sre", trigger=Trigger(
            source="alertmanager", delivery_id=uuid.uuid4().hex, event_kind="alert", title=title,
            text="checkout 503 pool exhausted", services=["checkout"]))
        act = "act_" + uuid.uuid4().hex[:12]
        result = RESULT.model_copy(update={"proposed_actions": [RESULT.proposed_actions[0].model_copy(update={"id": act})]})
        await s.execute(update(Run).where(Run.id == run.id).values(
            status=status, result=result.model_dump(mode="json") if status == "succeeded" else None, error=error))
        s.add(ToolApproval(id=act, run_id=run.id, tool="kubernetes_rollback_deployment", arguments={},
                           status="executed"))
        await s.commit()
        return run.id


async def test_a_succeeded_run_is_remembered_and_feedback_rewrites_it(sqlite_url, tmp_path) -> None:
    db = make_async_engine(sqlite_url)
    sessions = session_factory(db)
    kbs = bases(tmp_path)
    team = TeamKnowledge(org_id="acme", team_id="sre")
    run_id = await _run(sessions, title="High 5xx rate on frontend /checkout\n# injected heading")
    step = KnowledgeStep(team=team, bases=kbs, run_id=run_id)
    assert await step.remember(sessions, public_url="https://ifx.example") is True

    kb = kbs.for_team(team)
    [info] = await kb.list_documents(team.own_scope())
    doc = await kb.get_document(team.own_scope(), info.doc_id)
    assert doc.kind == "incident" and doc.source == f"incident/{run_id}" and doc.url.endswith(run_id)
    assert doc.title == "High 5xx rate on frontend /checkout # injected heading"
    for part in ("## Trigger", "checkout 503 pool exhausted", "## Root cause", "shop/deployment/checkout",
                 "pool exhausted (max=5)", "roll back shop/deployment/checkout to v2.13.1 (executed)",
                 "Recommended: Roll back checkout", "👍 0 · 👎 0"):
        assert part in doc.text, part
    assert doc.metadata["fixed_by"] == "roll back shop/deployment/checkout to v2.13.1"

    async with sessions() as s:
        await store.record_feedback(s, run_id=run_id, user="U1", value=1)
        await store.record_feedback(s, run_id=run_id, user="U2", value=1)
        await store.record_feedback(s, run_id=run_id, user="U3", value=-1)
        await s.commit()
    assert await remember_run(sessions, kbs, run_id=run_id, only_if_present=True) is True
    doc = await kb.get_document(team.own_scope(), info.doc_id)
    assert "👍 2 · 👎 1 (helpful)" in doc.text and doc.metadata["feedback_up"] == "2"
    assert len(await kb.list_documents(team.own_scope())) == 1     # rewritten, not added
    await db.dispose()


async def test_unfinished_runs_are_not_remembered_and_feedback_never_creates_one(sqlite_url, tmp_path) -> None:
    db = make_async_engine(sqlite_url)
    sessions = session_factory(db)
    kbs = bases(tmp_path)
    for status in ("queued", "running"):
        assert await remember_run(sessions, kbs, run_id=await _run(sessions, status=status)) is False
    never_written = await _run(sessions)
    assert await remember_run(sessions, kbs, run_id=never_written, only_if_present=True) is False
    off = TeamKnowledge(org_id="acme", team_id="sre", past_incidents=False)
    assert await KnowledgeStep(team=off, bases=kbs, run_id=never_written).remember(sessions) is False
    assert await kbs.for_team(off).list_documents(off.own_scope()) == []
    await db.dispose()


async def test_a_store_failure_is_logged_without_the_runs_text(sqlite_url, tmp_path, caplog) -> None:
    db = make_async_engine(sqlite_url)
    sessions = session_factory(db)

    class Broken:
        def for_team(self, team):
            raise OSError("disk on fire: secret-token-123 checkout 503")

    run_id = await _run(sessions)
    assert await remember_run(sessions, Broken(), run_id=run_id) is False
    assert "OSError" in caplog.text and "secret-token-123" not in caplog.text and "checkout 503" not in caplog.text
    await db.dispose()


async def test_feedback_is_dispatched_to_the_past_incident_after_commit(sqlite_url) -> None:
    from incidentfox.runs.models import Delivery
    from serve_apps.deliveries.dispatch import plan_for
    from serve_apps.deliveries.model import DispatchKind

    db = make_async_engine(sqlite_url)
    sessions = session_factory(db)
    run_id = await _run(sessions)
    trigger = Trigger(source="slack", delivery_id="d1", event_kind="interaction",
                      interaction={"action": "feedback_up", "run_id": run_id, "user": "U1"})
    async with sessions() as s:
        row = Delivery(source="slack", delivery_id="d1", outcome="interaction", run_id=run_id, org_id="acme",
                       team_id="sre", trigger=trigger.model_dump(mode="json"))
        s.add(row)
        await s.commit()
        plan, _ = await plan_for(s, row)
    assert plan is not None and plan.kind is DispatchKind.REMEMBER and plan.run_id == run_id
    await db.dispose()


async def test_failed_and_cancelled_runs_are_remembered_with_their_status_and_no_fix(sqlite_url, tmp_path) -> None:
    db = make_async_engine(sqlite_url)
    sessions = session_factory(db)
    kbs = bases(tmp_path)
    team = TeamKnowledge(org_id="acme", team_id="sre")
    kb = kbs.for_team(team)
    failed = await _run(sessions, status="failed", error="planner: TimeoutError: the model did not answer")
    async with sessions() as s:
        s.add(ToolCall(run_id=failed, agent="logs", tool="loki_query", status="ok",
                       result={"summary": "412 lines; top error: pool exhausted (max=5)"}))
        s.add(ToolCall(run_id=failed, agent="metrics", tool="prometheus_query", status="error", error="HTTP 502"))
        await s.commit()
    cancelled = await _run(sessions, status="cancelled", error="cancelled")
    for run_id in (failed, cancelled):
        assert await KnowledgeStep(team=team, bases=kbs, run_id=run_id).remember(sessions) is True

    doc = await kb.get_document(team.own_scope(), document_id(team.own_scope(), f"incident/{failed}"))
    assert doc.title == "High 5xx rate on frontend /checkout (failed run)"
    assert doc.metadata["status"] == "failed" and doc.metadata["fixed_by"] == "" and doc.metadata["root_cause"] == ""
    for part in (f"run {failed}, failed", "## Outcome", "failed before it finished: planner: TimeoutError",
                 "Nothing below is a confirmed root cause or a fix", "## What was found so far",
                 "- logs: loki_query (ok): 412 lines; top error: pool exhausted (max=5)",
                 "- metrics: prometheus_query (error): HTTP 502",
                 "## Actions taken"):
        assert part in doc.text, part
    assert "## Root cause" not in doc.text
    gone = await kb.get_document(team.own_scope(), document_id(team.own_scope(), f"incident/{cancelled}"))
    assert gone.title.endswith("(cancelled run)") and gone.metadata["status"] == "cancelled"
    assert "was cancelled before it finished" in gone.text and gone.metadata["fixed_by"] == ""
    # Feedback on a failed run rewrites its document like any other.
    async with sessions() as s:
        await store.record_feedback(s, run_id=failed, user="U1", value=-1)
        await s.commit()
    assert await remember_run(sessions, kbs, run_id=failed, only_if_present=True) is True
    assert "👍 0 · 👎 1" in (await kb.get_document(team.own_scope(), doc.doc_id)).text
    await db.dispose()


def test_only_a_succeeded_run_with_a_root_cause_names_a_fix() -> None:
    executed = [{"effect": "roll back checkout", "status": "executed"}]
    assert fixed_by("succeeded", RESULT, executed) == "roll back checkout"
    assert fixed_by("succeeded", RESULT, []) == "Roll back checkout"
    assert fixed_by("succeeded", RESULT.model_copy(update={"root_causes": []}), executed) == ""
    assert fixed_by("failed", RESULT, executed) == "" and fixed_by("cancelled", RESULT, []) == ""
    assert fixed_by("succeeded", None, executed) == ""


async def _incident_doc(kbs, team, sessions, *, status: str) -> None:
    run_id = await _run(sessions, status=status, error=None if status == "succeeded" else "boom")
    assert await KnowledgeStep(team=team, bases=kbs, run_id=run_id).remember(sessions) is True


async def test_seen_before_prefers_a_succeeded_run_and_never_calls_a_failed_ones_finding_a_fix(sqlite_url, tmp_path) -> None:
    db = make_async_engine(sqlite_url)
    sessions = session_factory(db)
    alert = {"title": "High 5xx rate on frontend /checkout", "text": "checkout 503 pool exhausted",
             "services": ["checkout"]}
    team = TeamKnowledge(org_id="acme", team_id="sre")

    only_failed = bases(tmp_path / "a")
    await _incident_doc(only_failed, team, sessions, status="failed")
    await only_failed.for_team(team).rebuild(team.own_scope())
    step = KnowledgeStep(team=team, bases=only_failed, run_id="r_next")
    await step.consult(alert)
    assert step.incident is not None and step.incident.title.endswith("(failed run)")
    assert step.incident.fixed_by == ""             # what it found is not a fix

    both = bases(tmp_path / "b")
    await _incident_doc(both, team, sessions, status="failed")
    await _incident_doc(both, team, sessions, status="cancelled")
    await _incident_doc(both, team, sessions, status="succeeded")
    await both.for_team(team).rebuild(team.own_scope())
    step = KnowledgeStep(team=team, bases=both, run_id="r_next")
    await step.consult(alert)
    assert step.incident is not None and not step.incident.title.endswith("run)")
    assert step.incident.fixed_by == "roll back shop/deployment/checkout to v2.13.1"
    await db.dispose()


async def test_the_lifecycle_remembers_a_failed_and_a_cancelled_run(sqlite_url, tmp_path) -> None:
    from actors.engine import knowledge_use
    from actors.engine.investigation import _on_cancel, _on_failure
    from actors.engine.run_state import EngineContext, LiveRun
    from actors.engine.run_writer import RunWriter

    db = make_async_engine(sqlite_url)
    sessions = session_factory(db)
    kbs = bases(tmp_path)
    team = TeamKnowledge(org_id="acme", team_id="sre")

    async def no_config(org: str, team_id: str) -> dict:
        raise AssertionError("not read")
    ctx = EngineContext(sessions=sessions, writer=RunWriter(sessions), load_config=no_config, slack_api_url="",
                        knowledge=kbs)
    lives = []
    for _ in range(2):
        run_id = await _run(sessions, status="queued")
        async with sessions() as s:
            assert await store.claim(s, run_id=run_id, owner="me", lease_s=60)
            await s.commit()
        lives.append(LiveRun(run_id=run_id, owner="me",
                             knowledge=KnowledgeStep(team=team, bases=kbs, run_id=run_id)))
    await _on_failure(ctx, lives[0], None, "RunFailed: no evidence source answered")
    await _on_cancel(ctx, lives[1], None)
    await asyncio.gather(*list(knowledge_use._REMEMBERING))      # the cancelled run's background write
    kb = kbs.for_team(team)
    docs = {d.source: await kb.get_document(team.own_scope(), d.doc_id)
            for d in await kb.list_documents(team.own_scope())}
    assert docs[f"incident/{lives[0].run_id}"].metadata["status"] == "failed"
    assert "no evidence source answered" in docs[f"incident/{lives[0].run_id}"].text
    assert docs[f"incident/{lives[1].run_id}"].metadata["status"] == "cancelled"
    await db.dispose()
