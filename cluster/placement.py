"""Where a team's Ray work may run: names, custom resources and labels shared by the manifests, the
provisioner and the investigation engine.

Contract (docs/operations.md, "Placement"):

- Shared workers carry the custom resource ``shared`` (1000 units per node) and the Ray label
  ``incidentfox.ai/pool=shared``. A shared team's actors request a sliver of ``shared``
  (``actors.engine.placement.scheduling_options``, the engine's side of this contract), so they never land
  on a dedicated group (which never carries ``shared``).
- A dedicated team's group ``team-<org>-<team>`` (``-v2``, ``-v3``… after a change of shape) carries
  ``team_<org>_<team>`` (the engine's :func:`actors.engine.placement.team_resource`, 1000 units per node),
  Ray CPU 0 and labels ``incidentfox.ai/pool=dedicated``, ``incidentfox.ai/org``,
  ``incidentfox.ai/team``. The team's actors request a sliver of that resource with ``num_cpus=0``;
  with CPU 0 on those nodes, nothing that asks only for CPU can be placed there, and Serve's replicas
  carry a label selector excluding ``dedicated`` (serve_apps/serve_config.yaml). The pod's Kubernetes
  requests and limits still size the node.
- When a dedicated team's group has no node, its work waits in Ray's queue (the autoscaler adds a
  node of that group, up to ``max_workers``); it never falls back to shared workers.

Group names must be Kubernetes label values (KubeRay labels pods ``ray.io/group=<name>``), so at most
63 characters. ``team-<org>-<team>`` longer than :data:`MAX_BASE_LEN` is cut and suffixed with the
first 8 hex digits of ``sha256("<org>/<team>")``: stable for a team, distinct between teams.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from actors.engine.placement import team_resource as _engine_team_resource

UNITS_PER_NODE = 1000
SHARED_GROUP = "shared"
POOL_LABEL = "incidentfox.ai/pool"
ORG_LABEL = "incidentfox.ai/org"
TEAM_LABEL = "incidentfox.ai/team"
GROUP_PREFIX = "team-"
# 48 + "-v999" stays well inside the 63-character label-value limit.
MAX_BASE_LEN = 48

_ID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class PlacementError(ValueError):
    """An org/team id or a deployment section that cannot be placed."""


def check_id(value: str, *, what: str) -> str:
    """Return ``value`` if it is a DNS label (the config service's id rule), else raise."""
    if not _ID.fullmatch(value or ""):
        raise PlacementError(f"{what} id {value!r} is not a DNS label (a-z, 0-9, '-', ≤ 63)")
    return value


def team_resource(org: str, team: str) -> str:
    """The custom resource a dedicated team's group carries: exactly what the engine requests
    (:func:`actors.engine.placement.team_resource`, ``team_<org>_<team>`` with ``-`` as ``_``)."""
    return _engine_team_resource(check_id(org, what="org"), check_id(team, what="team"))


def group_base_name(org: str, team: str) -> str:
    """``team-<org>-<team>``, or its stable hashed form when longer than :data:`MAX_BASE_LEN`."""
    base = f"{GROUP_PREFIX}{check_id(org, what='org')}-{check_id(team, what='team')}"
    if len(base) <= MAX_BASE_LEN:
        return base
    digest = hashlib.sha256(f"{org}/{team}".encode()).hexdigest()[:8]
    return f"{base[:MAX_BASE_LEN - 9].rstrip('-')}-{digest}"


def group_name(org: str, team: str, version: int) -> str:
    """Version 1 is the base name; later versions append ``-v<N>``."""
    if version < 1:
        raise PlacementError("group versions start at 1")
    base = group_base_name(org, team)
    return base if version == 1 else f"{base}-v{version}"


class TeamResources(BaseModel):
    """``deployment.resources`` of a dedicated team: one worker's size and the group's bounds."""

    model_config = ConfigDict(extra="forbid")

    cpu: str = Field(description="Kubernetes CPU quantity per worker, e.g. '2' or '1500m'.")
    memory: str = Field(description="Kubernetes memory quantity per worker, e.g. '4Gi'.")
    min_workers: int = Field(ge=0)
    max_workers: int = Field(ge=1)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _quantities_as_text(cls, data: Any) -> Any:
        # YAML gives `cpu: 2` as an int; Kubernetes quantities are strings.
        if isinstance(data, dict):
            data = dict(data)
            for key in ("cpu", "memory"):
                if isinstance(data.get(key), int | float):
                    data[key] = str(data[key])
        return data

    @model_validator(mode="after")
    def _bounds(self) -> TeamResources:
        if self.min_workers > self.max_workers:
            raise ValueError("min_workers must not exceed max_workers")
        return self


class DeploymentConfig(BaseModel):
    """A team's effective ``deployment`` section. Absent means shared."""

    model_config = ConfigDict(extra="allow")

    mode: Literal["shared", "dedicated"] = "shared"
    resources: TeamResources | None = None

    @model_validator(mode="before")
    @classmethod
    def _resources_only_when_dedicated(cls, data: Any) -> Any:
        # The config service's defaults give every team `resources: {}`, and a team back to shared
        # may keep its old sizes: neither matters (nor is validated) unless the team is dedicated.
        if isinstance(data, dict) and (data.get("mode", "shared") != "dedicated" or data.get("resources") == {}):
            data = {k: v for k, v in data.items() if k != "resources"}
        return data

    @model_validator(mode="after")
    def _dedicated_needs_resources(self) -> DeploymentConfig:
        if self.mode == "dedicated" and self.resources is None:
            raise ValueError("deployment.mode 'dedicated' needs deployment.resources")
        return self

    @classmethod
    def from_effective(cls, effective: dict[str, Any] | None) -> DeploymentConfig:
        """Read the ``deployment`` section of a team's effective config."""
        return cls.model_validate((effective or {}).get("deployment") or {})


def dedicated_labels(org: str, team: str) -> dict[str, str]:
    """Ray node labels of a dedicated team's group (also usable as a ``label_selector``)."""
    return {POOL_LABEL: "dedicated", ORG_LABEL: check_id(org, what="org"),
            TEAM_LABEL: check_id(team, what="team")}


SHARED_LABELS = {POOL_LABEL: "shared"}
