"""Helpers for the manifest tests: every pod template in a set of objects, with where it is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Obj = dict[str, Any]


def pod_templates(objects: list[Obj]) -> Iterator[tuple[str, Obj, Obj]]:
    """(where, pod template, the owning object) for every pod template: Ray groups, the report job's
    submitter, StatefulSets/Deployments."""
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "RayService":
            clusters = [obj["spec"]["rayClusterConfig"]]
        elif obj["kind"] == "RayCronJob":
            clusters = [obj["spec"]["jobTemplate"]["rayClusterSpec"]]
            yield f"{name} submitter", obj["spec"]["jobTemplate"]["submitterPodTemplate"], obj
        elif obj["kind"] in ("StatefulSet", "Deployment"):
            yield name, obj["spec"]["template"], obj
            continue
        else:
            continue
        for spec in clusters:
            yield f"{name} head", spec["headGroupSpec"]["template"], obj
            for group in spec["workerGroupSpecs"]:
                yield f"{name} {group['groupName']}", group["template"], obj


def ray_cluster_spec(obj: Obj) -> Obj:
    return obj["spec"]["rayClusterConfig"] if obj["kind"] == "RayService" else \
        obj["spec"]["jobTemplate"]["rayClusterSpec"]


def labels_match(selector: Obj, labels: dict[str, str]) -> bool:
    """A Kubernetes LabelSelector (matchLabels, matchExpressions) against a label set."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr["operator"], expr["key"], expr.get("values", [])
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values) \
                or (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True
