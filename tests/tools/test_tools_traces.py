"""Tempo, Jaeger and Elasticsearch/OpenSearch tools against a local server that speaks the endpoints
they use: query building, parsing into spans/edges and log lines, bounds, auth headers, egress
refusal and typed failures (no secret in any result)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from security_kit import STRICT, Sentinel

from actors.tools.base import ToolContext, ToolResult
from actors.tools.execute import execute, prepare_arguments
from actors.tools.playbooks import playbook
from actors.tools.registry import TOOLS
from actors.tools.traces import MAX_SPANS
from tests.tools_fakes import FakeHTTP

NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
T0 = NOW - timedelta(minutes=5)
NS0 = int(T0.timestamp() * 1e9)
US0 = int(T0.timestamp() * 1e6)
TRACE = "0af7651916cd43dd8448eb211c80319c"




@pytest.fixture
async def sentinel() -> AsyncIterator[Sentinel]:
    server = await Sentinel().start()
    yield server
    await server.close()


def ctx(**integrations: Any) -> ToolContext:
    return ToolContext(integrations=integrations, org_id="o", team_id="t", clock=lambda: NOW)


async def run(tool: str, args: dict[str, Any], c: ToolContext) -> ToolResult:
    return await execute(TOOLS[tool], args, c, backoff_s=0.001)


# ---- Tempo -------------------------------------------------------------------------------------

def b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def otlp_span(span_id: str, parent: str, name: str, start_ms: float, dur_ms: float, *, error: bool = False,
              attrs: dict[str, str] | None = None) -> dict[str, Any]:
    start = NS0 + int(start_ms * 1e6)
    return {"traceId": b64(TRACE), "spanId": b64(span_id), "parentSpanId": b64(parent) if parent else "",
            "name": name, "kind": "SPAN_KIND_SERVER", "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + int(dur_ms * 1e6)),
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in (attrs or {}).items()],
            "status": {"code": "STATUS_CODE_ERROR"} if error else {}}


def otlp_batch(service: str, *spans: dict[str, Any]) -> dict[str, Any]:
    return {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{"spans": list(spans)}]}


OTLP_TRACE = {"batches": [
    otlp_batch("frontend", otlp_span("a000000000000001", "", "GET /checkout", 0, 5200)),
    otlp_batch("checkout",
               otlp_span("b000000000000002", "a000000000000001", "POST /api/checkout", 10, 5100, error=True),
               otlp_span("c000000000000003", "b000000000000002", "postgres.query", 20, 4900,
                         attrs={"db.system": "postgresql", "peer.service": "postgres"})),
]}


def tempo(http: FakeHTTP) -> ToolContext:
    return ctx(tempo={"url": http.url, "token": "tempo-token-123", "tenant": "team-a"})


async def test_tempo_search_fetches_the_slowest_traces(http: FakeHTTP) -> None:
    other = "1" * 32
    http.route("GET", "/api/search", (200, {"traces": [
        {"traceID": other, "rootServiceName": "frontend", "rootTraceName": "GET /", "durationMs": 40,
         "startTimeUnixNano": str(NS0)},
        {"traceID": TRACE, "rootServiceName": "frontend", "rootTraceName": "GET /checkout", "durationMs": 5200,
         "startTimeUnixNano": str(NS0)}]}))
    http.route("GET", f"/api/traces/{TRACE}", (200, OTLP_TRACE))
    result = await run("tempo_search_traces", {"service": "checkout", "min_duration_ms": 500, "limit": 10,
                                               "fetch_traces": 1}, tempo(http))
    assert result.ok, result.message
    search = http.calls("/api/search")[0]
    assert search.arg("tags") == 'service.name="checkout"' and search.arg("minDuration") == "500ms"
    assert search.arg("limit") == "10" and int(search.arg("end")) == int(NOW.timestamp())
    assert int(search.arg("start")) == int((NOW - timedelta(minutes=60)).timestamp())
    assert search.headers["Authorization"] == "Bearer tempo-token-123" and search.headers["X-Scope-OrgID"] == "team-a"
    assert http.calls(f"/api/traces/{other}") == []                     # only the slowest one is fetched
    data = result.data
    assert [t["trace_id"] for t in data["traces"]] == [other, TRACE]
    assert data["traces"][1]["error"] is True and data["traces"][1]["span_count"] == 3
    spans = {s.span_id: s for s in result.evidence.spans}
    assert spans["b000000000000002"].parent_id == "a000000000000001" and spans["b000000000000002"].status == "error"
    assert spans["b000000000000002"].entity == "checkout" and spans["a000000000000001"].duration_ms == 5200
    assert spans["c000000000000003"].trace_id == TRACE
    assert data["slow_spans"][0]["operation"] == "postgres.query"     # most self time, not the root
    assert [e["operation"] for e in data["error_spans"]] == ["POST /api/checkout"]
    assert data["edges"] == [{"caller": "checkout", "callee": "postgres", "calls": 1, "errors": 0},
                             {"caller": "frontend", "callee": "checkout", "calls": 1, "errors": 1}]
    assert {(e.caller, e.callee) for e in result.evidence.topology} == {("frontend", "checkout"), ("checkout", "postgres")}
    assert "errors in checkout" in result.summary and "frontend→checkout×1" in result.summary


async def test_tempo_traceql_and_get_trace(http: FakeHTTP) -> None:
    http.route("GET", "/api/search", (200, {"traces": []}))
    http.route("GET", f"/api/traces/{TRACE}", (200, OTLP_TRACE))
    query = '{ resource.service.name = "checkout" && status = error }'
    listed = await run("tempo_search_traces", {"query": query, "service": "ignored"}, tempo(http))
    assert listed.ok and listed.data["traces"] == [] and "0 traces" in listed.summary
    req = http.calls("/api/search")[0]
    assert req.arg("q") == query and req.arg("tags") is None
    one = await run("tempo_get_trace", {"trace_id": TRACE.upper()}, tempo(http))
    assert one.ok and one.data["span_count"] == 3 and len(one.evidence.spans) == 3


async def test_tempo_rejects_a_trace_id_that_is_a_path(http: FakeHTTP) -> None:
    result = await run("tempo_get_trace", {"trace_id": "../../api/echo"}, tempo(http))
    assert result.error == "invalid_arguments" and http.requests == []


async def test_tempo_unknown_trace_and_missing_url(http: FakeHTTP) -> None:
    http.route("GET", f"/api/traces/{TRACE}", (404, "trace not found"))
    assert (await run("tempo_get_trace", {"trace_id": TRACE}, tempo(http))).error == "not_found"
    assert (await run("tempo_get_trace", {"trace_id": TRACE}, ctx(tempo={"token": "x"}))).error == "not_configured"


async def test_a_huge_trace_is_bounded(http: FakeHTTP) -> None:
    spans = [otlp_span("a000000000000001", "", "root", 0, 9000)]
    spans += [otlp_span(f"{i:016x}", "a000000000000001", f"op{i}", 1, 1 + i % 7) for i in range(2, 1501)]
    http.route("GET", f"/api/traces/{TRACE}", (200, {"batches": [otlp_batch("checkout", *spans)]}))
    result = await run("tempo_get_trace", {"trace_id": TRACE}, tempo(http))
    assert result.ok and result.truncated
    assert result.data["span_count"] == 1500 and result.data["spans_truncated"] is True
    assert len(result.evidence.spans) == MAX_SPANS and len(result.data["spans"]) <= MAX_SPANS
    assert "a000000000000001" in {s.span_id for s in result.evidence.spans}    # the slowest span is kept
    assert result.result_size <= 64 * 1024


# ---- Jaeger ------------------------------------------------------------------------------------

def jaeger_span(span_id: str, parent: str, op: str, proc: str, start_ms: float, dur_ms: float,
                **tags: Any) -> dict[str, Any]:
    return {"traceID": TRACE, "spanID": span_id, "operationName": op, "processID": proc,
            "references": [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": parent}] if parent else [],
            "startTime": US0 + int(start_ms * 1000), "duration": int(dur_ms * 1000),
            "tags": [{"key": k, "type": "bool" if isinstance(v, bool) else "string", "value": v}
                     for k, v in tags.items()]}


JAEGER_TRACE = {"traceID": TRACE, "processes": {"p1": {"serviceName": "frontend"}, "p2": {"serviceName": "checkout"},
                                                "p3": {"serviceName": "payments"}},
                "spans": [jaeger_span("s1", "", "GET /checkout", "p1", 0, 3000),
                          jaeger_span("s2", "s1", "POST /api/checkout", "p2", 5, 2900, error=True),
                          jaeger_span("s3", "s2", "POST /charge", "p3", 10, 2500, **{"http.status_code": "503"}),
                          jaeger_span("s4", "s2", "SELECT orders", "p2", 2600, 200, **{"db.system": "postgresql"})]}


def jaeger(http: FakeHTTP) -> ToolContext:
    return ctx(jaeger={"url": http.url, "username": "jaeger", "password": "jaeger-pass-123"})


async def test_jaeger_search(http: FakeHTTP) -> None:
    http.route("GET", "/api/traces", (200, {"data": [JAEGER_TRACE], "total": 1, "errors": None}))
    result = await run("jaeger_search_traces", {"service": "checkout", "operation": "POST /api/checkout",
                                                "errors_only": True, "since_minutes": 30, "limit": 5}, jaeger(http))
    assert result.ok, result.message
    req = http.calls("/api/traces")[0]
    assert req.arg("service") == "checkout" and req.arg("operation") == "POST /api/checkout"
    assert req.arg("tags") == '{"error": "true"}' and req.arg("limit") == "5"
    assert int(req.arg("end")) == int(NOW.timestamp() * 1e6)
    assert int(req.arg("start")) == int((NOW - timedelta(minutes=30)).timestamp() * 1e6)
    assert req.headers["Authorization"].startswith("Basic ")
    spans = {s.span_id: s for s in result.evidence.spans}
    assert (spans["s3"].entity, spans["s3"].parent_id, spans["s3"].status) == ("payments", "s2", "error")
    assert spans["s2"].status == "error" and spans["s4"].status == "" and spans["s1"].duration_ms == 3000
    assert spans["s1"].start == T0
    data = result.data
    assert data["traces"][0] == {"trace_id": TRACE, "root_service": "frontend", "root_operation": "GET /checkout",
                                 "start": "2025-03-14T14:55:00Z", "duration_ms": 3000.0, "error": True,
                                 "span_count": 4}
    assert data["slow_spans"][0]["operation"] == "POST /charge" and data["slow_spans"][0]["self_ms"] == 2500
    assert {(e["caller"], e["callee"], e["calls"], e["errors"]) for e in data["edges"]} == {
        ("frontend", "checkout", 1, 1), ("checkout", "payments", 1, 1), ("checkout", "postgresql", 1, 0)}


async def test_jaeger_get_trace_and_unknown_trace(http: FakeHTTP) -> None:
    http.route("GET", f"/api/traces/{TRACE}", (200, {"data": [JAEGER_TRACE]}))
    result = await run("jaeger_get_trace", {"trace_id": TRACE}, jaeger(http))
    assert result.ok and len(result.evidence.spans) == 4
    http.route("GET", "/api/traces/" + "f" * 32, (200, {"data": [], "errors": [{"code": 404,
                                                                                  "msg": "trace not found"}]}))
    missing = await run("jaeger_get_trace", {"trace_id": "f" * 32}, jaeger(http))
    assert missing.error == "not_found" and "trace not found" in missing.message


async def test_jaeger_needs_a_service() -> None:
    result = await run("jaeger_search_traces", {}, ctx(jaeger={"url": "http://127.0.0.1:9"}))
    assert result.error == "invalid_arguments" and "service" in result.message


# ---- Elasticsearch / OpenSearch ----------------------------------------------------------------

HITS = {"took": 3, "timed_out": False, "_shards": {"total": 1, "failed": 0}, "hits": {
    "total": {"value": 1234, "relation": "eq"}, "hits": [
        {"_index": "logs-2025.03.14", "_source": {"@timestamp": "2025-03-14T14:58:00Z", "message": "pool exhausted",
                                                  "service": {"name": "checkout"}, "log": {"level": "ERROR"},
                                                  "kubernetes": {"pod": {"name": "checkout-7d9-1"}}}},
        {"_index": "logs-2025.03.14", "_source": {"@timestamp": "2025-03-14T14:57:00Z",
                                                  "message": "WARN retrying payment",
                                                  "kubernetes.pod.name": "payments-1"}}]}}


def es(http: FakeHTTP, **extra: Any) -> ToolContext:
    return ctx(elasticsearch={"url": http.url, "api_key": "es-api-key-123", **extra})


async def test_elasticsearch_search(http: FakeHTTP) -> None:
    http.route("POST", "/logs-*/_search", (200, HITS))
    result = await run("elasticsearch_search_logs", {"query": "service.name:checkout AND error", "limit": 50,
                                                     "since_minutes": 15}, es(http))
    assert result.ok, result.message
    req = http.calls("/logs-*/_search")[0]
    assert req.headers["Authorization"] == "ApiKey es-api-key-123"
    body = req.json()
    assert body["size"] == 50 and body["sort"] == [{"@timestamp": {"order": "desc"}}]
    assert body["query"]["bool"]["must"][0]["query_string"]["query"] == "service.name:checkout AND error"
    assert body["query"]["bool"]["filter"][0]["range"]["@timestamp"]["lte"] == "2025-03-14T15:00:00Z"
    assert body["query"]["bool"]["filter"][0]["range"]["@timestamp"]["gte"] == "2025-03-14T14:45:00Z"
    first, second = result.evidence.logs
    assert (first.entity, first.level, first.text) == ("checkout", "error", "pool exhausted")
    assert (second.entity, second.level) == ("payments-1", "warning")     # no service: the pod names it
    assert result.data["total"] == 1234 and result.data["lines"][0] == {
        "timestamp": "2025-03-14T14:58:00Z", "service": "checkout", "pod": "checkout-7d9-1", "level": "error",
        "message": "pool exhausted"}
    assert "2 of 1234 log lines (1 errors)" in result.summary


async def test_opensearch_with_basic_auth_custom_fields_and_index(http: FakeHTTP) -> None:
    http.route("POST", "/app-logs/_search", (200, {"timed_out": True, "hits": {"total": 1, "hits": [
        {"_source": {"ts": "2025-03-14T14:59:00Z", "msg": "boom", "app": "cart", "severity": "fatal"}}]}}))
    c = ctx(elasticsearch={"url": http.url, "username": "os", "password": "os-pass-123", "index": "ignored",
                           "timestamp_field": "ts", "message_field": "msg", "service_field": "app",
                           "level_field": "severity"})
    result = await run("elasticsearch_search_logs", {"query": None, "index": "app-logs", "limit": 10_000}, c)
    assert result.error == "invalid_arguments"                           # the schema bounds the size
    result = await run("elasticsearch_search_logs", {"index": "app-logs"}, c)
    assert result.ok and result.evidence.logs[0].entity == "cart" and result.evidence.logs[0].level == "fatal"
    req = http.calls("/app-logs/_search")[0]
    assert req.headers["Authorization"].startswith("Basic ") and req.json()["size"] == 100
    assert req.json()["query"]["bool"]["must"][0]["query_string"]["query"] == "*"
    assert req.json()["sort"] == [{"ts": {"order": "desc"}}]
    assert result.data["partial"] is True and "partial" in result.summary


@pytest.mark.parametrize("index", ["_cluster", "logs/_doc", "a?b", "../x", "_all"])
async def test_elasticsearch_index_is_never_a_path(http: FakeHTTP, index: str) -> None:
    result = await run("elasticsearch_search_logs", {"index": index}, es(http))
    assert result.error == "invalid_arguments" and http.requests == []


async def test_elasticsearch_bad_query_is_bad_request(http: FakeHTTP) -> None:
    http.route("POST", "/logs-*/_search", (400, {"error": {"root_cause": [{"type": "query_shard_exception",
                                                                          "reason": "Failed to parse query"}]},
                                                 "status": 400}))
    result = await run("elasticsearch_search_logs", {"query": "service:("}, es(http))
    assert result.error == "bad_request" and "Failed to parse query" in result.message and result.attempts == 1


# ---- shared failure paths ----------------------------------------------------------------------

CASES = [
    ("tempo_search_traces", {"service": "checkout"}, "GET", "/api/search",
     lambda url: {"tempo": {"url": url, "token": "tempo-secret-token-1"}}),
    ("jaeger_search_traces", {"service": "checkout"}, "GET", "/api/traces",
     lambda url: {"jaeger": {"url": url, "token": "jaeger-secret-token-1"}}),
    ("elasticsearch_search_logs", {"query": "error"}, "POST", "/logs-*/_search",
     lambda url: {"elasticsearch": {"url": url, "api_key": "es-secret-token-1"}}),
]
IDS = [c[0] for c in CASES]


def _secret(integrations: dict[str, Any]) -> str:
    (block,) = integrations.values()
    return next(v for k, v in block.items() if k in ("token", "api_key"))


@pytest.mark.parametrize("tool, args, method, path, config", CASES, ids=IDS)
async def test_5xx_is_retried_then_unavailable(http: FakeHTTP, tool: str, args: dict, method: str, path: str,
                                               config: Any) -> None:
    integrations = config(http.url)
    http.route(method, path, (503, f"upstream down, you sent {_secret(integrations)}"))
    result = await run(tool, args, ctx(**integrations))
    assert result.error == "unavailable" and result.attempts == TOOLS[tool].retries + 1
    assert len(http.calls(path)) == TOOLS[tool].retries + 1
    assert _secret(integrations) not in result.model_dump_json()


@pytest.mark.parametrize("tool, args, method, path, config", CASES, ids=IDS)
async def test_slow_upstream_is_a_timeout(http: FakeHTTP, tool: str, args: dict, method: str, path: str,
                                          config: Any) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    http.route(method, path, slow)
    spec = dataclasses.replace(TOOLS[tool], timeout_s=0.2)
    try:
        result = await execute(spec, args, ctx(**config(http.url)), backoff_s=0.001)
    finally:
        release.set()
    assert result.error == "timeout" and result.attempts == 1


@pytest.mark.parametrize("tool, args, method, path, config", CASES, ids=IDS)
async def test_unauthorized(http: FakeHTTP, tool: str, args: dict, method: str, path: str, config: Any) -> None:
    http.route(method, path, (401, {"error": "invalid credentials"}))
    integrations = config(http.url)
    result = await run(tool, args, ctx(**integrations))
    assert result.error == "unauthorized" and result.attempts == 1
    assert _secret(integrations) not in result.model_dump_json()


@pytest.mark.parametrize("tool, args, method, path, config", CASES, ids=IDS)
async def test_egress_policy_refuses_an_internal_url(sentinel: Sentinel, tool: str, args: dict, method: str,
                                                     path: str, config: Any) -> None:
    integrations = config(f"http://127.0.0.1:{sentinel.port}")
    c = ToolContext(integrations=integrations, org_id="o", team_id="t", clock=lambda: NOW, egress=STRICT)
    result = await execute(TOOLS[tool], args, c, backoff_s=0.001)
    assert result.error == "egress_refused" and "loopback" in result.message and result.attempts == 1
    assert sentinel.requests == [] and _secret(integrations) not in result.model_dump_json()


# ---- offline playbooks -------------------------------------------------------------------------

@pytest.mark.parametrize("available, agent, tool", [
    ({"tempo_search_traces", "xray_search_traces"}, "metrics", "tempo_search_traces"),
    ({"xray_search_traces"}, "metrics", "xray_search_traces"),
    ({"elasticsearch_search_logs"}, "logs", "elasticsearch_search_logs"),
])
def test_live_teams_without_the_demo_map_ask_their_traces_and_logs(available: set[str], agent: str,
                                                                   tool: str) -> None:
    calls = playbook(agent, available=available, window=2 * 24 * 60)
    assert [name for name, _ in calls] == [tool]
    prepare_arguments(TOOLS[tool], calls[0][1])          # the playbook's arguments fit the schema
