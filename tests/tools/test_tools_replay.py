"""The replay backend: recorded results served back by their match parameters, through execute()."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from actors.tools.base import ToolContext, ToolResult
from actors.tools.execute import execute
from actors.tools.registry import TOOLS
from actors.tools.replay import ReplayError, ReplayStore, recording

SLOW = {"ok": True, "summary": "1 traces, 2 spans; errors in checkout",
        "data": {"traces": [{"trace_id": "ab", "root_service": "frontend"}]},
        "evidence": {"spans": [{"trace_id": "ab", "span_id": "1", "entity": "frontend", "duration_ms": 5200},
                               {"trace_id": "ab", "span_id": "2", "parent_id": "1", "entity": "checkout",
                                "status": "error", "duration_ms": 5100}]}}


def replay_ctx(store: ReplayStore, **integrations: Any) -> ToolContext:
    return ToolContext(integrations=integrations, org_id="o", team_id="t", replay=store)


async def run(tool: str, args: dict[str, Any], c: ToolContext) -> ToolResult:
    return await execute(TOOLS[tool], args, c, backoff_s=0.001)


def write(tmp_path: Path) -> ReplayStore:
    (tmp_path / "a_tempo.json").write_text(json.dumps([
        {"tool": "tempo_search_traces", "result": {"summary": "any tempo search", "data": {"traces": []}}},
        {"tool": "tempo_search_traces", "match": {"service": "checkout"}, "result": SLOW},
    ]))
    sub = tmp_path / "es"
    sub.mkdir()
    (sub / "b.json").write_text(json.dumps(
        {"tool": "elasticsearch_search_logs", "match": {"query": "error", "index": None},
         "result": {"ok": False, "error": "forbidden", "message": "recorded 403"}}))
    return ReplayStore.from_dir(tmp_path)


async def test_the_most_specific_recording_answers(tmp_path: Path) -> None:
    store = write(tmp_path)
    hit = await run("tempo_search_traces", {"service": "checkout", "since_minutes": 15}, replay_ctx(store))
    assert hit.ok and hit.summary == SLOW["summary"] and hit.evidence.spans[1].status == "error"
    assert hit.attempts == 1 and hit.result_size > 0                    # execute() bounded and timed it
    other = await run("tempo_search_traces", {"service": "cart"}, replay_ctx(store))
    assert other.ok and other.summary == "any tempo search"


async def test_recorded_failures_replay_and_unrecorded_calls_answer_no_data(tmp_path: Path) -> None:
    store = write(tmp_path)
    failed = await run("elasticsearch_search_logs", {"query": "error"}, replay_ctx(store))
    assert (failed.ok, failed.error, failed.message) == (False, "forbidden", "recorded 403")
    other_index = await run("elasticsearch_search_logs", {"query": "error", "index": "x"}, replay_ctx(store))
    assert other_index.ok and other_index.data is None and other_index.summary.startswith("no data")
    never = await run("jaeger_search_traces", {"service": "checkout"}, replay_ctx(store))
    assert never.ok and never.summary.startswith("no data")


async def test_replay_wins_over_live_integrations_and_still_validates(tmp_path: Path) -> None:
    store = write(tmp_path)
    c = replay_ctx(store, tempo={"url": "http://127.0.0.1:9"})         # nothing listens: never reached
    assert (await run("tempo_search_traces", {"service": "checkout"}, c)).ok
    assert (await run("tempo_search_traces", {"limit": 0}, c)).error == "invalid_arguments"


async def test_a_live_result_round_trips_through_a_recording(tmp_path: Path) -> None:
    live = ToolResult.model_validate(SLOW)
    args = {"service": "checkout", "query": None, "since_minutes": 30}
    doc = recording("tempo_search_traces", args, live)
    assert doc["match"] == {"service": "checkout", "since_minutes": 30}
    narrowed = recording("tempo_search_traces", args, live, match_keys=["service"])
    (tmp_path / "r.json").write_text(json.dumps(narrowed))
    replayed = await run("tempo_search_traces", {"service": "checkout", "since_minutes": 5},
                         replay_ctx(ReplayStore.from_dir(tmp_path)))
    assert replayed.data == live.data and replayed.evidence == live.evidence


@pytest.mark.parametrize("content, problem", [
    ("not json", "not JSON"), ('{"match": {}}', "'tool'"), ('{"tool": "x", "match": []}', "objects"),
    ('{"tool": "x", "result": {"ok": "maybe"}}', "tool result"),
])
def test_bad_recordings_are_named(tmp_path: Path, content: str, problem: str) -> None:
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(ReplayError, match=problem) as info:
        ReplayStore.from_dir(tmp_path)
    assert "bad.json" in str(info.value)
