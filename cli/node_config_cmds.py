"""CLI: ``incidentfox config get|patch|history|rollback``: a node's config over
``/api/v1/orgs/{org}/nodes/{node}/config`` (org admin; a team token may read its own effective config).

``patch`` sends one RFC 7396 merge patch built from ``--file`` (JSON or YAML), then each ``--set
key.path=value`` (value parsed as JSON when it parses, else taken as a string; ``null`` removes the
override), then each ``--secret key.path`` (prompted without echo, so it stays out of shell history).
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from cli.api_client import JsonOpt, OrgOpt, TokenOpt, UrlOpt, api, emit

NodeOpt = Annotated[str, typer.Option("--node", help="Team, unit, or the org id for org-wide config.")]


class View(str, Enum):
    effective = "effective"
    raw = "raw"
    explain = "explain"


def parse_assignment(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` → (``["a", "b", "c"]``, value); a usage error when malformed."""
    path, sep, raw = text.partition("=")
    keys = path.strip().split(".")
    if not sep or not all(k.strip() for k in keys):
        raise typer.BadParameter(f"expected key.path=value, got {text!r}", param_hint="--set")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return [k.strip() for k in keys], value


def set_path(doc: dict[str, Any], keys: list[str], value: Any) -> None:
    """Put ``value`` at ``keys`` in ``doc``, creating objects on the way (a scalar there is replaced)."""
    for key in keys[:-1]:
        child = doc.get(key)
        if not isinstance(child, dict):
            child = doc[key] = {}
        doc = child
    doc[keys[-1]] = value


def read_patch_file(path: Path) -> dict[str, Any]:
    """A JSON or YAML object from ``path`` (``-`` for stdin); a usage error otherwise."""
    text = typer.get_text_stream("stdin").read() if str(path) == "-" else path.read_text()
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"not JSON or YAML: {exc}", param_hint="--file") from None
    if not isinstance(doc, dict):
        raise typer.BadParameter("the patch must be an object", param_hint="--file")
    return doc


def build_patch(file: Path | None, sets: list[str], secrets: list[str]) -> dict[str, Any]:
    patch = read_patch_file(file) if file else {}
    for item in sets:
        set_path(patch, *parse_assignment(item))
    for key_path in secrets:
        keys = key_path.split(".")
        if not all(keys):
            raise typer.BadParameter(f"expected key.path, got {key_path!r}", param_hint="--secret")
        set_path(patch, keys, typer.prompt(f"value for {key_path}", err=True, hide_input=True))
    if not patch:
        raise typer.BadParameter("give --file, --set or --secret")
    return patch


def _base(org: str, node: str) -> str:
    return f"/api/v1/orgs/{org}/nodes/{node}/config"


def get(org: OrgOpt, node: NodeOpt,
        view: Annotated[View, typer.Option(help="effective (merged down the tree), raw (the node's own), or "
                                                "explain (effective + which node set each path, and locks).")]
        = View.effective,
        url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """A node's config, secrets masked. Prints the document as YAML (``--json``: the API's answer)."""
    with api(url, token) as c:
        if view is View.raw:
            data = c.call("GET", _base(org, node) + "/raw")
        else:
            data = c.call("GET", _base(org, node) + "/effective", params={"explain": view is View.explain or None})
    if json_out:
        emit(data, as_json=True)
    else:
        typer.echo(yaml.safe_dump({k: v for k, v in data.items() if k not in ("org_id", "node_id")},
                                  sort_keys=True).rstrip())


def patch(org: OrgOpt, node: NodeOpt,
          file: Annotated[Path | None, typer.Option("--file", "-f", help="Merge patch (JSON or YAML; - for stdin).",
                                                    exists=False, dir_okay=False)] = None,
          set_: Annotated[list[str] | None, typer.Option("--set", help="key.path=value; repeatable.")] = None,
          secret: Annotated[list[str] | None, typer.Option(
              "--secret", help="key.path whose value is prompted without echo; repeatable.")] = None,
          url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Apply a merge patch to the node's config; stores the next version (409 ``path_locked`` or
    ``routing_conflict`` when refused)."""
    if file is not None and str(file) != "-" and not file.is_file():
        raise typer.BadParameter(f"{file} is not a file", param_hint="--file")
    body = build_patch(file, set_ or [], secret or [])
    with api(url, token) as c:
        emit(c.call("PATCH", _base(org, node), body=body), as_json=json_out)


def history(org: OrgOpt, node: NodeOpt,
            limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
            before: Annotated[int | None, typer.Option(help="Page: versions before this one.", min=0)] = None,
            url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """The node's config versions, newest first, with masked diffs."""
    with api(url, token) as c:
        data = c.call("GET", _base(org, node) + "/history", params={"limit": limit, "before": before})
    if json_out:
        emit(data, as_json=True)
        return
    rows = [{**item, "changed": ", ".join(d.get("path", "") for d in item.get("diff") or [])}
            for item in data.get("items", [])]
    emit({"items": rows}, as_json=False, columns=("version", "action", "actor", "created_at", "changed"),
         title=f"{org}/{node}")
    if data.get("next_before") is not None:
        typer.echo(f"more: --before {data['next_before']}", err=True)


def rollback(org: OrgOpt, node: NodeOpt,
             version: Annotated[int, typer.Argument(help="The version whose config to restore.", min=0)],
             url: UrlOpt = None, token: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """Restore version N's config as a new version."""
    with api(url, token) as c:
        emit(c.call("POST", _base(org, node) + "/rollback", body={"version": version}), as_json=json_out)


def register(app: typer.Typer) -> None:
    config = typer.Typer(no_args_is_help=True, help="Org, unit and team config (over the HTTP API).")
    for name, fn in (("get", get), ("patch", patch), ("history", history), ("rollback", rollback)):
        config.command(name)(fn)
    app.add_typer(config, name="config")
