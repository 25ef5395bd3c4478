"""Entity names and how entities relate.

Entities are ``namespace/kind/name`` for Kubernetes objects (``default/pod/checkout-7c9f…``) and a
bare service name otherwise (``PetSite``, ``PetSearch_AWS::ECS::Fargate``). A name only parses as a
Kubernetes entity when its kind is a known Kubernetes kind, so service names containing ``/`` stay
whole.

Workloads: a pod belongs to the workload whose name it extends with Kubernetes' generated suffixes
(``<deployment>-<replicaset hash>-<pod id>``, ``<job>-<pod id>``, ``<statefulset>-<ordinal>``).
Kubernetes generates those suffixes from a vowel-free alphabet, which is what keeps
``logging-agent`` from looking like a pod of ``logging``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

K8S_KINDS = frozenset({
    "pod", "deployment", "replicaset", "statefulset", "daemonset", "job", "cronjob", "service",
    "node", "namespace", "configmap", "secret", "ingress", "persistentvolumeclaim", "hpa",
    "horizontalpodautoscaler", "application",   # application: an Argo CD Application (a custom resource)
})
# k8s.io/apimachinery rand.SafeEncodeString alphabet: no vowels, no 0/1/3.
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
_POD_SUFFIX = re.compile(rf"^(?:[{_SAFE}]{{6,10}}-[{_SAFE}]{{5}}|[{_SAFE}]{{5}}|[{_SAFE}]{{6,10}}|\d+)$")
_HASH = re.compile(rf"^[{_SAFE}]{{6,10}}$")


class EntityRef(NamedTuple):
    namespace: str
    kind: str
    name: str


def parse_entity(entity: str) -> EntityRef:
    """Split ``ns/kind/name`` or ``kind/name``; anything else is a bare name."""
    parts = entity.split("/")
    if len(parts) == 3 and parts[1].lower() in K8S_KINDS and parts[2]:
        return EntityRef(parts[0], parts[1].lower(), parts[2])
    if len(parts) == 2 and parts[0].lower() in K8S_KINDS and parts[1]:
        return EntityRef("", parts[0].lower(), parts[1])
    return EntityRef("", "", entity)


def format_entity(namespace: str, kind: str, name: str) -> str:
    """The canonical entity string: ``ns/kind/name``, ``kind/name`` or ``name``."""
    if kind and namespace:
        return f"{namespace}/{kind.lower()}/{name}"
    if kind:
        return f"{kind.lower()}/{name}"
    return name


def workload_of_owner(owner: str) -> str:
    """``ReplicaSet/checkout-7c9f8d6b5`` → ``deployment/checkout``; other owners kept as ``kind/name``."""
    if "/" not in owner:
        return ""
    kind, name = owner.split("/", 1)
    kind = kind.lower()
    if kind == "replicaset":
        base, _, tail = name.rpartition("-")
        if base and _HASH.match(tail):
            return f"deployment/{base}"
    return f"{kind}/{name}"


def _extends(longer: str, shorter: str) -> bool:
    return longer.startswith(shorter + "-") and bool(_POD_SUFFIX.match(longer[len(shorter) + 1:]))


def same_workload(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same workload: equal names, or one is a generated child
    (pod, replicaset) of the other, in the same namespace (an empty namespace matches any)."""
    ra, rb = parse_entity(a), parse_entity(b)
    if ra.namespace and rb.namespace and ra.namespace != rb.namespace:
        return False
    if ra.name == rb.name:
        return True
    return _extends(ra.name, rb.name) or _extends(rb.name, ra.name)


def workload_key(entity: str) -> str:
    """A grouping key shared by a workload and its pods: ``namespace/base-name``."""
    ref = parse_entity(entity)
    name = ref.name
    if ref.kind in ("pod", "replicaset", ""):
        for pattern in (rf"-[{_SAFE}]{{6,10}}-[{_SAFE}]{{5}}$", rf"-[{_SAFE}]{{6,10}}$", rf"-[{_SAFE}]{{5}}$"):
            stripped = re.sub(pattern, "", name)
            if stripped != name and ref.kind:
                name = stripped
                break
    return f"{ref.namespace}/{name}" if ref.kind else name


def neighbours(topology: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """Undirected adjacency of the call graph."""
    adj: dict[str, set[str]] = {}
    for caller, callee in topology:
        adj.setdefault(caller, set()).add(callee)
        adj.setdefault(callee, set()).add(caller)
    return adj


def related(entity: str, anchor: str, adjacency: dict[str, set[str]] | None = None) -> bool:
    """Is ``entity`` the anchor (usually the alert's subject), part of its workload, or a call-graph
    neighbour of it? An empty anchor relates to everything."""
    if not anchor:
        return True
    if same_workload(entity, anchor):
        return True
    if adjacency:
        return entity in adjacency.get(anchor, ()) or anchor in adjacency.get(entity, ())
    return False
