"""CLI: ``incidentfox orgs create|list|show`` over ``/api/v1/orgs`` (create and list: global admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.api_client import JsonOpt, TokenOpt, UrlOpt, api, emit

ORG_COLUMNS = ("org_id", "name", "epoch", "created_at")


def create(org_id: Annotated[str, typer.Argument(help="New org id ([a-z0-9-], ≤ 31 chars).")],
           name: Annotated[str | None, typer.Option(help="Display name (default: the id).")] = None,
           url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Create an org and its root node (global admin)."""
    with api(url, token) as c:
        emit(c.call("POST", "/api/v1/orgs", body={"org_id": org_id, "name": name or org_id}), as_json=json_out)


def list_(url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Every org (global admin)."""
    with api(url, token) as c:
        emit(c.call("GET", "/api/v1/orgs"), as_json=json_out, columns=ORG_COLUMNS, title="orgs")


def show(org_id: Annotated[str, typer.Argument(help="Org id.")],
         url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """One org with its current epoch (org admin)."""
    with api(url, token) as c:
        emit(c.call("GET", f"/api/v1/orgs/{org_id}"), as_json=json_out)


def register(app: typer.Typer) -> None:
    orgs = typer.Typer(no_args_is_help=True, help="Organizations (over the HTTP API).")
    orgs.command("create")(create)
    orgs.command("list")(list_)
    orgs.command("show")(show)
    app.add_typer(orgs, name="orgs")
