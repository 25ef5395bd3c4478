"""``kubernetes_list_volume_claims``: PersistentVolumeClaims and whether storage was found for them.

One list call (``core/v1`` persistentvolumeclaims, through
:func:`actors.tools.kubernetes_tools.api_call`: same credentials, egress check and error mapping)
returns one ``PersistentVolumeClaim`` :class:`ObjectState` per claim: ``status`` its phase
(``Pending``, ``Bound``, ``Lost``), ``extra`` the storage class, requested and granted capacity,
access modes and bound volume. A ``Pending`` claim is why a pod that mounts it cannot be scheduled
("pod has unbound immediate PersistentVolumeClaims"); the claim's own events
(``kubernetes_get_events``, e.g. ``ProvisioningFailed: storageclass "x" not found``) say why.
Needs ``list`` on ``persistentvolumeclaims``; a denial is ``forbidden``.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolResult, ToolSpec, spec_builder
from actors.tools.convert import iso
from actors.tools.kubernetes_tools import TIMEOUT_S, api_call
from incidentfox.evidence import EvidenceBundle, ObjectState


def claim_state(pvc: Any) -> ObjectState:
    """A claim (the client's ``V1PersistentVolumeClaim``) as evidence."""
    spec, st = pvc.spec, pvc.status
    requested = ((spec.resources.requests or {}) if spec.resources else {}).get("storage", "")
    phase = (st.phase if st else "") or ""
    return ObjectState(
        namespace=pvc.metadata.namespace or "",
        kind="PersistentVolumeClaim",
        name=pvc.metadata.name,
        status=phase,
        reasons=[phase] if phase in ("Pending", "Lost") else [],
        extra={"storage_class": spec.storage_class_name or "", "requested": requested,
               "capacity": ((st.capacity or {}) if st else {}).get("storage", ""),
               "access_modes": list(spec.access_modes or []), "volume": spec.volume_name or "",
               "created_at": iso(pvc.metadata.creation_timestamp)},
    )


async def list_volume_claims(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    ns, selector, limit = args["namespace"], args["label_selector"] or "", args["limit"] or 200

    def fetch(api: k8s.ApiClient, t: tuple[float, float]) -> Any:
        core = k8s.CoreV1Api(api)
        kw: dict[str, Any] = {"label_selector": selector, "limit": limit, "_request_timeout": t}
        return core.list_namespaced_persistent_volume_claim(ns, **kw) if ns else \
            core.list_persistent_volume_claim_for_all_namespaces(**kw)

    states = [claim_state(c) for c in (await api_call(ctx, fetch)).items]
    data = [{"namespace": o.namespace, "name": o.name, "status": o.status, **o.extra} for o in states]
    unbound = [o for o in states if o.status != "Bound"]
    return ToolResult.success(
        data, evidence=EvidenceBundle(objects=states),
        summary=f"{len(states)} volume claims, {len(unbound)} not bound"
        + (": " + ", ".join(f"{o.name} ({o.status or 'unknown'})" for o in unbound[:5]) if unbound else ""),
    )


_spec = spec_builder(category="kubernetes", integration="kubernetes", timeout_s=TIMEOUT_S)

SPECS: list[ToolSpec] = [
    _spec(
        "kubernetes_list_volume_claims",
        list_volume_claims,
        "List PersistentVolumeClaims with their phase (Pending, Bound, Lost), storage class, requested "
        "and granted capacity and bound volume. A Pending claim keeps the pods that mount it from being "
        "scheduled; read its events for why (e.g. a storage class that does not exist).",
        s.obj(
            namespace=s.string("Namespace; null means all namespaces.", nullable=True, max_length=253),
            label_selector=s.string("Label selector, e.g. `app=redis` (null: no filter).", nullable=True),
            limit=s.LIMIT,
        ),
    ),
]
