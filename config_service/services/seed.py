"""Demo data for ``make demo`` and local trials: one org, a unit, a team with routing claims.

:func:`seed_demo` is idempotent over the tree (existing org/nodes are kept; the team's config is
patched to the demo values) and issues a fresh org admin token and team token each call. The same
result over HTTP, with the global admin token::

    POST /api/v1/orgs                                 {"org_id": "demo", "name": "Demo Org"}
    POST /api/v1/orgs/demo/nodes                      {"node_id": "platform", "kind": "unit", "name": "Platform"}
    POST /api/v1/orgs/demo/nodes                      {"node_id": "sre", "parent_id": "platform", "kind": "team", "name": "SRE"}
    PATCH /api/v1/orgs/demo/nodes/sre/config          DEMO_TEAM_CONFIG
    POST /api/v1/orgs/demo/tokens                     {"label": "demo admin"}
    POST /api/v1/orgs/demo/teams/sre/tokens           {"label": "demo team"}
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from config_service.db.models import ConfigNode, Org
from config_service.services import config as config_service
from config_service.services import nodes, orgs, tokens
from incidentfox.settings import Settings

DEMO_ORG_CONFIG: dict[str, Any] = {
    "investigation": {"deadline_s": 300, "correlation_window_s": 600},
    "locked_paths": ["deployment.mode"],
}
DEMO_TEAM_CONFIG: dict[str, Any] = {
    "slack": {"default_channel": "C0DEMO0001"},
    "routing": {
        "slack_channel_ids": ["C0DEMO0001"],
        "github_repos": ["demo/checkout"],
        "pagerduty_service_ids": ["PDEMO01"],
        "incidentio_team_ids": ["01DEMOTEAM"],
        "alertmanager_receivers": ["demo-sre"],
        "services": ["checkout", "payments"],
    },
    "integrations": {"demo": {"enabled": True}},
    "tools": {},
    "subagents": {},
}


async def seed_demo(session: AsyncSession, *, settings: Settings, org_id: str = "demo", unit_id: str = "platform",
                    team_id: str = "sre", actor: str = "seed") -> dict[str, Any]:
    """Create (or reuse) ``org_id``/``unit_id``/``team_id`` with demo config; return ids and new tokens."""
    if await session.get(Org, org_id) is None:
        await orgs.create_org(session, org_id=org_id, name="Demo Org", actor=actor)
        await config_service.patch_config(session, settings=settings, org_id=org_id, node_id=org_id,
                                          patch=DEMO_ORG_CONFIG, actor=actor)
    if await session.get(ConfigNode, (org_id, unit_id)) is None:
        await nodes.create_node(session, org_id=org_id, node_id=unit_id, parent_id=None, kind="unit",
                                name="Platform", actor=actor)
    if await session.get(ConfigNode, (org_id, team_id)) is None:
        await nodes.create_node(session, org_id=org_id, node_id=team_id, parent_id=unit_id, kind="team",
                                name="SRE", actor=actor)
    await config_service.patch_config(session, settings=settings, org_id=org_id, node_id=team_id,
                                      patch=DEMO_TEAM_CONFIG, actor=actor)
    admin = await tokens.issue_token(session, settings=settings, org_id=org_id, label="demo admin", actor=actor)
    team = await tokens.issue_token(session, settings=settings, org_id=org_id, team_node_id=team_id,
                                    label="demo team", actor=actor)
    return {"org_id": org_id, "unit_id": unit_id, "team_id": team_id, "org_admin_token": admin["token"],
            "team_token": team["token"]}
