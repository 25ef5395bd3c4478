"""X-Ray tools through boto3 with the run's tenant credentials: trace summaries against moto's
server (moto answers ``GetTraceSummaries``; its ``BatchGetTraces`` does not return the real shape),
and full traces against a local server speaking X-Ray's REST JSON (``POST /TraceSummaries``,
``POST /Traces``). Both are the operator's endpoint (``AWS_ENDPOINT_URL``)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from moto_kit import boto_client, moto_server

from actors.tools.base import ToolContext, ToolResult
from actors.tools.execute import execute
from actors.tools.registry import TOOLS
from tests.tools_fakes import FakeHTTP

CREDS = {"region": "us-east-1", "access_key_id": "AKIATENANTKEY0002", "secret_access_key": "xray-secret-key-1"}
TRACE = "1-5759e988-bd862e3fe1be46a994272793"


def ctx() -> ToolContext:
    return ToolContext(integrations={"aws": dict(CREDS)}, org_id="acme", team_id="sre", run_id="run-1")


async def run(tool: str, args: dict[str, Any]) -> ToolResult:
    return await execute(TOOLS[tool], args, ctx(), backoff_s=0.001)


def segment(seg_id: str, name: str, start: float, end: float, **extra: Any) -> dict[str, Any]:
    return {"id": seg_id, "trace_id": TRACE, "name": name, "start_time": start, "end_time": end, **extra}


async def test_summaries_from_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    with moto_server() as url:
        now = time.time()
        docs = [segment("a1b2c3d4e5f60001", "frontend", now - 120, now - 118, fault=True,
                        http={"response": {"status": 502}})]
        boto_client(url, "xray").put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        result = await run("xray_search_traces", {"since_minutes": 30, "fetch_traces": 0})
    assert result.ok, result.message
    (header,) = result.data["traces"]
    assert header["trace_id"] == TRACE and header["error"] is True and header["duration_ms"] == 2000
    assert result.data["spans"] == [] and "1 traces (0 fetched)" in result.summary


@pytest.fixture
async def xray(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeHTTP]:
    fake = FakeHTTP()
    await fake.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", fake.url)
    yield fake
    await fake.close()


def full_trace() -> dict[str, Any]:
    t0 = 1741964100.0
    front = segment("f000000000000001", "frontend", t0, t0 + 3.0, http={"request": {"url": "https://shop/checkout"},
                                                                         "response": {"status": 500}}, error=False,
                    fault=True, subsegments=[
                        {"id": "f000000000000002", "name": "checkout", "namespace": "remote", "start_time": t0 + 0.1,
                         "end_time": t0 + 2.9, "fault": True}])
    checkout = segment("c000000000000001", "checkout", t0 + 0.2, t0 + 2.8, parent_id="f000000000000002",
                       fault=True, subsegments=[
                           {"id": "c000000000000002", "name": "orders-db", "namespace": "remote",
                            "start_time": t0 + 0.3, "end_time": t0 + 2.7, "sql": {"url": "postgres://db/orders"}}])
    return {"Id": TRACE, "Duration": 3.0, "Segments": [
        {"Id": s["id"], "Document": json.dumps(s)} for s in (front, checkout)]}


async def test_search_fetches_failing_traces_in_full(xray: FakeHTTP) -> None:
    xray.route("POST", "/TraceSummaries", (200, {"TraceSummaries": [
        {"Id": TRACE, "Duration": 3.0, "HasFault": True, "EntryPoint": {"Name": "frontend"},
         "Http": {"HttpURL": "https://shop/checkout"}}], "TracesProcessedCount": 1}))
    xray.route("POST", "/Traces", (200, {"Traces": [full_trace()], "UnprocessedTraceIds": []}))
    result = await run("xray_search_traces", {"service": "frontend", "filter_expression": "fault = true"})
    assert result.ok, result.message
    query = xray.calls("/TraceSummaries")[0]
    body = query.json()
    assert body["FilterExpression"] == 'service("frontend") AND (fault = true)' and body["Sampling"] is False
    assert body["EndTime"] - body["StartTime"] == pytest.approx(3600, abs=1)
    assert "AKIATENANTKEY0002" in query.headers["Authorization"]          # signed with the tenant's keys
    assert xray.calls("/Traces")[0].json() == {"TraceIds": [TRACE]}
    spans = {s.span_id: s for s in result.evidence.spans}
    assert spans["c000000000000001"].parent_id == "f000000000000002" and spans["c000000000000001"].status == "error"
    assert spans["f000000000000002"].entity == "frontend" and spans["c000000000000002"].attributes["peer.service"] \
        == "orders-db"
    assert spans["f000000000000001"].duration_ms == pytest.approx(3000)
    edges = {(e["caller"], e["callee"]): (e["calls"], e["errors"]) for e in result.data["edges"]}
    assert edges == {("frontend", "checkout"): (1, 1), ("checkout", "orders-db"): (1, 0)}
    assert result.data["slow_spans"][0]["operation"] == "orders-db"
    assert result.data["traces"][0]["root_service"] == "frontend" and result.data["traces"][0]["span_count"] == 4


async def test_get_trace_and_errors(xray: FakeHTTP) -> None:
    xray.route("POST", "/Traces", (200, {"Traces": [full_trace()]}), (200, {"Traces": [], "UnprocessedTraceIds": [TRACE]}))
    one = await run("xray_get_trace", {"trace_id": TRACE})
    assert one.ok and one.data["span_count"] == 4
    missing = await run("xray_get_trace", {"trace_id": TRACE})
    assert missing.error == "not_found"
    assert (await run("xray_get_trace", {"trace_id": "../../x"})).error == "invalid_arguments"
    assert (await run("xray_search_traces", {"service": 'a") OR service("b'})).error == "invalid_arguments"
    xray.route("POST", "/TraceSummaries", (400, {"__type": "InvalidRequestException", "message": "bad filter"}))
    bad = await run("xray_search_traces", {"filter_expression": "nonsense ("})
    assert bad.error == "bad_request" and "bad filter" in bad.message and bad.attempts == 1
    xray.route("POST", "/TraceSummaries", (403, {"__type": "AccessDeniedException", "message": "no xray:Get*"}))
    denied = await run("xray_search_traces", {})
    assert denied.error == "forbidden" and CREDS["secret_access_key"] not in denied.model_dump_json()


async def test_without_aws_credentials_is_not_configured() -> None:
    c = ToolContext(integrations={"aws": {"region": "us-east-1"}}, org_id="acme", team_id=uuid.uuid4().hex)
    result = await execute(TOOLS["xray_search_traces"], {}, c)
    assert result.error == "not_configured"
