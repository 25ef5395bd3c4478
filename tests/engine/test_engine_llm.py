"""The LLM planner end to end on Ray: the real openai-agents SDK against a local scripted
OpenAI-compatible server, sub-agents as parallel Ray calls, tool calls on the ToolExecutor actors."""

from __future__ import annotations

import json

import pytest
from engine_support import TOKEN, Engine, demo_config

from actors.engine.run_state import SLACK_TIMEOUT_S
from actors.testing.scripted_llm import ScriptedLLM

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPORT = {"summary": "checkout v2.3.1 crash-loops since its deploy",
          "root_causes": [{"entity": "shop/deployment/checkout", "description": "bad deploy", "confidence": 0.85,
                           "evidence": ["Back-off restarting failed container"]}],
          "affected_services": ["checkout", "frontend"], "timeline": ["deploy", "errors"],
          "recommended_actions": ["roll back checkout"], "no_incident": False}

K8S_CALLS = [{"name": "kubernetes_list_pods", "arguments": {"namespace": "shop", "label_selector": None, "limit": 50}},
             {"name": "kubernetes_get_events", "arguments": {"namespace": "shop", "object_name": None,
                                                              "warnings_only": True, "since_minutes": 60, "limit": 50}}]
METRIC_CALLS = [{"name": "prometheus_query", "arguments": {"query": "up", "metric": "error_rate", "time": None}},
                {"name": "demo_service_map", "arguments": {}}]


def _script() -> dict:
    return {
        "lead SRE": [{"tool_calls": [{"name": "ask_kubernetes_agent", "arguments": {"input": "pods in shop?"}},
                                     {"name": "ask_metrics_agent", "arguments": {"input": "error rates?"}}]},
                     {"json": REPORT}],
        "kubernetes specialist": [{"tool_calls": K8S_CALLS}, {"text": "checkout pods crash-loop"}],
        "metrics specialist": [{"tool_calls": METRIC_CALLS}, {"text": "checkout 5xx at 40%"}],
    }


@pytest.fixture
async def llm():
    server = ScriptedLLM(_script())
    await server.start()
    yield server
    await server.stop()


def _llm_config(llm: ScriptedLLM, channel: str, *, latency_ms: int = 300, **llm_extra) -> dict:
    return demo_config(channel=channel, latency_ms=latency_ms,
                       llm={"provider": "openai_compatible", "model": "scripted", "base_url": llm.url,
                            "api_key": "sk-test-secret-key", **llm_extra},
                       subagents={"logs": False, "changes": False, "cloud": False})


async def test_llm_run_fans_out_in_parallel(engine: Engine, llm) -> None:
    db = engine
    team = await engine.add_team(_llm_config(llm, "CLLM"))
    if True:
        run_id = await engine.start(team, channel="CLLM")
        run = await db.wait_terminal(run_id, timeout=90)
        assert run.status == "succeeded", run.error
        assert run.result["root_causes"][0]["entity"] == "shop/deployment/checkout"

        calls = await db.tool_calls(run_id)
        assert {c.tool for c in calls} == {"kubernetes_list_pods", "kubernetes_get_events", "prometheus_query",
                                           "demo_service_map"}
        assert all(c.status == "ok" and c.finished_at and c.result_size > 0 for c in calls)
        # Sub-agents ran in parallel and so did their tool calls: every pair of the four 300 ms calls
        # overlaps in time (recorded start/end times interleave).
        by_agent = {c.agent for c in calls}
        assert by_agent == {"kubernetes", "metrics"}
        for a in calls:
            for b in calls:
                if a is not b:
                    assert a.started_at < b.finished_at and b.started_at < a.finished_at, (a.tool, b.tool)

        kinds = [(e.kind, e.data.get("phase") or e.data.get("status")) for e in await db.events(run_id)]
        assert ("status", "running") in kinds and ("phase", "rca") in kinds and ("status", "succeeded") in kinds
        agent_events = [e.data for e in await db.events(run_id) if e.kind == "agent" and e.data["status"] == "ok"]
        assert {e["agent"] for e in agent_events} == {"kubernetes", "metrics"}
        assert all(e["tool_count"] == 2 for e in agent_events)

        # The planner asked both specialists in ONE turn (parallel tool calls).
        planner_turns = [r for r in llm.requests if r.agent == "lead SRE"]
        assert len(planner_turns) == 2
        # Slack: posted once into the trigger's thread, final RCA with the buttons.
        posts = engine.slack_calls("CLLM", "chat.postMessage")
        assert len(posts) == 1 and posts[0].args["thread_ts"] == run.thread_ts
        final = await engine.slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.update"
                                                           and c.args.get("channel") == "CLLM"
                                                           and "shop/deployment/checkout" in str(c.args["blocks"])],
                                            timeout=60)
        assert any(e.get("action_id") == "incidentfox_rerun" for b in final[-1].args["blocks"]
                   for e in b.get("elements", []))
        assert all(c.token == TOKEN for c in engine.slack_calls("CLLM"))
        # No secret reached the run record.
        blob = repr(run.result) + repr([e.data for e in await db.events(run_id)]) + repr([c.arguments for c in calls])
        assert TOKEN not in blob and "sk-test-secret-key" not in blob


