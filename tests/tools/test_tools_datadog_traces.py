"""``datadog_search_traces`` against a local server speaking the Spans API
(``POST /api/v2/spans/events/search``): request shape, the bounded trace view, egress, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from actors.engine.followups import derive
from actors.tools.base import ToolContext, ToolResult
from actors.tools.demo.backend import answer
from actors.tools.demo.world import build_world
from actors.tools.execute import execute
from actors.tools.registry import TOOLS
from incidentfox.egress import EgressPolicy
from incidentfox.evidence import Alert, EvidenceBundle
from tests.tools_fakes import FakeHTTP

NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
PATH = "/api/v2/spans/events/search"


def span(trace: str, sid: str, parent: str, service: str, resource: str, start: str, end: str,
         **extra: Any) -> dict[str, Any]:
    return {"id": f"AQ{sid}", "type": "spans", "attributes": {
        "trace_id": trace, "span_id": sid, "parent_id": parent, "service": service, "resource_name": resource,
        "start_timestamp": start, "end_timestamp": end, "env": "prod", "host": "ip-10-0-0-1", "type": "web",
        **extra}}


SEARCH = [span("7001", "11", "0", "basket", "POST /basket", "2025-03-14T14:50:00Z", "2025-03-14T14:50:03.200Z"),
          span("7002", "21", "0", "basket", "POST /basket", "2025-03-14T14:51:00Z", "2025-03-14T14:51:00.150Z"),
          span("7003", "31", "0", "basket", "GET /basket", "2025-03-14T14:52:00Z", "2025-03-14T14:52:00.900Z",
               custom={"error": {"type": "TimeoutError", "message": "pricing timed out"}})]
TRACE_7001 = [SEARCH[0],
              span("7001", "12", "11", "pricing", "PriceQuote", "2025-03-14T14:50:00.100Z", "2025-03-14T14:50:03.100Z"),
              span("7001", "13", "12", "pricing", "SELECT prices", "2025-03-14T14:50:00.200Z",
                   "2025-03-14T14:50:03.000Z", custom={"db": {"system": "postgresql"}})]


def spans_api(calls: list[dict[str, Any]]) -> Any:
    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        calls.append(body)
        query = body["data"]["attributes"]["filter"]["query"]
        if query.startswith("trace_id:"):
            data = {"trace_id:7001": TRACE_7001}.get(query, [s for s in SEARCH if f"trace_id:{s['attributes']['trace_id']}" == query])
        else:
            data = SEARCH
        return web.json_response({"data": data, "meta": {"status": "done"}})
    return handle


def dd(url: str, **kw: Any) -> ToolContext:
    return ToolContext(integrations={"datadog": {"api_key": "dd-api-key-1", "app_key": "dd-app-key-1", "api_url": url}},
                       org_id="o", team_id="t", clock=lambda: NOW, **kw)


async def run(args: dict[str, Any], c: ToolContext) -> ToolResult:
    full = {"service": "basket", "query": None, "errors_only": None, "min_duration_ms": None, "since_minutes": 30,
            "limit": 20, "fetch_traces": 1} | args
    return await execute(TOOLS["datadog_search_traces"], full, c, backoff_s=0.001)


async def test_spans_search_then_the_slowest_trace_in_full(http: FakeHTTP) -> None:
    calls: list[dict[str, Any]] = []
    http.route("POST", PATH, spans_api(calls))
    result = await run({"min_duration_ms": 100, "errors_only": False}, dd(http.url))
    assert result.ok, result.message
    first, second = calls
    attrs = first["data"]["attributes"]
    assert first["data"]["type"] == "search_request" and attrs["sort"] == "-timestamp"
    assert attrs["filter"] == {"query": "service:basket @duration:>=100ms", "from": "2025-03-14T14:30:00Z",
                               "to": "2025-03-14T15:00:00Z"}
    assert second["data"]["attributes"]["filter"]["query"] == "trace_id:7001"
    req = http.calls(PATH)[0]
    assert req.headers["DD-API-KEY"] == "dd-api-key-1" and req.headers["DD-APPLICATION-KEY"] == "dd-app-key-1"
    view = result.data
    assert view["slow_spans"][0]["service"] == "pricing" and view["slow_spans"][0]["operation"] == "SELECT prices"
    assert {(e["caller"], e["callee"]) for e in view["edges"]} == {("basket", "pricing"), ("pricing", "postgresql")}
    assert [s["service"] for s in view["error_spans"]] == ["basket"]
    root = next(s for s in result.evidence.spans if s.span_id == "11")
    assert root.parent_id == "" and round(root.duration_ms) == 3200
    db = next(s for s in result.evidence.spans if s.span_id == "13")
    assert db.attributes["db.system"] == "postgresql"
    assert {s.trace_id for s in result.evidence.spans} == {"7001", "7002", "7003"}
    assert "dd-api-key-1" not in json.dumps(result.model_dump(mode="json"))


async def test_errors_only_and_a_query_narrow_the_search(http: FakeHTTP) -> None:
    calls: list[dict[str, Any]] = []
    http.route("POST", PATH, spans_api(calls))
    await run({"errors_only": True, "query": "env:prod", "fetch_traces": 0}, dd(http.url))
    assert [c["data"]["attributes"]["filter"]["query"] for c in calls] == ["service:basket status:error (env:prod)"]


async def test_denied_misconfigured_bad_service_and_egress(http: FakeHTTP) -> None:
    http.route("POST", PATH, (403, {"errors": ["Forbidden"]}))
    assert (await run({}, dd(http.url))).error == "forbidden"
    no_keys = ToolContext(integrations={"datadog": {"api_key": "k"}}, clock=lambda: NOW)
    assert (await run({}, no_keys)).error == "not_configured"
    assert (await run({"service": "a b"}, dd(http.url))).error == "invalid_arguments"
    http.requests.clear()
    refused = await run({}, dd(http.url, egress=EgressPolicy.build(allow=["public.example.com"])))
    assert refused.error == "egress_refused" and http.requests == []


def test_the_demo_world_and_the_latency_follow_up_use_it() -> None:
    demo = answer("datadog_search_traces", {"service": "checkout", "query": None, "errors_only": None,
                                            "min_duration_ms": None, "since_minutes": 30, "limit": 5,
                                            "fetch_traces": 1}, build_world())
    assert demo.ok and demo.evidence.spans
    bundle = EvidenceBundle(alert=Alert(title="basket p99 latency high", entity="basket"))
    (f,) = derive(bundle, available={"datadog_search_traces"}, window_minutes=30)
    assert (f.tool, f.args["service"]) == ("datadog_search_traces", "basket")
