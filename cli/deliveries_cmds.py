"""``incidentfox deliveries list|redrive``: the operator's view of webhook intake.

Both work on the database directly (``INCIDENTFOX_DATABASE_URL``), so they are usable while the
platform is down. ``redrive`` hands failed deliveries to a runner: ``investigation`` joins the
running Ray cluster (``ray.init(address="auto")``, as the Serve replicas do) and also hands sandbox
deliveries (``sandbox_opened`` / ``sandbox_continued``) to the ``sandbox-slack`` actor there;
``complete``/``null`` are for tests and local debugging and leave sandbox deliveries alone. The same operations exist over HTTP:
``GET /api/v1/agent/deliveries?failed=true`` and ``POST /api/v1/agent/deliveries/redrive``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from cli.choices import RUNNER_HELP, one_of, runner_names

deliveries_app = typer.Typer(no_args_is_help=True, help="List webhook deliveries and re-drive failed ones.")


def _sessions(database_url: str | None):
    from incidentfox.db import make_async_engine, session_factory
    from incidentfox.settings import Settings

    settings = Settings(database_url=database_url) if database_url else Settings()
    url = settings.resolved_database_url()
    engine = make_async_engine(url)
    return url, engine, session_factory(engine)


@deliveries_app.command("list")
def list_cmd(
    failed: bool = typer.Option(False, "--failed", help="Only deliveries whose dispatch failed."),
    outcome: str | None = typer.Option(None, help="Filter by outcome (accepted, unrouted, recorded, …)."),
    source: str | None = typer.Option(None, help="Filter by source (slack, github, …)."),
    limit: int = typer.Option(50, min=1, max=1000, help="How many, newest first."),
    database_url: str | None = typer.Option(None, help="Override INCIDENTFOX_DATABASE_URL."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List webhook deliveries, newest first."""
    from serve_apps import deliveries

    async def run() -> list[dict]:
        _, engine, sessions = _sessions(database_url)
        try:
            async with sessions() as s:
                rows = await deliveries.list_deliveries(s, failed=failed, outcome=outcome, source=source,
                                                        limit=limit)
                return [deliveries.delivery_view(r) for r in rows]
        finally:
            await engine.dispose()

    views = asyncio.run(run())
    for v in views:
        if as_json:
            typer.echo(json.dumps(v))
        else:
            err = f"  error: {v['dispatch_error'][:80]}" if v["dispatch_error"] else ""
            typer.echo(f"{v['id']:>6}  {v['received_at']}  {v['source']:<12} {v['outcome']:<11} "
                       f"{v['run_id'] or '-':<36} attempts={v['dispatch_attempts']}{err}")
    if not views:
        typer.echo("no deliveries match")


@deliveries_app.command("redrive")
def redrive_cmd(
    ids: Annotated[list[int] | None,
                   typer.Argument(help="Delivery ids to re-drive; default: every failed one.")] = None,
    runner: str = typer.Option("investigation", metavar="RUNNER", help=f"Runner to hand them to: {RUNNER_HELP}.",
                               **one_of(runner_names, default="investigation")),
    database_url: str | None = typer.Option(None, help="Override INCIDENTFOX_DATABASE_URL."),
) -> None:
    """Dispatch failed (or the given) deliveries again; prints the ids handed off."""
    from serve_apps import deliveries
    from serve_apps.runners import make_runner

    async def run() -> list[int]:
        url, engine, sessions = _sessions(database_url)
        sandbox = None
        if runner == "investigation":
            from actors.sandbox.slack_actor import RaySandboxRunner
            from incidentfox.settings import Settings

            sandbox = RaySandboxRunner(Settings(database_url=url))
        try:
            return await deliveries.redrive(sessions, make_runner(runner, database_url=url),
                                            delivery_pks=ids or None, sandbox=sandbox)
        finally:
            await engine.dispose()

    done = asyncio.run(run())
    typer.echo(f"re-drove {len(done)} deliveries" + (f": {', '.join(map(str, done))}" if done else ""))


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(deliveries_app, name="deliveries")
