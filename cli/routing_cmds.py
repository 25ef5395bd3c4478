"""CLI: ``incidentfox routing claim|unclaim|show|lookup|table``.

A team's claims live in its config under ``routing.*`` (written with a merge patch, 409
``routing_conflict`` when another team holds one); ``lookup`` and ``table`` read the global claim
index (global admin only, since they reveal which org owns an identifier)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from cli.api_client import ApiClient, JsonOpt, OrgOpt, TokenOpt, UrlOpt, api, emit


@dataclass(frozen=True)
class ClaimKind:
    """One claimable identifier: its CLI option, its team-config list and its lookup key."""

    option: str
    config_key: str
    lookup_key: str


CLAIM_KINDS = (
    ClaimKind("slack_channel", "slack_channel_ids", "slack_channel_id"),
    ClaimKind("pagerduty_service", "pagerduty_service_ids", "pagerduty_service_id"),
    ClaimKind("incidentio_team", "incidentio_team_ids", "incidentio_team_id"),
    ClaimKind("alertmanager_receiver", "alertmanager_receivers", "alertmanager_receiver"),
    ClaimKind("github_repo", "github_repos", "github_repo"),
    ClaimKind("service", "services", "service"),
)

TeamOpt = Annotated[str, typer.Option("--team", help="Team id.")]
Many = list[str] | None
SlackOpt = Annotated[Many, typer.Option("--slack-channel", help="Slack channel id (C…); repeatable.")]
PagerDutyOpt = Annotated[Many, typer.Option("--pagerduty-service", help="PagerDuty service id; repeatable.")]
IncidentioOpt = Annotated[Many, typer.Option("--incidentio-team", help="incident.io team id; repeatable.")]
AlertmanagerOpt = Annotated[Many, typer.Option("--alertmanager-receiver", help="Alertmanager receiver; repeatable.")]
GithubOpt = Annotated[Many, typer.Option("--github-repo", help="GitHub repo owner/name; repeatable.")]
ServiceOpt = Annotated[Many, typer.Option("--service", help="Service name; repeatable.")]


def claims_by_kind(**values: Many) -> dict[str, list[str]]:
    """``{config_key: values}`` for the kinds given; a usage error when none is."""
    claims = {k.config_key: list(values[k.option]) for k in CLAIM_KINDS if values.get(k.option)}
    if not claims:
        raise typer.BadParameter("give at least one identifier (e.g. --slack-channel C0123)")
    return claims


def team_routing(c: ApiClient, *, org: str, team: str) -> dict[str, list[str]]:
    """The team's own claims (from its raw config)."""
    raw = c.call("GET", f"/api/v1/orgs/{org}/nodes/{team}/config/raw")
    return dict(raw.get("config", {}).get("routing") or {})


def add_claims(c: ApiClient, *, org: str, team: str, claims: dict[str, list[str]]) -> dict:
    """Add ``claims`` to the team's existing ones (a merge patch of the union); returns the PATCH answer."""
    current = team_routing(c, org=org, team=team)
    merged = {key: list(dict.fromkeys([*current.get(key, []), *values])) for key, values in claims.items()}
    return c.call("PATCH", f"/api/v1/orgs/{org}/nodes/{team}/config", body={"routing": merged})


def claim(org: OrgOpt, team: TeamOpt, slack_channel: SlackOpt = None, pagerduty_service: PagerDutyOpt = None,
          incidentio_team: IncidentioOpt = None, alertmanager_receiver: AlertmanagerOpt = None,
          github_repo: GithubOpt = None, service: ServiceOpt = None,
          url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Route these identifiers to the team (kept beside its existing claims)."""
    claims = claims_by_kind(slack_channel=slack_channel, pagerduty_service=pagerduty_service,
                      incidentio_team=incidentio_team, alertmanager_receiver=alertmanager_receiver,
                      github_repo=github_repo, service=service)
    with api(url, token) as c:
        add_claims(c, org=org, team=team, claims=claims)
        emit(team_routing(c, org=org, team=team), as_json=json_out)


def unclaim(org: OrgOpt, team: TeamOpt, slack_channel: SlackOpt = None, pagerduty_service: PagerDutyOpt = None,
            incidentio_team: IncidentioOpt = None, alertmanager_receiver: AlertmanagerOpt = None,
            github_repo: GithubOpt = None, service: ServiceOpt = None,
            url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Stop routing these identifiers to the team (values are compared as the API stores them)."""
    drop = claims_by_kind(slack_channel=slack_channel, pagerduty_service=pagerduty_service,
                    incidentio_team=incidentio_team, alertmanager_receiver=alertmanager_receiver,
                    github_repo=github_repo, service=service)
    with api(url, token) as c:
        current = team_routing(c, org=org, team=team)
        patch = {key: [v for v in current.get(key, []) if v not in set(values)] for key, values in drop.items()}
        c.call("PATCH", f"/api/v1/orgs/{org}/nodes/{team}/config", body={"routing": patch})
        emit(team_routing(c, org=org, team=team), as_json=json_out)


def show(org: OrgOpt, team: TeamOpt, url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """The team's claims."""
    with api(url, token) as c:
        emit(team_routing(c, org=org, team=team), as_json=json_out)


def lookup(slack_channel: Annotated[str | None, typer.Option("--slack-channel")] = None,
           pagerduty_service: Annotated[str | None, typer.Option("--pagerduty-service")] = None,
           incidentio_team: Annotated[str | None, typer.Option("--incidentio-team")] = None,
           alertmanager_receiver: Annotated[str | None, typer.Option("--alertmanager-receiver")] = None,
           github_repo: Annotated[str | None, typer.Option("--github-repo")] = None,
           service: Annotated[str | None, typer.Option("--service")] = None,
           url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Which org and team an event with these identifiers routes to (global admin). Exits 1 when
    nothing matches."""
    given = {"slack_channel": slack_channel, "pagerduty_service": pagerduty_service,
             "incidentio_team": incidentio_team, "alertmanager_receiver": alertmanager_receiver,
             "github_repo": github_repo, "service": service}
    identifiers = {k.lookup_key: given[k.option] for k in CLAIM_KINDS if given[k.option]}
    if not identifiers:
        raise typer.BadParameter("give at least one identifier (e.g. --slack-channel C0123)")
    with api(url, token) as c:
        result = c.call("POST", "/api/v1/routing/lookup", body={"identifiers": identifiers})
    emit(result, as_json=json_out)
    if not result.get("found"):
        raise typer.Exit(1)


def table(url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Every claim of every org (global admin)."""
    with api(url, token) as c:
        emit(c.call("GET", "/api/v1/routing/table"), as_json=json_out, items_key="claims",
             columns=("kind", "value", "org_id", "team_node_id"), title="routing claims")


def register(app: typer.Typer) -> None:
    routing = typer.Typer(no_args_is_help=True, help="Routing claims: which team an event goes to.")
    for name, fn in (("claim", claim), ("unclaim", unclaim), ("show", show), ("lookup", lookup), ("table", table)):
        routing.command(name)(fn)
    app.add_typer(routing, name="routing")
