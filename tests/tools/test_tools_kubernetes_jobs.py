"""``kubernetes_list_jobs`` on the official client against a local server speaking the batch API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from actors.tools.base import ToolContext, ToolResult
from actors.tools.demo.backend import answer
from actors.tools.demo.world import build_world
from actors.tools.execute import execute
from actors.tools.playbooks import playbook
from actors.tools.registry import TOOLS
from tests.kube_api_kit import kube_ctx
from tests.tls_certs import local_pki
from tests.tools_fakes import FakeHTTP

NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)


def job(name: str, *, conditions: list[dict[str, Any]], failed: int = 0, succeeded: int = 0,
        active: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "batch", "uid": f"uid-{name}"},
        "spec": {"backoffLimit": 1, "completions": 1, "template": {"spec": {
            "containers": [{"name": "main", "image": f"reg/{name}:2"}], "restartPolicy": "Never"}}},
        "status": {"conditions": conditions, "failed": failed, "succeeded": succeeded, "active": active,
                   "startTime": "2025-03-14T14:40:00Z"},
    }


JOBS = {"kind": "JobList", "apiVersion": "batch/v1", "metadata": {}, "items": [
    job("nightly-export", failed=2, conditions=[{
        "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit"}]),
    job("reindex", succeeded=1, conditions=[{"type": "Complete", "status": "True"}]),
    job("warmup", active=1, conditions=[]),
]}


@pytest.fixture
async def kube() -> AsyncIterator[FakeHTTP]:
    fake = FakeHTTP()
    await fake.start(ssl_context=local_pki().server_context())
    fake.route("GET", "/apis/batch/v1/namespaces/batch/jobs", (200, JOBS))
    fake.route("GET", "/apis/batch/v1/jobs", (200, JOBS))
    yield fake
    await fake.close()



async def run(args: dict[str, Any], c: ToolContext) -> ToolResult:
    return await execute(TOOLS["kubernetes_list_jobs"], args, c, backoff_s=0.001)


async def test_a_failed_job_carries_its_failure_reason_and_message(kube: FakeHTTP) -> None:
    result = await run({"namespace": "batch"}, kube_ctx(kube))
    assert result.ok, result.message
    failed, done, running = result.evidence.objects
    assert (failed.kind, failed.namespace, failed.name, failed.status) == ("Job", "batch", "nightly-export", "Failed")
    assert failed.reasons == ["BackoffLimitExceeded"] and failed.ready == "0/1"
    assert failed.message == "BackoffLimitExceeded: Job has reached the specified backoff limit"
    assert failed.extra["pods"]["failed"] == 2 and failed.extra["backoff_limit"] == 1
    assert (done.status, done.reasons, done.ready) == ("Complete", [], "1/1")
    assert running.status == "Running"
    assert "1 failed" in result.summary and "backoff limit" in result.summary
    assert result.data[0]["message"] == failed.message


async def test_all_namespaces_and_a_denial(kube: FakeHTTP) -> None:
    everywhere = await run({}, kube_ctx(kube))
    assert everywhere.ok and len(everywhere.evidence.objects) == 3 and kube.calls("/apis/batch/v1/jobs")
    kube.route("GET", "/apis/batch/v1/namespaces/batch/jobs", (403, {"kind": "Status", "code": 403,
                                                                     "message": "jobs is forbidden"}))
    assert (await run({"namespace": "batch"}, kube_ctx(kube))).error == "forbidden"


def test_the_demo_world_answers_with_no_jobs_and_the_kubernetes_playbook_lists_them() -> None:
    result = answer("kubernetes_list_jobs", {"namespace": None, "label_selector": None, "limit": 50}, build_world())
    assert result.ok and result.data == [] and result.summary.startswith("0 jobs")
    assert "kubernetes_list_jobs" in [t for t, _ in playbook("kubernetes", window=60)]
