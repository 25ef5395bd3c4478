"""``incidentfox gc``: purge runs, events, tool calls and raw webhook payloads past retention."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import typer

from cli.errors import fail
from cli.progress import QuietOpt, progress


def gc(
    older_than_days: float = typer.Option(
        None, min=0, help="Purge what is older than this many days (default: INCIDENTFOX_RETENTION_DAYS, 30)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be purged."),
    database_url: str = typer.Option("", help="Database URL (default: INCIDENTFOX_DATABASE_URL or local SQLite)."),
    quiet: QuietOpt = False,
) -> None:
    """Purge finished runs (with their events, tool calls, feedback, approvals) and raw webhook bodies
    older than the retention age. Active runs are never touched. Prints one JSON line of counts
    (progress, on a terminal, goes to stderr)."""
    from incidentfox.db import make_async_engine, session_factory
    from incidentfox.runs.gc import purge
    from incidentfox.settings import get_settings

    settings = get_settings()
    days = settings.retention_days if older_than_days is None else older_than_days
    if days < 0:
        fail(f"INCIDENTFOX_RETENTION_DAYS must be >= 0 (is {days})")
    url = database_url or settings.resolved_database_url()

    async def main(step) -> dict:
        engine = make_async_engine(url)
        try:
            return await purge(session_factory(engine), older_than=timedelta(days=days), dry_run=dry_run,
                               progress=step)
        finally:
            await engine.dispose()

    with progress(f"purging what is older than {days:g} days", quiet=quiet) as step:
        counts = asyncio.run(main(step))
    typer.echo(json.dumps({"dry_run": dry_run, "older_than_days": days, **counts}))


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("gc")(gc)
