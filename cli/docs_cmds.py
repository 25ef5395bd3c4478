"""CLI: ``incidentfox docs tools|config|openapi``: write ``docs/tools.md`` from the tool declarations,
``docs/configuration.md`` from the settings and team-config declarations, and ``docs/openapi.json``,
every HTTP surface in one OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_OUT = Path("docs/tools.md")
DEFAULT_CONFIG_OUT = Path("docs/configuration.md")
DEFAULT_OPENAPI_OUT = Path("docs/openapi.json")
docs_app = typer.Typer(no_args_is_help=True, help="Generate documentation from the code's declarations.")
CheckOpt = Annotated[bool, typer.Option("--check", help="Do not write; exit 1 if the file is out of date.")]


def _write_or_check(render: Callable[[], str], out: Path, check: bool, command: str) -> None:
    text = render()
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


@docs_app.command("tools")
def tools(
    out: Annotated[Path, typer.Option("--out", help="Where to write the Markdown.")] = DEFAULT_OUT,
    check: CheckOpt = False,
) -> None:
    """Render the tool catalogue (actors/tools declarations) as Markdown."""
    from actors.tools.docs import render_tools_markdown

    _write_or_check(render_tools_markdown, out, check, "tools")


@docs_app.command("config")
def config(
    out: Annotated[Path, typer.Option("--out", help="Where to write the Markdown.")] = DEFAULT_CONFIG_OUT,
    check: CheckOpt = False,
) -> None:
    """Render the configuration reference (environment variables and team-config keys) as Markdown."""
    from cli.config_reference import render_configuration_markdown

    _write_or_check(render_configuration_markdown, out, check, "config")


@docs_app.command("openapi")
def openapi(
    out: Annotated[Path, typer.Option("--out", help="Where to write the JSON.")] = DEFAULT_OPENAPI_OUT,
    check: CheckOpt = False,
) -> None:
    """Write the merged OpenAPI document of every HTTP surface (what GET /api/openapi.json serves)."""
    from serve_apps.api_docs import render

    _write_or_check(render, out, check, "openapi")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(docs_app, name="docs")
