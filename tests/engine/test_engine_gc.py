"""Retention: `incidentfox gc` purges old finished runs and their records, and old raw payloads."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select, update
from typer.testing import CliRunner

from cli.main import app
from incidentfox.contracts import RunStatus, Trigger
from incidentfox.db import make_async_engine, session_factory, utcnow
from incidentfox.runs import store
from incidentfox.runs.gc import purge
from incidentfox.runs.models import Delivery, Run, RunEvent, ToolCall


async def _seed(sessions, *, age_days: float, status: str) -> str:
    async with sessions() as s:
        run = await store.create_run(s, org_id="o", team_id="t",
                                     trigger=Trigger(source="api", delivery_id=f"d-{age_days}-{status}", event_kind="x"))
        await store.append_event(s, run_id=run.id, kind="phase", data={"phase": "config"})
        s.add(ToolCall(run_id=run.id, agent="k", tool="kubernetes_list_pods", arguments={}, status="ok"))
        s.add(Delivery(source="slack", delivery_id=f"ev-{run.id}", payload='{"raw": true}', run_id=run.id))
        await s.flush()
        old = utcnow() - timedelta(days=age_days)
        await s.execute(update(Run).where(Run.id == run.id).values(
            status=status, created_at=old, finished_at=old if RunStatus(status).terminal else None))
        await s.execute(update(Delivery).where(Delivery.run_id == run.id).values(received_at=old))
        await s.commit()
        return run.id


async def test_purge_keeps_recent_and_active_runs(db_url: str) -> None:
    engine = make_async_engine(db_url)
    sessions = session_factory(engine)
    try:
        old_done = await _seed(sessions, age_days=40, status="succeeded")
        old_running = await _seed(sessions, age_days=40, status="running")
        recent = await _seed(sessions, age_days=1, status="failed")
        dry = await purge(sessions, older_than=timedelta(days=30), dry_run=True)
        assert (dry["runs"], dry["run_events"], dry["tool_calls"]) == (1, 1, 1)
        counts = await purge(sessions, older_than=timedelta(days=30))
        assert (counts["runs"], counts["run_events"], counts["tool_calls"]) == (1, 1, 1)
        assert counts["delivery_payloads"] == 2    # both 40-day-old bodies, the running run's included
        async with sessions() as s:
            left = set((await s.scalars(select(Run.id))).all())
            assert left == {old_running, recent}
            assert await s.scalar(select(func.count()).select_from(RunEvent).where(RunEvent.run_id == old_done)) == 0
            payloads = dict((await s.execute(select(Delivery.run_id, Delivery.payload))).all())
            assert payloads[recent] == '{"raw": true}' and payloads[old_running] == ""
        assert (await purge(sessions, older_than=timedelta(days=30)))["runs"] == 0   # idempotent
    finally:
        await engine.dispose()


def test_gc_command_prints_counts(sqlite_url: str) -> None:
    result = CliRunner().invoke(app, ["gc", "--older-than-days", "7", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["runs"] == 0 and out["older_than_days"] == 7 and out["dry_run"] is False
    bad = CliRunner().invoke(app, ["gc", "--older-than-days", "-1", "--database-url", sqlite_url])
    assert bad.exit_code == 2                   # a usage error: --older-than-days has min 0
