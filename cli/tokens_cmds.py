"""CLI: ``incidentfox tokens create|list|revoke|whoami`` over ``/api/v1/orgs/{org}/tokens``.

``create`` prints the token once (the API stores only its hash); ``list`` shows metadata only."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.api_client import JsonOpt, OrgOpt, TokenOpt, UrlOpt, api, emit

TOKEN_COLUMNS = ("token_id", "kind", "team_node_id", "label", "created_at", "expires_at", "revoked_at",
                 "last_used_at")


def issue(c, *, org: str, team: str | None, label: str, expires_in_s: int | None) -> dict:
    """Issue an org admin token, or a team token when ``team`` is given; the answer holds ``token``."""
    path = f"/api/v1/orgs/{org}/teams/{team}/tokens" if team else f"/api/v1/orgs/{org}/tokens"
    return c.call("POST", path, body={"label": label, "expires_in_s": expires_in_s})


def print_new_token(result: dict) -> None:
    """The token on stdout, alone on its line (for ``$(…)``); the once-only notice on stderr."""
    typer.echo(f"issued {result['kind']} token {result['token_id']} (expires: {result['expires_at'] or 'never'});"
               " it is shown only now, store it:", err=True)
    typer.echo(result["token"])


def create(org: OrgOpt,
           team: Annotated[str | None, typer.Option(help="Issue a team token (read access to that team).")] = None,
           label: Annotated[str, typer.Option(help="What the token is for.")] = "",
           expires_in: Annotated[int | None, typer.Option(help="Seconds until it expires (default: never).",
                                                          min=1)] = None,
           url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Issue an org admin token (or a team token with ``--team``); printed once, never again."""
    with api(url, token) as c:
        result = issue(c, org=org, team=team, label=label, expires_in_s=expires_in)
    if json_out:
        emit(result, as_json=True)
    else:
        print_new_token(result)


def list_(org: OrgOpt, url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """The org's tokens, newest first (metadata; never a token)."""
    with api(url, token) as c:
        emit(c.call("GET", f"/api/v1/orgs/{org}/tokens"), as_json=json_out, columns=TOKEN_COLUMNS,
             title=f"tokens of {org}")


def revoke(token_id: Annotated[str, typer.Argument(help="The token's id (tok_…), from `tokens list`.")],
           org: OrgOpt, url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Revoke a token: it is refused (401 ``token_revoked``) from now on."""
    with api(url, token) as c:
        emit(c.call("POST", f"/api/v1/orgs/{org}/tokens/{token_id}/revoke"), as_json=json_out)


def whoami(url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """What the token resolves to: kind, org, team, token id."""
    with api(url, token) as c:
        emit(c.call("GET", "/api/v1/auth/whoami"), as_json=json_out)


def register(app: typer.Typer) -> None:
    tokens = typer.Typer(no_args_is_help=True, help="API tokens (over the HTTP API).")
    for name, fn in (("create", create), ("list", list_), ("revoke", revoke), ("whoami", whoami)):
        tokens.command(name)(fn)
    app.add_typer(tokens, name="tokens")