@pytest.mark.parametrize("failure", ["error", "hang"])
async def test_model_error_or_timeout_fails_the_run(engine: Engine, failure) -> None:
    turn = {"error": 500} if failure == "error" else {"hang": True}
    server = ScriptedLLM({"lead SRE": [turn, turn, turn]})
    await server.start()
    db = engine
    channel = f"CFAIL{failure}"
    team = await engine.add_team(_llm_config(server, channel, request_timeout_s=1.5))
    try:
        run_id = await engine.start(team, channel=channel)
        run = await db.wait_terminal(run_id, timeout=60)
        assert (run.finished_at - run.started_at).total_seconds() < 20   # not the 60 s deadline
        assert run.status == "failed"
        expected = "InternalServerError" if failure == "error" else "Timeout"
        assert expected in run.error, run.error
        # The thread gets the final "failed" edit on both paths (two attempts of SLACK_TIMEOUT_S each).
        try:
            await engine.slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.update"
                                                       and c.args.get("channel") == channel
                                                       and "failed" in c.args["text"]],
                                        timeout=2 * SLACK_TIMEOUT_S + 10)
        except (TimeoutError, AssertionError) as exc:
            events = [(e.kind, e.data) for e in await db.events(run_id)]
            calls = [(c.method, c.args.get("text", "")[:80]) for c in engine.slack_calls(channel)]
            raise AssertionError(f"no final Slack edit: events={events} slack={calls}") from exc
    finally:
        await server.stop()


async def test_tool_calls_are_recorded_with_masked_arguments(engine: Engine) -> None:
    gh = "ghp_" + "A" * 36
    leaky = [{"name": "loki_query_logs", "arguments": {"query": f'{{app="checkout"}} |= "{TOKEN}" |= "{gh}"',
                                                       "since_minutes": 30, "limit": 20}}]
    server = ScriptedLLM({
        "lead SRE": [{"tool_calls": [{"name": "ask_logs_agent", "arguments": {"input": "errors?"}}]},
                     {"json": {**REPORT, "root_causes": []}}],
        "logs specialist": [{"tool_calls": leaky}, {"text": "nothing"}],
    })
    await server.start()
    try:
        cfg = _llm_config(server, "CMASK", latency_ms=0)
        cfg["subagents"] = {"kubernetes": False, "metrics": False, "changes": False, "cloud": False}
        team = await engine.add_team(cfg)
        run_id = await engine.start(team, channel="CMASK")
        run = await engine.wait_terminal(run_id, timeout=60)
        assert run.status == "succeeded", run.error
        calls = await engine.tool_calls(run_id)
        assert [c.tool for c in calls] == ["loki_query_logs"] and calls[0].agent == "logs"
        stored = calls[0].arguments
        assert TOKEN not in repr(stored) and gh not in repr(stored) and "***" in stored["query"]
        assert stored["since_minutes"] == 30 and calls[0].status == "ok" and calls[0].result_size > 0
    finally:
        await server.stop()


