"""A run is marked succeeded in the same transaction that makes its proposed fixes approvable: a
reader that sees the run succeeded sees its pending approval rows (no window in between), and when
the rows cannot be written the run still succeeds, without the fix, and says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from actors.engine.offline_planner import rca_from_evidence
from actors.engine.run_state import EngineContext, LiveRun, finish_succeeded
from actors.engine.run_writer import RunWriter
from incidentfox.contracts import RunStatus, Trigger
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs import store
from incidentfox.runs.models import ToolApproval
from tests.engine.test_proposed_actions import ALL, _deploy_bundle

T = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


async def _running(sessions: Any, key: str) -> str:
    async with sessions() as s:
        run = await store.create_run(s, org_id="o", team_id="t",
                                     trigger=Trigger(source="api", delivery_id=key, event_kind="api"))
        await s.flush()
        assert await store.transition(s, run_id=run.id, to=RunStatus.RUNNING)
        await s.commit()
        return run.id


async def _no_config(org: str, team: str) -> dict[str, Any]:
    return {}


async def test_the_run_and_its_approval_rows_commit_together_or_the_fix_is_dropped(db_url: str) -> None:
    engine = make_async_engine(db_url)
    sessions = session_factory(engine)
    writer = RunWriter(sessions)
    ctx = EngineContext(sessions=sessions, writer=writer, load_config=_no_config, slack_api_url="")
    try:
        rca = rca_from_evidence(_deploy_bundle(), now=T + timedelta(minutes=5), allowed=ALL)
        [proposal] = rca.proposed_actions
        run_id = await _running(sessions, "d-1")
        assert await finish_succeeded(ctx, LiveRun(run_id), rca, rca.model_dump(mode="json"))
        async with sessions() as s:
            run = await store.get_run(s, run_id)
            row = await s.get(ToolApproval, proposal.id)
            events = await store.list_events(s, run_id=run_id)
        assert run.status == "succeeded" and run.result["proposed_actions"][0]["id"] == proposal.id
        assert (row.run_id, row.status, row.tool) == (run_id, "pending", "kubernetes_rollback_deployment")
        kinds = [e.kind for e in events]
        assert kinds.index("approval") > kinds.index("status")

        # The same action id already taken (the rows cannot be written): the run succeeds without the fix.
        other = await _running(sessions, "d-2")
        result = rca.model_dump(mode="json")
        assert await finish_succeeded(ctx, LiveRun(other), rca, result)
        await writer.flush()
        async with sessions() as s:
            run = await store.get_run(s, other)
            rows = (await s.execute(select(ToolApproval).where(ToolApproval.run_id == other))).scalars().all()
            notes = [e.data for e in await store.list_events(s, run_id=other) if e.kind == "note"]
        assert run.status == "succeeded" and run.result["proposed_actions"] == [] and rows == []
        assert rca.proposed_actions == []    # the Slack message offers no button either
        assert any(n.get("proposed_actions") == "not recorded" for n in notes)
    finally:
        await writer.aclose()
        await engine.dispose()
