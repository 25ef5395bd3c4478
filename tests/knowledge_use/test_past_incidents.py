"""Every succeeded run becomes a past-incident document of its team; 👍/👎 feedback rewrites it
(after the gateway's commit); a failure to write never raises."""

from __future__ import annotations

import uuid

from knowledge_kit import bases
from sqlalchemy import update

from actors.engine.knowledge_use import KnowledgeStep
from actors.engine.past_incidents import remember_run
from actors.tools.knowledge_bases import TeamKnowledge
from incidentfox.contracts import RCA, Evidence, ProposedAction, RootCause, Trigger
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs import store
from incidentfox.runs.models import Run, ToolApproval

RESULT = RCA(summary="checkout v2.14.0 shrank its DB pool", recommended_actions=["Roll back checkout"],
             root_causes=[RootCause(entity="shop/deployment/checkout", description="bad deploy", confidence=0.9,
                                    evidence=[Evidence(kind="log", source="loki", quote="pool exhausted (max=5)")])],
             proposed_actions=[ProposedAction(id="act_1", kind="rollback", target="shop/deployment/checkout",
                                              effect="roll back shop/deployment/checkout to v2.13.1",
                                              tool="kubernetes_rollback_deployment")])


async def _run(sessions, *, status: str = "succeeded", title: str = "High 5xx rate on frontend /checkout") -> str:
    async with sessions() as s:
        run = await store.create_run(s, org_id="acme", team_id="sre", trigger=Trigger(
            source="alertmanager", delivery_id=uuid.uuid4().hex, event_kind="alert", title=title,
            text="checkout 503 pool exhausted", services=["checkout"]))
        act = "act_" + uuid.uuid4().hex[:12]
        result = RESULT.model_copy(update={"proposed_actions": [RESULT.proposed_actions[0].model_copy(update={"id": act})]})
        await s.execute(update(Run).where(Run.id == run.id).values(
            status=status, result=result.model_dump(mode="json") if status == "succeeded" else None))
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


async def test_only_succeeded_runs_are_remembered_and_feedback_never_creates_one(sqlite_url, tmp_path) -> None:
    db = make_async_engine(sqlite_url)
    sessions = session_factory(db)
    kbs = bases(tmp_path)
    failed = await _run(sessions, status="failed")
    assert await remember_run(sessions, kbs, run_id=failed) is False
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
