"""CLI: ``incidentfox webhooks urls|secret|list|delete``: an org's (or team's) own webhook URLs and
signing secrets over ``/api/v1/orgs/{org}[/teams/{team}]/webhook-secrets`` (org admin).

``secret SOURCE`` generates a secret for sources whose sender lets you type one (GitHub,
Alertmanager, Grafana; printed once) and, with ``--paste``, stores the one a sender issued (Slack's
signing secret, PagerDuty's, incident.io's ``whsec_…``), read without echo. Calling it again
rotates: the previous secret keeps verifying for ``--grace`` seconds."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.api_client import ApiClient, ApiError, JsonOpt, OrgOpt, TokenOpt, UrlOpt, api, emit, resolve_url
from cli.slack_manifest import webhook_urls

SourceArg = Annotated[str, typer.Argument(help="slack, github, pagerduty, incidentio, alertmanager or grafana.")]
TeamOpt = Annotated[str | None, typer.Option("--team", help="A team's own secret and URL instead of the org's.")]
PublicUrlOpt = Annotated[str | None, typer.Option(
    "--public-url", help="The install's public base URL (the senders' view) (default: --url).", show_default=False)]


def _path(org: str, team: str | None, source: str | None = None) -> str:
    base = f"/api/v1/orgs/{org}" + (f"/teams/{team}" if team else "") + "/webhook-secrets"
    return f"{base}/{source}" if source else base


def put_secret(c: ApiClient, *, org: str, team: str | None, source: str, secret: str | None = None,
               grace_s: int | None = None) -> dict[str, Any]:
    """Generate (``secret`` None) or set the scope's secret; the answer holds ``secret`` only when generated."""
    body: dict[str, Any] = {}
    if secret is not None:
        body["secret"] = secret
    if grace_s is not None:
        body["grace_s"] = grace_s
    return c.call("POST", _path(org, team, source), body=body or None)


def urls(org: OrgOpt, team: TeamOpt = None, public_url: PublicUrlOpt = None, url: UrlOpt = None,
         json_out: JsonOpt = False) -> None:
    """The org's (or team's) webhook URL for every source (no API call)."""
    found = webhook_urls(public_url or resolve_url(url), org, team)
    emit(found if json_out else {"items": [{"endpoint": k, "url": v} for k, v in found.items()]},
         as_json=json_out, columns=("endpoint", "url"), title=f"webhook URLs of {org}" + (f"/{team}" if team else ""))


def secret(source: SourceArg, org: OrgOpt, team: TeamOpt = None,
           paste: Annotated[bool, typer.Option("--paste", help="Store the secret the sender issued "
                                                               "(prompted without echo).")] = False,
           grace: Annotated[int | None, typer.Option("--grace", min=0, max=604800, help=(
               "Seconds the replaced secret keeps verifying (API default: 3600); 0 revokes it now."))] = None,
           url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Generate, set or rotate the org's (team's) signing secret for SOURCE."""
    value = typer.prompt(f"{source} signing secret", err=True, hide_input=True) if paste else None
    with api(url, token) as c:
        try:
            result = put_secret(c, org=org, team=team, source=source, secret=value, grace_s=grace)
        except ApiError as exc:
            if exc.code == "secret_required":
                typer.echo(f"{source} issues its own secret: copy it from {source} and run this again with --paste",
                           err=True)
            raise
    if json_out:
        emit(result, as_json=True)
        return
    generated = result.pop("secret", None)
    emit(result, as_json=False)
    if generated:
        typer.echo("the generated secret, shown only now (put it into the sender):", err=True)
        typer.echo(generated)


def list_(org: OrgOpt, team: TeamOpt = None, url: UrlOpt = None, token: TokenOpt = None,
          json_out: JsonOpt = False) -> None:
    """The scope's webhook secrets: source, scope, version, dates, URL path; never a secret."""
    with api(url, token) as c:
        emit(c.call("GET", _path(org, team)), as_json=json_out, title="webhook secrets",
             columns=("source", "scope", "team_id", "version", "rotated_at", "previous_valid_until", "url_path"))


def delete(source: SourceArg, org: OrgOpt, team: TeamOpt = None, url: UrlOpt = None, token: TokenOpt = None,
           json_out: JsonOpt = False) -> None:
    """Remove the scope's secret for SOURCE; its URL then answers 401."""
    with api(url, token) as c:
        emit(c.call("DELETE", _path(org, team, source)), as_json=json_out)


def register(app: typer.Typer) -> None:
    hooks = typer.Typer(no_args_is_help=True, help="Per-org webhook URLs and signing secrets.")
    for name, fn in (("urls", urls), ("secret", secret), ("list", list_), ("delete", delete)):
        hooks.command(name)(fn)
    app.add_typer(hooks, name="webhooks")
