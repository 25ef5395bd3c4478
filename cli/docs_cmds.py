"""CLI: ``incidentfox docs tools`` writes ``docs/tools.md`` from the tool declarations;
``incidentfox docs openapi`` writes ``docs/openapi.json``, every HTTP surface in one OpenAPI document."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_OUT = Path("docs/tools.md")
DEFAULT_OPENAPI_OUT = Path("docs/openapi.json")
docs_app = typer.Typer(no_args_is_help=True, help="Generate documentation from the code's declarations.")


@docs_app.command("tools")
def tools(
    out: Annotated[Path, typer.Option("--out", help="Where to write the Markdown.")] = DEFAULT_OUT,
    check: bool = typer.Option(False, "--check", help="Do not write; exit 1 if the file is out of date."),
) -> None:
    """Render the tool catalogue (actors/tools declarations) as Markdown."""
    from actors.tools.docs import render_tools_markdown

    _write_or_check(out, render_tools_markdown(), check=check, command="tools")


@docs_app.command("openapi")
def openapi(
    out: Annotated[Path, typer.Option("--out", help="Where to write the JSON.")] = DEFAULT_OPENAPI_OUT,
    check: bool = typer.Option(False, "--check", help="Do not write; exit 1 if the file is out of date."),
) -> None:
    """Write the merged OpenAPI document of every HTTP surface (what GET /api/openapi.json serves)."""
    from serve_apps.api_docs import render

    _write_or_check(out, render(), check=check, command="openapi")


def _write_or_check(out: Path, text: str, *, check: bool, command: str) -> None:
    if check:
        current = out.read_text() if out.exists() else ""
        if current != text:
            typer.echo(f"{out} is out of date; run `incidentfox docs {command} --out {out}`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} is up to date")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    typer.echo(f"wrote {out} ({len(text.splitlines())} lines)")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(docs_app, name="docs")
