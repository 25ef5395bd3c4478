"""RunWriter: queued tool-call and event rows land in one batch, events numbered per run after what
another writer appended."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from actors.engine.run_writer import RunWriter
from incidentfox.db import make_async_engine, session_factory, upgrade
from incidentfox.runs import store


async def test_rows_are_written_in_one_batch_with_per_run_sequence_numbers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    engine = make_async_engine(url)
    sessions = session_factory(engine)
    try:
        async with sessions() as s:
            for run_id in ("a", "b"):
                await store.create_run(s, org_id="o", team_id="t", run_id=run_id,
                                       trigger={"source": "api", "delivery_id": run_id, "event_kind": "mention",
                                                "text": "x"})
            await store.append_event(s, run_id="a", kind="note", data={"by": "gateway"})
            await s.commit()
        writer = RunWriter(sessions)
        at = datetime(2026, 12, 4, tzinfo=UTC)
        done = writer.tool_call({"run_id": "a", "agent": "metrics", "tool": "tempo_search_traces",
                                 "arguments": {"service": "checkout"}, "started_at": at, "finished_at": at,
                                 "status": "ok", "result_size": 12, "result": {"summary": "3 traces"},
                                 "error": None})
        writer.event("a", "phase", {"phase": "followup", "round": 1})
        writer.event("b", "agent", {"agent": "logs", "status": "ok"})
        writer.event("a", "phase", {"phase": "rca"})
        await writer.flush()
        assert done.done() and done.exception() is None
        async with sessions() as s:
            a = await store.list_events(s, run_id="a")
            b = await store.list_events(s, run_id="b")
            calls = await store.list_tool_calls(s, run_id="a")
        assert [(e.seq, e.kind, e.data) for e in a] == [
            (1, "note", {"by": "gateway"}), (2, "phase", {"phase": "followup", "round": 1}), (3, "phase", {"phase": "rca"})]
        assert [(e.seq, e.data["agent"]) for e in b] == [(1, "logs")]
        assert [(c.agent, c.tool, c.arguments, c.status, c.result, c.result_size) for c in calls] == [
            ("metrics", "tempo_search_traces", {"service": "checkout"}, "ok", {"summary": "3 traces"}, 12)]
        assert calls[0].started_at.replace(tzinfo=UTC) == at and calls[0].error is None
        await writer.aclose()
    finally:
        await engine.dispose()