@pytest.mark.parametrize("approve", [True, False])
async def test_mutating_tool_runs_only_after_approval(engine: Engine, approve: bool) -> None:
    from sqlalchemy import select

    from actors.engine.approvals import decide
    from incidentfox.runs.models import ToolApproval

    restart = [{"name": "kubernetes_restart_deployment", "arguments": {"namespace": "shop", "deployment": "checkout"}}]
    server = ScriptedLLM({
        "lead SRE": [{"tool_calls": [{"name": "ask_kubernetes_agent", "arguments": {"input": "restart checkout"}}]},
                     {"json": REPORT}],
        "kubernetes specialist": [{"tool_calls": restart}, {"text": "done"}],
    })
    await server.start()
    channel = f"CAPPR{int(approve)}"
    try:
        cfg = _llm_config(server, channel, latency_ms=0)
        cfg["subagents"] = {"metrics": False, "logs": False, "changes": False, "cloud": False}
        cfg["tools"] = {"kubernetes_restart_deployment": True}    # the team allows it at all
        team = await engine.add_team(cfg)
        run_id = await engine.start(team, channel=channel)
        # The call waits for a human: an Approve/Deny message lands in the run's thread.
        posted = await engine.slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.postMessage"
                                                            and c.args.get("channel") == channel
                                                            and "incidentfox_approve" in str(c.args.get("blocks"))],
                                             timeout=60)
        value = json.loads(posted[0].args["blocks"][1]["elements"][0]["value"])
        assert value["run_id"] == run_id
        async with engine.sessions() as s:
            row = (await s.scalars(select(ToolApproval).where(ToolApproval.run_id == run_id))).one()
            assert row.status == "pending" and row.id == value["approval_id"] and row.arguments["deployment"] == "checkout"
            assert await decide(s, run_id=run_id, approval_id=row.id, approve=approve, by="U0ALICE")
            await s.commit()
        run = await engine.wait_terminal(run_id, timeout=60)
        assert run.status == "succeeded", run.error
        calls = await engine.tool_calls(run_id)
        assert [c.tool for c in calls] == ["kubernetes_restart_deployment"]
        assert calls[0].status == ("ok" if approve else "error")
        if not approve:
            assert calls[0].result["error"] == "approval_denied"
        notes = [e.data for e in await engine.events(run_id) if e.kind == "note" and "approval" in e.data]
        assert notes == [{"approval": value["approval_id"], "decision": "approved" if approve else "denied",
                          "by": "U0ALICE"}]
    finally:
        await server.stop()


async def test_quoted_evidence_no_tool_returned_is_dropped(engine: Engine) -> None:
    """The planner quotes one line a tool really returned and one it invented: the RCA keeps the first
    (labelled with its tool), drops the second, lowers that cause's confidence below an unquoted
    cause, and says so, in the stored result and in Slack."""
    real = "Readiness probe failed: HTTP probe failed with statuscode: 503"   # the demo world's event
    invented = "java.lang.OutOfMemoryError: Java heap space in checkout-7d9f"
    report = {**REPORT, "root_causes": [
        {"entity": "shop/deployment/checkout", "description": "pool exhausted", "confidence": 0.8,
         "evidence": [f'"{real}"', invented]},
        {"entity": "rds/postgres", "description": "database saturated", "confidence": 0.5, "evidence": []}]}
    server = ScriptedLLM({
        "lead SRE": [{"tool_calls": [{"name": "ask_kubernetes_agent", "arguments": {"input": "events?"}}]},
                     {"json": report}],
        "kubernetes specialist": [{"tool_calls": K8S_CALLS[1:]}, {"text": "readiness probes fail on checkout"}],
    })
    await server.start()
    channel = "CEVID"
    try:
        cfg = _llm_config(server, channel, latency_ms=0)
        cfg["subagents"] = {"metrics": False, "logs": False, "changes": False, "cloud": False}
        team = await engine.add_team(cfg)
        run_id = await engine.start(team, channel=channel)
        run = await engine.wait_terminal(run_id, timeout=60)
        assert run.status == "succeeded", run.error
        causes = run.result["root_causes"]
        assert [c["entity"] for c in causes] == ["rds/postgres", "shop/deployment/checkout"]   # re-sorted
        checkout = causes[1]
        assert [(e["quote"], e["source"]) for e in checkout["evidence"]] == [(f'"{real}"', "kubernetes_get_events")]
        assert checkout["confidence"] == pytest.approx(0.4) and causes[0]["confidence"] == 0.5
        (note,) = run.result["notes"]
        assert note.startswith("Evidence check: 1 of 2 quoted evidence line(s) could not be found")
        assert "shop/deployment/checkout" in note and invented not in json.dumps(run.result)
        checks = [e.data["evidence_check"] for e in await engine.events(run_id)
                  if e.kind == "note" and "evidence_check" in e.data]
        assert checks == [{"quotes": 2, "verified": 1, "dropped": 1, "dropped_quotes": [
            {"entity": "shop/deployment/checkout", "quote": invented, "reason": "not_found"}]}]
        final = await engine.slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.update"
                                                           and c.args.get("channel") == channel
                                                           and "Evidence check" in json.dumps(c.args["blocks"])],
                                            timeout=60)
        blocks = json.dumps(final[-1].args["blocks"], ensure_ascii=False)
        assert "⚠️ Evidence check: 1 of 2" in blocks and real in blocks and invented not in blocks
    finally:
        await server.stop()
