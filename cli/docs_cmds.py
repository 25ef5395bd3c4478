"""CLI: ``incidentfox docs tools``: write ``docs/tools.md`` from the tool declarations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_OUT = Path("docs/tools.md")
docs_app = typer.Typer(no_args_is_help=True, help="Generate documentation from the code's declarations.")


@docs_app.command("tools")
def tools(
    out: Annotated[Path, typer.Option("--out", help="Where to write the Markdown.")] = DEFAULT_OUT,
    check: bool = typer.Option(False, "--check", help="Do not write; exit 1 if the file is out of date."),
) -> None:
    """Render the tool catalogue (actors/tools declarations) as Markdown."""
    from actors.tools.docs import render_tools_markdown

    text = render_tools_markdown()
    if check:
        current = out.read_text() if out.exists() else ""
        if current != text:
            typer.echo(f"{out} is out of date; run `incidentfox docs tools --out {out}`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} is up to date")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    typer.echo(f"wrote {out} ({len(text.splitlines())} lines)")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(docs_app, name="docs")
