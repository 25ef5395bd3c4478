"""CLI: ``incidentfox teams create|list|show|move|rename``: an org's tree of units and teams over
``/api/v1/orgs/{org}/nodes`` (org admin). The API has no delete: a node, once created, stays."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.api_client import JsonOpt, OrgOpt, TokenOpt, UrlOpt, api, emit
from cli.choices import node_kinds, one_of

NODE_COLUMNS = ("node_id", "kind", "name", "parent_id", "depth", "version")
NodeArg = Annotated[str, typer.Argument(help="Node id ([a-z0-9-], ≤ 31 chars).")]


def create(node_id: NodeArg, org: OrgOpt,
           kind: Annotated[str, typer.Option(help="A team (a leaf that runs investigations) or a unit.",
                                             metavar="KIND", **one_of(node_kinds, default="team"))] = "team",
           parent: Annotated[str | None, typer.Option(help="Parent unit (default: the org root).")] = None,
           name: Annotated[str | None, typer.Option(help="Display name.")] = None,
           url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Create a team or unit under the org root or under ``--parent``."""
    body = {"node_id": node_id, "kind": kind, "parent_id": parent, "name": name}
    with api(url, token) as c:
        emit(c.call("POST", f"/api/v1/orgs/{org}/nodes", body=body), as_json=json_out)


def list_(org: OrgOpt,
          parent: Annotated[str | None, typer.Option(help="Only the children of this node.")] = None,
          url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Every node of the org, root first (or the children of ``--parent``)."""
    with api(url, token) as c:
        data = c.call("GET", f"/api/v1/orgs/{org}/nodes", params={"parent_id": parent})
        emit(data, as_json=json_out, columns=NODE_COLUMNS, title=f"nodes of {org}")


def show(node_id: NodeArg, org: OrgOpt, url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """A node and its direct children."""
    with api(url, token) as c:
        emit(c.call("GET", f"/api/v1/orgs/{org}/nodes/{node_id}"), as_json=json_out)


def move(node_id: NodeArg, org: OrgOpt,
         parent: Annotated[str, typer.Option(help="New parent (the org id for the root).")],
         url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Move a node (and its subtree) under another parent; a cycle is refused (409 ``cycle``)."""
    with api(url, token) as c:
        emit(c.call("PATCH", f"/api/v1/orgs/{org}/nodes/{node_id}", body={"parent_id": parent}), as_json=json_out)


def rename(node_id: NodeArg, org: OrgOpt, name: Annotated[str, typer.Option(help="New display name.")],
           url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Change a node's display name (its id never changes)."""
    with api(url, token) as c:
        emit(c.call("PATCH", f"/api/v1/orgs/{org}/nodes/{node_id}", body={"name": name}), as_json=json_out)


def register(app: typer.Typer) -> None:
    teams = typer.Typer(no_args_is_help=True, help="An org's units and teams (over the HTTP API).")
    for name, fn in (("create", create), ("list", list_), ("show", show), ("move", move), ("rename", rename)):
        teams.command(name)(fn)
    app.add_typer(teams, name="teams")
