"""CLI commands: gc_cmds (registered by incidentfox.cli.main)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
