"""Where a team's work may run: the Ray scheduling constraint of every actor that runs it.

Shared teams request a tiny amount of the custom resource ``shared``, which only shared workers
carry; dedicated teams (``deployment.mode: dedicated``) request ``team_<org>_<team>``, carried only
by their own worker group (the KubeRay issue adds those groups). Actors that run a team's work
(investigators, sub-agent workers, tool executors) are created with these options and only ever
given work of their placement key, so every Ray call that runs the team's work carries the
constraint.

A local single-node Ray must therefore advertise ``shared``: pass ``resources=LOCAL_RESOURCES`` to
``ray.init`` (``incidentfox up`` and the test session do).
"""

from __future__ import annotations

import re
from typing import Any

from config_service import TeamConfig

SHARED_RESOURCE = "shared"
# What one actor requests: small enough that thousands fit on a node advertising 1000 units.
RESOURCE_AMOUNT = 0.001
LOCAL_RESOURCES: dict[str, float] = {SHARED_RESOURCE: 1000.0}


class PlacementUnavailable(RuntimeError):
    """No node in the cluster offers the resource a team's work requires."""

    def __init__(self, resource: str) -> None:
        super().__init__(f"no Ray node offers the custom resource {resource!r}; "
                         f"start local Ray with resources={{'{resource}': 1000}} or add a worker group")
        self.resource = resource


def _safe(part: str) -> str:
    # Ids are DNS labels ([a-z0-9-]); keeping '-' keeps the name unambiguous ('_' only separates),
    # so org "a-b"/team "c" and org "a"/team "b-c" never share a resource. cluster/placement.py
    # (KubeRay worker groups) uses this same function.
    return re.sub(r"[^a-z0-9-]", "_", part.lower())


def team_resource(org_id: str, team_id: str) -> str:
    return f"team_{_safe(org_id)}_{_safe(team_id)}"


def placement_key(team_config: TeamConfig | dict[str, Any], *, org_id: str = "", team_id: str = "") -> str:
    """The resource name a team's work requires (``shared`` or ``team_<org>_<team>``)."""
    cfg = team_config if isinstance(team_config, TeamConfig) else TeamConfig(team_config, org_id=org_id,
                                                                           team_id=team_id)
    if cfg.deployment_mode == "dedicated":
        return team_resource(org_id or cfg.org_id, team_id or cfg.team_id)
    return SHARED_RESOURCE


def options_for_key(key: str) -> dict[str, Any]:
    return {"resources": {key: RESOURCE_AMOUNT}}


def scheduling_options(team_config: TeamConfig | dict[str, Any], *, org_id: str = "",
                       team_id: str = "") -> dict[str, Any]:
    """Ray ``.options(**…)`` for actors running this team's work."""
    return options_for_key(placement_key(team_config, org_id=org_id, team_id=team_id))


def check_available(key: str, cluster_resources: dict[str, float]) -> None:
    """Raise :class:`PlacementUnavailable` when no node advertises ``key`` (an actor would pend forever)."""
    if cluster_resources.get(key, 0.0) < RESOURCE_AMOUNT:
        raise PlacementUnavailable(key)
