"""execute(): validation, approval gate, timeouts, retries, cancellation, masking and size bounds."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, TransientToolError
from actors.tools.execute import execute, mask_arguments
from actors.tools.registry import TOOLS
from incidentfox.evidence import EvidenceBundle, LogLine

PARAMS = s.obj(query=s.string("q"), limit=s.LIMIT)
CTX = {"prometheus": {"url": "http://127.0.0.1:9", "token": "tok-SECRET-123456"}}


class Backend:
    """A scripted backend: raises the queued exceptions in order, then returns ``result``."""

    def __init__(self, *failures: BaseException, result: ToolResult | None = None) -> None:
        self.failures = list(failures)
        self.calls: list[dict[str, Any]] = []
        self.result = result or ToolResult.success({"rows": 1}, summary="one row")

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        self.calls.append(args)
        if self.failures:
            raise self.failures.pop(0)
        return self.result


def spec(fn: Any, **kw: Any) -> ToolSpec:
    base = {"name": "t_query", "description": "d", "parameters": PARAMS, "category": "metrics",
            "integration": "prometheus", "fn": fn, "timeout_s": 2.0, "retries": 2}
    return ToolSpec(**(base | kw))


def ctx(**kw: Any) -> ToolContext:
    return ToolContext(integrations=kw.pop("integrations", CTX), org_id="o1", team_id="t1", **kw)


async def test_valid_call_fills_omitted_nullable_arguments() -> None:
    backend = Backend()
    result = await execute(spec(backend), {"query": "up"}, ctx(), backoff_s=0)
    assert result.ok and result.status == "ok" and result.attempts == 1
    assert backend.calls == [{"query": "up", "limit": None}]
    assert result.result_size > 0 and result.duration_s >= 0


@pytest.mark.parametrize("args, where", [
    ({}, "query"),                                      # required, non-nullable, missing
    ({"query": 5}, "query"),                            # wrong type
    ({"query": "up", "limit": 0}, "limit"),             # below minimum
    ({"query": "up", "extra": 1}, "extra"),             # additionalProperties: false
    ("not an object", "object"),
])
async def test_invalid_arguments_never_reach_the_backend(args: Any, where: str) -> None:
    backend = Backend()
    result = await execute(spec(backend), args, ctx())
    assert not result.ok and result.error == "invalid_arguments" and result.status == "error"
    assert where in result.message
    assert backend.calls == []


async def test_mutating_tool_is_refused_without_approval_and_runs_with_it() -> None:
    backend = Backend()
    mutating = spec(backend, mutating=True)
    refused = await execute(mutating, {"query": "restart token=xoxb-1234567890-abcdef"}, ctx())
    assert not refused.ok and refused.error == "approval_required"
    assert backend.calls == []
    assert "xoxb-" not in str(refused.data) and refused.data["tool"] == "t_query"
    approved = await execute(mutating, {"query": "restart"}, ctx(), approved=True)
    assert approved.ok and len(backend.calls) == 1


async def test_timeout_is_typed_and_not_retried() -> None:
    never = asyncio.Event()
    calls = 0

    async def hang(args: dict[str, Any], c: ToolContext) -> ToolResult:
        nonlocal calls
        calls += 1
        await never.wait()
        raise AssertionError("unreachable")

    result = await execute(spec(hang, timeout_s=0.05), {"query": "up"}, ctx())
    assert result.error == "timeout" and result.status == "timeout" and result.attempts == 1
    assert calls == 1


@pytest.mark.parametrize("failure", [
    TransientToolError("upstream_unavailable", "503"),
    httpx.ConnectError("refused"),
    httpx.HTTPStatusError("boom", request=httpx.Request("GET", "http://x"),
                          response=httpx.Response(502, request=httpx.Request("GET", "http://x"))),
])
async def test_transient_failures_are_retried_then_succeed(failure: BaseException) -> None:
    backend = Backend(failure, failure)
    result = await execute(spec(backend), {"query": "up"}, ctx(), backoff_s=0.001)
    assert result.ok and result.attempts == 3 and len(backend.calls) == 3


async def test_retries_are_bounded() -> None:
    backend = Backend(*[TransientToolError("rate_limited", "429")] * 10)
    result = await execute(spec(backend, retries=2), {"query": "up"}, ctx(), backoff_s=0.001)
    assert not result.ok and result.error == "unavailable" and result.attempts == 3
    assert "rate_limited" in result.message and len(backend.calls) == 3


async def test_permanent_errors_are_not_retried() -> None:
    backend = Backend(ToolError("not_found", "no such series"))
    result = await execute(spec(backend), {"query": "up"}, ctx(), backoff_s=0.001)
    assert result.error == "not_found" and result.attempts == 1 and len(backend.calls) == 1


async def test_cancellation_propagates_and_reaches_the_backend() -> None:
    started, cleaned = asyncio.Event(), asyncio.Event()

    async def slow(args: dict[str, Any], c: ToolContext) -> ToolResult:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()
        raise AssertionError("unreachable")

    task = asyncio.create_task(execute(spec(slow, timeout_s=30), {"query": "up"}, ctx()))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned.is_set()


async def test_cancellation_during_backoff_propagates() -> None:
    backend = Backend(*[TransientToolError("upstream_unavailable")] * 5)
    task = asyncio.create_task(execute(spec(backend, retries=5), {"query": "up"}, ctx(), backoff_s=30))
    while not backend.calls:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(backend.calls) == 1


async def test_backend_bug_becomes_typed_failure() -> None:
    backend = Backend(KeyError("items"))
    result = await execute(spec(backend), {"query": "up"}, ctx())
    assert result.error == "internal_error" and "KeyError" in result.message


async def test_credentials_are_masked_in_messages() -> None:
    backend = Backend(ToolError("bad_request", "rejected header Bearer tok-SECRET-123456 for tok-SECRET-123456"))
    result = await execute(spec(backend), {"query": "up"}, ctx())
    assert "tok-SECRET-123456" not in result.message + result.summary
    assert "***" in result.message


async def test_unconfigured_integration_is_typed() -> None:
    result = await execute(spec(Backend()), {"query": "up"}, ctx(integrations={}))
    assert result.error == "not_configured" and "prometheus" in result.message


async def test_demo_integration_serves_a_live_tool_name() -> None:
    tool = TOOLS["kubernetes_list_pods"]
    result = await execute(tool, {}, ctx(integrations={"demo": {"latency_ms": 0}}))
    assert result.ok and result.evidence.objects
    assert {o.kind for o in result.evidence.objects} == {"Pod"}


async def test_results_are_bounded() -> None:
    big = [{"line": "x" * 200, "n": i} for i in range(20_000)]
    logs = [LogLine(entity="svc", text=f"line {i}") for i in range(2000)]
    backend = Backend(result=ToolResult.success(big, evidence=EvidenceBundle(logs=logs)))
    result = await execute(spec(backend), {"query": "up"}, ctx(), max_bytes=32 * 1024)
    assert result.ok and result.truncated
    assert result.result_size <= 32 * 1024 and 0 < len(result.data) < len(big)
    assert len(result.evidence.logs) == 500


def test_mask_arguments() -> None:
    args = {
        "query": "rate(x[5m])",
        "api_key": "abc",
        "nested": {"password": "hunter2", "list": ["xoxb-1234567890-abcdef", "AKIAABCDEFGHIJKLMNOP"]},
        "note": "header Authorization: Bearer abc.def.ghi-jkl and a known SECRETVALUE",
        "kubeconfig": None,
        "limit": 5,
    }
    masked = mask_arguments(args, secrets=["SECRETVALUE"])
    assert masked["query"] == "rate(x[5m])" and masked["limit"] == 5
    assert masked["api_key"] == "***" and masked["nested"]["password"] == "***"
    assert masked["nested"]["list"] == ["***", "***"]
    assert "abc.def" not in masked["note"] and "SECRETVALUE" not in masked["note"]
    assert masked["kubeconfig"] is None
    assert args["api_key"] == "abc"      # the input is not mutated


def test_context_repr_and_secret_values() -> None:
    c = ctx()
    assert "tok-SECRET" not in repr(c) and "prometheus" in repr(c)
    assert "tok-SECRET-123456" in c.secret_values()
    assert "http://127.0.0.1:9" not in c.secret_values()


async def test_escaped_http_status_errors_are_mapped() -> None:
    request = httpx.Request("GET", "http://x")
    backend = Backend(httpx.HTTPStatusError("gone", request=request, response=httpx.Response(404, request=request)))
    result = await execute(spec(backend), {"query": "up"}, ctx())
    assert result.error == "not_found" and result.attempts == 1
