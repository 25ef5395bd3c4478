"""Built-in: the change events the team's GitHub webhooks recorded (no credentials, nothing fetched).

The gateway records GitHub ``push``, ``pull_request``, ``deployment`` and ``deployment_status``
deliveries (``webhook_deliveries``, outcome ``recorded``) under the team the router gave them: the
team whose routing claims (``routing.github_repos``) name the repository, or the team whose own
webhook URL and secret signed them. :func:`recorded_changes` reads one team's rows for a window and
turns each raw body into :class:`ChangeEvent` evidence (:mod:`actors.tools.github_events`), so a
deploy GitHub told us about is a suspect even when no GitHub token is configured, with the weight of
the same change found by the GitHub tools (the ranking de-duplicates the two).

* **Tenant boundary:** the query is keyed by the run's ``(org_id, team_id)``; a team never reads
  another team's (or org's) deliveries, whatever a prompt asks for.
* **Retention:** as for every delivery: ``incidentfox gc`` blanks raw bodies older than
  ``INCIDENTFOX_RETENTION_DAYS``; a blanked (or never stored) body carries no change.
* **Entities:** ``integrations.github.repo_services`` maps ``owner/name`` to a service when the team
  sets it; otherwise the repository's name, as the GitHub tools do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from actors.tools import schema as s
from actors.tools.base import BUILTIN_INTEGRATION, ToolContext, ToolError, ToolResult, ToolSpec, spec_builder
from actors.tools.convert import changes_result
from actors.tools.github_events import changes_from_payload
from incidentfox.contracts import DeliveryOutcome
from incidentfox.evidence import ChangeEvent
from incidentfox.runs.models import Delivery

TIMEOUT_S = 10.0
MAX_DELIVERIES = 500
# A delivery may arrive a little after the change it reports (GitHub queues them).
ARRIVAL_SLACK = timedelta(minutes=10)
RECORDED_KINDS = ("push", "pull_request", "deployment", "deployment_status")


async def recorded_changes(session: AsyncSession, *, org_id: str, team_id: str, start: datetime,
                           end: datetime, repo_services: Mapping[str, str] | None = None,
                           limit: int = MAX_DELIVERIES) -> list[ChangeEvent]:
    """The changes in the team's recorded GitHub deliveries received in ``[start, end + slack]``
    whose own time (when they carry one) is inside ``[start, end]``; newest first. Empty ids read
    nothing."""
    if not org_id or not team_id:
        return []
    q = (select(Delivery.event_kind, Delivery.payload)
         .where(Delivery.org_id == org_id, Delivery.team_id == team_id, Delivery.source == "github",
                Delivery.outcome == DeliveryOutcome.RECORDED.value,
                Delivery.received_at >= start, Delivery.received_at <= end + ARRIVAL_SLACK,
                Delivery.payload != "")
         .order_by(Delivery.received_at.desc()).limit(max(1, min(limit, MAX_DELIVERIES))))
    out: list[ChangeEvent] = []
    for kind, payload in (await session.execute(q)).all():
        if not kind or kind.split(".", 1)[0] not in RECORDED_KINDS:
            continue
        body = _body(payload)
        out += [c for c in changes_from_payload(kind, body, repo_services)
                if c.at is None or start <= c.at <= end]
    out.sort(key=lambda c: c.at.timestamp() if c.at else 0.0, reverse=True)
    return out


def _body(payload: str) -> dict[str, Any]:
    """The recorded body as JSON (the legacy ``payload=<json>`` form encoding too); {} otherwise."""
    from urllib.parse import parse_qs

    text = payload.strip()
    if text.startswith("payload="):
        text = (parse_qs(text).get("payload") or [""])[0]
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def recorded_github_changes(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    if ctx.sessions is None:
        raise ToolError("not_configured", "recorded deliveries are not readable in this process")
    start, end = ctx.window(args["since_minutes"], default=3 * 60)
    github = ctx.integrations.get("github")
    repo_services = github.get("repo_services") if isinstance(github, Mapping) else None
    async with ctx.sessions() as session:
        changes = await recorded_changes(session, org_id=ctx.org_id, team_id=ctx.team_id, start=start,
                                         end=end, repo_services=repo_services if isinstance(
                                             repo_services, Mapping) else None)
    if args["repo"]:
        wanted = args["repo"].split("/")[-1]
        changes = [c for c in changes if c.entity in (wanted, (repo_services or {}).get(args["repo"]))]
    return changes_result(changes[: args["limit"] or 100], "recorded changes")


_spec = spec_builder(category="changes", integration=BUILTIN_INTEGRATION, timeout_s=TIMEOUT_S)

SPECS: list[ToolSpec] = [
    _spec(
        "github_recorded_changes",
        recorded_github_changes,
        "List the pushes (commits), merged pull requests and deployments GitHub reported to IncidentFox "
        "by webhook for this team's repositories, newest first. Needs no GitHub token; a deploy shortly "
        "before an alert is a prime suspect.",
        s.obj(
            repo=s.string("Only this repository (owner/name); null: all of the team's.", nullable=True,
                          max_length=200),
            since_minutes=s.integer("How far back to look, in minutes (null: 180).", nullable=True, minimum=1,
                                    maximum=30 * 24 * 60),
            limit=s.LIMIT,
        ),
        retries=0,
    ),
]
