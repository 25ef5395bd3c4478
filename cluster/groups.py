"""The provisioner's record of the worker groups it owns, kept on the RayService itself.

Each provisioned group ``<name>`` has one annotation on the RayService::

    groups.incidentfox.ai/<name>: {"org": "acme", "team": "payments", "version": 2,
                                   "state": "active", "since": "2026-01-01T00:00:00Z",
                                   "shape": "3f2a9c1b0d4e"}

Annotations live in the RayService's metadata, which KubeRay does not hash, so writing them never
rolls out a new Ray cluster (changing anything inside a worker group's pod template would). States:

- ``active``: the team's current group;
- ``draining``: replaced by a newer version; ``minReplicas`` is 0 so the autoscaler removes idle
  nodes, and after the drain window the provisioner scales it to zero and retires it;
- ``retired``: scaled to zero (min = max = replicas = 0); removed from the list only by compaction
  at the next planned upgrade (docs/operations.md).

``shape`` fingerprints what cannot change in place (CPU, memory, node selector, tolerations).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from cluster.placement import TeamResources

ANNOTATION_PREFIX = "groups.incidentfox.ai/"
GroupState = Literal["active", "draining", "retired"]


class GroupRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    org: str
    team: str
    version: int
    state: GroupState
    since: str
    shape: str

    def since_dt(self) -> datetime:
        return datetime.fromisoformat(self.since)

    def dump(self) -> str:
        # Compact, key-sorted JSON so the same record always serialises to the same annotation.
        return json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))


def iso(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shape_of(resources: TeamResources) -> str:
    """Fingerprint of the fields whose change needs a new group (not min/max workers)."""
    shape = {"cpu": resources.cpu, "memory": resources.memory,
             "node_selector": resources.node_selector, "tolerations": resources.tolerations}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]


def annotation_key(group: str) -> str:
    return ANNOTATION_PREFIX + group


def provisioned_groups(rayservice: dict[str, Any]) -> dict[str, GroupRecord]:
    """Group name → record, for every provisioner annotation on ``rayservice``.

    A malformed annotation raises ``ValueError``: the provisioner must not guess ownership.
    """
    annotations = (rayservice.get("metadata") or {}).get("annotations") or {}
    out: dict[str, GroupRecord] = {}
    for key, value in annotations.items():
        if key.startswith(ANNOTATION_PREFIX):
            out[key[len(ANNOTATION_PREFIX):]] = GroupRecord.model_validate_json(value)
    return out


def worker_groups(rayservice: dict[str, Any]) -> list[dict[str, Any]]:
    return rayservice.get("spec", {}).get("rayClusterConfig", {}).get("workerGroupSpecs", [])
