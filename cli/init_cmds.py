"""CLI: ``incidentfox init``: onboard an org on a running install, over the HTTP API.

Creates the org and a team (reusing them when they exist, so a rerun is safe), routes the given
identifiers to the team, stores the Slack bot token in the org's config
(``integrations.slack.bot_token``, the one place the Slack client reads it), issues a token
(printed once), optionally generates the org's webhook secrets, and prints the Slack app manifest
and the org's webhook URLs. Interactive by default; ``--yes`` takes everything from flags.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from cli.api_client import ApiClient, ApiError, JsonOpt, TokenOpt, UrlOpt, api, emit, resolve_url
from cli.routing_cmds import (
    AlertmanagerOpt,
    GithubOpt,
    IncidentioOpt,
    PagerDutyOpt,
    ServiceOpt,
    SlackOpt,
    add_claims,
    claims_by_kind,
)
from cli.slack_manifest import slack_manifest, webhook_urls
from cli.tokens_cmds import issue, print_new_token
from cli.webhooks_cmds import PublicUrlOpt, put_secret

MANIFEST_BEGIN = "# --- Slack app manifest: api.slack.com/apps → Create New App → From a manifest ---"
MANIFEST_END = "# --- end of Slack app manifest ---"


class TokenFor(str, Enum):
    org = "org"
    team = "team"
    none = "none"


def _create(c: ApiClient, path: str, body: dict[str, Any], exists_code: str) -> bool:
    """POST ``body``; True when created, False when it already existed (``exists_code``)."""
    try:
        c.call("POST", path, body=body)
    except ApiError as exc:
        if exc.code != exists_code:
            raise
        return False
    return True


def _read_secret_file(path: Path | None) -> str | None:
    if path is None:
        return None
    text = typer.get_text_stream("stdin").read() if str(path) == "-" else path.read_text()
    return text.strip() or None


def _webhook_secrets(c: ApiClient, org: str) -> dict[str, dict[str, Any]]:
    """Generate the org's secret for every source that lets the platform choose it; mark the others
    (the sender issues theirs) as ``{"paste": True}``."""
    from serve_apps.gateway import ENDPOINTS

    out: dict[str, dict[str, Any]] = {}
    for source in dict.fromkeys(ENDPOINTS.values()):
        try:
            out[source] = put_secret(c, org=org, team=None, source=source)
        except ApiError as exc:
            if exc.code != "secret_required":
                raise
            out[source] = {"paste": True}
    return out


def _next_steps(org: str, team: str, claims: dict[str, list[str]], has_bot_token: bool,
                secrets: dict[str, dict[str, Any]]) -> list[str]:
    steps = [("Create the Slack app from the manifest above, install it to your workspace and invite the "
              "bot to the team's channel (/invite @IncidentFox).")]
    if not has_bot_token:
        steps.append(f"Store its Bot User OAuth Token: incidentfox config patch --org {org} --node {org} "
                     "--secret integrations.slack.bot_token")
    pasted = [s for s, v in secrets.items() if v.get("paste")] if secrets else ["slack"]
    for source in pasted:
        steps.append(f"Paste {source}'s signing secret: incidentfox webhooks secret {source} --org {org} --paste")
    if not secrets:
        steps.append(f"For GitHub, Alertmanager or Grafana: incidentfox webhooks secret <source> --org {org}")
    if not claims.get("slack_channel_ids"):
        steps.append(f"Route a channel to the team: incidentfox routing claim --org {org} --team {team} "
                     "--slack-channel C…")
    steps.append("Mention the bot in that channel (@IncidentFox what is wrong with checkout?) for a first answer.")
    return steps


def init(
    org: Annotated[str | None, typer.Option("--org", help="Org id to create (or reuse).")] = None,
    org_name: Annotated[str | None, typer.Option(help="Org display name (default: the id).")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Team id to create (or reuse).")] = None,
    team_name: Annotated[str | None, typer.Option(help="Team display name (default: the id).")] = None,
    slack_channel: SlackOpt = None, pagerduty_service: PagerDutyOpt = None, incidentio_team: IncidentioOpt = None,
    alertmanager_receiver: AlertmanagerOpt = None, github_repo: GithubOpt = None, service: ServiceOpt = None,
    slack_bot_token_file: Annotated[Path | None, typer.Option(
        help="File holding the Slack bot token (xoxb-…; - for stdin), stored in the org's config.")] = None,
    token_for: Annotated[TokenFor, typer.Option(help="Issue an org admin token, a team token, or none.")]
    = TokenFor.org,
    webhook_secrets: Annotated[bool, typer.Option(
        "--webhook-secrets", help="Generate the org's webhook secrets now (printed once).")] = False,
    public_url: PublicUrlOpt = None,
    manifest_out: Annotated[Path | None, typer.Option(help="Also write the Slack app manifest here.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Non-interactive: take everything from flags.")] = False,
    url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False,
) -> None:
    """Onboard an org: org, team, routing claims, Slack bot token, a token, webhook secrets, and the
    Slack app manifest with the org's webhook URLs."""
    if yes and not (org and team):
        raise typer.BadParameter("--yes needs --org and --team")
    interactive = not yes
    org = org or typer.prompt("Org id (lowercase letters, digits, -)", err=True)
    org_name = org_name or (typer.prompt("Org name", err=True, default=org) if interactive else org)
    team = team or typer.prompt("Team id", err=True)
    team_name = team_name or (typer.prompt("Team name", err=True, default=team) if interactive else team)
    if interactive and not slack_channel:
        answer = typer.prompt("Slack channel id(s) the team answers in (C…, comma-separated; empty: later)", err=True,
                              default="", show_default=False)
        slack_channel = [v.strip() for v in answer.split(",") if v.strip()]
    bot_token = _read_secret_file(slack_bot_token_file)
    if interactive and bot_token is None:
        bot_token = typer.prompt("Slack bot token (xoxb-…; empty: later)", err=True, default="", hide_input=True,
                                 show_default=False) or None
    if interactive and not webhook_secrets:
        webhook_secrets = typer.confirm("Generate the org's webhook secrets now?", err=True, default=False)
    try:
        claims = claims_by_kind(slack_channel=slack_channel, pagerduty_service=pagerduty_service,
                          incidentio_team=incidentio_team, alertmanager_receiver=alertmanager_receiver,
                          github_repo=github_repo, service=service)
    except typer.BadParameter:
        claims = {}
    base = public_url or resolve_url(url)
    summary: dict[str, Any] = {"org_id": org, "team_id": team}
    with api(url, token) as c:
        summary["org_created"] = _create(c, "/api/v1/orgs", {"org_id": org, "name": org_name}, "org_exists")
        summary["team_created"] = _create(c, f"/api/v1/orgs/{org}/nodes",
                                          {"node_id": team, "kind": "team", "name": team_name}, "node_exists")
        if claims:
            add_claims(c, org=org, team=team, claims=claims)
        summary["routing"] = claims
        if bot_token:
            c.call("PATCH", f"/api/v1/orgs/{org}/nodes/{org}/config",
                   body={"integrations": {"slack": {"bot_token": bot_token}}})
        summary["slack_bot_token_stored"] = bool(bot_token)
        if token_for is not TokenFor.none:
            summary["token"] = issue(c, org=org, team=team if token_for is TokenFor.team else None,
                                     label="incidentfox init", expires_in_s=None)
        summary["webhook_secrets"] = _webhook_secrets(c, org) if webhook_secrets else {}
    manifest = slack_manifest(base, org)
    if manifest_out:
        manifest_out.write_text(yaml.safe_dump(manifest, sort_keys=False))
    summary.update(slack_manifest=manifest, webhook_urls=webhook_urls(base, org),
                   next_steps=_next_steps(org, team, claims, bool(bot_token), summary["webhook_secrets"]))
    if json_out:
        emit(summary, as_json=True)
        return
    _print_human(summary)
    if interactive:
        _offer_slack_secret(org, url, token)


