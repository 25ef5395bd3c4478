"""``kubernetes_rollback_deployment``: what ``kubectl rollout undo`` does, as one mutating tool.

The deployment's ReplicaSets (owned by it, ``deployment.kubernetes.io/revision`` annotation) are its
revisions. The rollback copies the pod template of revision ``to_revision`` (null: the highest
revision below the current one) into the deployment, without the ``pod-template-hash`` label
Kubernetes adds to ReplicaSets, and Kubernetes rolls the pods out again. Mutating: runs only after
a human approves it (:mod:`actors.tools.execute`), through the same credentials, egress check and
error mapping as every Kubernetes tool (:func:`actors.tools.kubernetes_tools.api_call`).

``expected_revision`` guards against acting on a moved target: when given and the deployment's
current revision differs (someone deployed since the RCA was written), nothing changes and the call
fails with ``conflict``. Needs ``get`` on deployments, ``list`` on replicasets and ``patch`` on
deployments (``apps``); a denial is ``forbidden``.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, spec_builder
from actors.tools.kubernetes_tools import TIMEOUT_S, api_call
from incidentfox.evidence import EvidenceBundle

REVISION = "deployment.kubernetes.io/revision"


def _revision(obj: Any) -> int:
    try:
        return int(((obj.metadata.annotations or {}).get(REVISION)) or 0)
    except ValueError:
        return 0


def pick_revision(current: int, available: list[int], to_revision: int | None) -> int:
    """The revision to roll back to: ``to_revision`` if it exists, else the highest below ``current``.
    ``ToolError`` (``not_found``) when there is none."""
    if to_revision is not None:
        if to_revision not in available or to_revision == current:
            raise ToolError("not_found", f"revision {to_revision} is not an earlier revision of this deployment")
        return to_revision
    earlier = [r for r in available if r < current]
    if not earlier:
        raise ToolError("not_found", f"no revision before revision {current} to roll back to")
    return max(earlier)


async def rollback_deployment(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    ns, dep = args["namespace"], args["deployment"]

    def call(api: k8s.ApiClient, t: tuple[float, float]) -> dict[str, Any]:
        apps = k8s.AppsV1Api(api)
        deployment = apps.read_namespaced_deployment(dep, ns, _request_timeout=t)
        current = _revision(deployment)
        if args["expected_revision"] is not None and current != args["expected_revision"]:
            raise ToolError("conflict", f"{ns}/{dep} is at revision {current}, not {args['expected_revision']}; "
                                        "nothing was changed")
        owned = [rs for rs in apps.list_namespaced_replica_set(ns, _request_timeout=t).items
                 if any(o.kind == "Deployment" and o.name == dep for o in rs.metadata.owner_references or [])]
        by_revision = {_revision(rs): rs for rs in owned}
        target = pick_revision(current, sorted(by_revision), args["to_revision"])
        template = api.sanitize_for_serialization(by_revision[target].spec.template)
        labels = (template.get("metadata") or {}).get("labels") or {}
        labels.pop("pod-template-hash", None)
        body = {"spec": {"template": template}}
        apps.patch_namespaced_deployment(dep, ns, body, _request_timeout=t)
        images = [c.get("image", "") for c in (template.get("spec") or {}).get("containers") or []]
        return {"deployment": f"{ns}/{dep}", "from_revision": current, "to_revision": target, "images": images}

    data = await api_call(ctx, call)
    line = (f"rolled back {data['deployment']} from revision {data['from_revision']} to revision "
            f"{data['to_revision']} ({', '.join(data['images'])})")
    return ToolResult.success(data, evidence=EvidenceBundle(notes=[line]), summary=line)


_spec = spec_builder(category="kubernetes", integration="kubernetes", timeout_s=TIMEOUT_S)

SPECS: list[ToolSpec] = [
    _spec(
        "kubernetes_rollback_deployment",
        rollback_deployment,
        "Roll a deployment back to an earlier revision's pod template (like `kubectl rollout undo`). "
        "Changes the cluster: runs only after a human approves it.",
        s.obj(
            namespace=s.string("Namespace of the deployment.", max_length=253),
            deployment=s.string("Deployment name.", max_length=253),
            to_revision=s.integer("Revision to roll back to (null: the one before the current).",
                                  nullable=True, minimum=1),
            expected_revision=s.integer("Refuse unless the deployment is at this revision (null: any).",
                                        nullable=True, minimum=1),
        ),
        mutating=True,
        retries=0,
    ),
]
