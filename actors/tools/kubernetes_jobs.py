"""``kubernetes_list_jobs``: batch Jobs with their outcome.

One list call (``batch/v1`` jobs, through :func:`actors.tools.kubernetes_tools.api_call`: same
credentials, egress check and error mapping) returns one ``Job`` :class:`ObjectState` per job:
status ``Failed`` / ``Complete`` / ``Suspended`` / ``Running`` from its conditions, ``ready`` as
succeeded/completions, ``reasons`` the reason of a true ``Failed`` condition (``BackoffLimitExceeded``,
``DeadlineExceeded``…) and ``message`` that condition's message ("Job has reached the specified backoff
limit"), so the ranker and the RCA can quote why the job failed. ``extra`` holds the pod counts and
``backoffLimit``. Needs ``list`` on ``jobs`` (``batch``); a denial is ``forbidden``.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolResult, ToolSpec, spec_builder
from actors.tools.convert import iso
from actors.tools.kubernetes_tools import TIMEOUT_S, api_call
from incidentfox.evidence import EvidenceBundle, ObjectState

_STATUS = (("Failed", "Failed"), ("Complete", "Complete"), ("Suspended", "Suspended"))


def job_state(job: Any) -> ObjectState:
    """A Job (the client's ``V1Job``) as evidence."""
    spec, st = job.spec, job.status
    true = [c for c in (st.conditions or []) if c.status == "True"]
    by_type = {c.type: c for c in true}
    status = next((label for kind, label in _STATUS if kind in by_type), "Running" if st.active else "Pending")
    failed = by_type.get("Failed")
    reasons = [failed.reason] if failed is not None and failed.reason else []
    message = ""
    if failed is not None:
        message = f"{failed.reason}: {failed.message}" if failed.reason and failed.message else (failed.message or "")
    containers = spec.template.spec.containers or []
    return ObjectState(
        namespace=job.metadata.namespace or "",
        kind="Job",
        name=job.metadata.name,
        status=status,
        ready=f"{st.succeeded or 0}/{spec.completions if spec.completions is not None else 1}",
        reasons=reasons,
        image=containers[0].image if containers else "",
        message=message[:500],
        extra={"pods": {"active": st.active or 0, "succeeded": st.succeeded or 0, "failed": st.failed or 0},
               "backoff_limit": spec.backoff_limit, "started_at": iso(st.start_time),
               "completed_at": iso(st.completion_time)},
    )


async def list_jobs(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    ns, selector, limit = args["namespace"], args["label_selector"] or "", args["limit"] or 200

    def fetch(api: k8s.ApiClient, t: tuple[float, float]) -> Any:
        batch = k8s.BatchV1Api(api)
        kw: dict[str, Any] = {"label_selector": selector, "limit": limit, "_request_timeout": t}
        return batch.list_namespaced_job(ns, **kw) if ns else batch.list_job_for_all_namespaces(**kw)

    states = [job_state(j) for j in (await api_call(ctx, fetch)).items]
    data = [{"namespace": o.namespace, "name": o.name, "status": o.status, "succeeded": o.ready,
             "failed": o.extra["pods"]["failed"], "backoff_limit": o.extra["backoff_limit"],
             "reasons": o.reasons, "message": o.message} for o in states]
    bad = [o for o in states if o.status == "Failed"]
    return ToolResult.success(
        data, evidence=EvidenceBundle(objects=states),
        summary=f"{len(states)} jobs, {len(bad)} failed"
        + (f": {', '.join(f'{o.name} ({o.message or o.status})' for o in bad[:5])}" if bad else ""),
    )


_spec = spec_builder(category="kubernetes", integration="kubernetes", timeout_s=TIMEOUT_S)

SPECS: list[ToolSpec] = [
    _spec(
        "kubernetes_list_jobs",
        list_jobs,
        "List batch Jobs with their status (Running, Complete, Failed), succeeded/failed pod counts, "
        "backoff limit and, for a failed job, why it failed (e.g. BackoffLimitExceeded).",
        s.obj(
            namespace=s.string("Namespace; null means all namespaces.", nullable=True, max_length=253),
            label_selector=s.string("Label selector, e.g. `app=report` (null: no filter).", nullable=True),
            limit=s.LIMIT,
        ),
    ),
]