def _print_human(s: dict[str, Any]) -> None:
    console = Console()
    console.print(f"org [bold]{s['org_id']}[/]: {'created' if s['org_created'] else 'exists, reused'}")
    console.print(f"team [bold]{s['team_id']}[/]: {'created' if s['team_created'] else 'exists, reused'}")
    for key, values in s["routing"].items():
        console.print(f"routing.{key}: {', '.join(values)}")
    console.print(f"Slack bot token: {'stored in the org config' if s['slack_bot_token_stored'] else 'not set'}")
    if "token" in s:
        print_new_token(s["token"])
    for source, result in s["webhook_secrets"].items():
        if result.get("secret"):
            typer.echo(f"{source} webhook secret (shown only now): {result['secret']}")
    typer.echo(MANIFEST_BEGIN)
    typer.echo(yaml.safe_dump(s["slack_manifest"], sort_keys=False).rstrip())
    typer.echo(MANIFEST_END)
    emit({"items": [{"endpoint": k, "url": v} for k, v in s["webhook_urls"].items()]}, as_json=False,
         columns=("endpoint", "url"), title=f"webhook URLs of {s['org_id']}")
    typer.echo("Next steps:")
    for n, step in enumerate(s["next_steps"], 1):
        typer.echo(f"  {n}. {step}")


def _offer_slack_secret(org: str, url: str | None, token: str | None) -> None:
    value = typer.prompt("Once the Slack app exists, paste its Signing Secret (empty: later)", err=True, default="",
                         hide_input=True, show_default=False)
    if value:
        with api(url, token) as c:
            put_secret(c, org=org, team=None, source="slack", secret=value)
        typer.echo("Slack signing secret stored.")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
