"""``incidentfox report run|run-due``: scheduled reports on demand, and one scheduler tick.

``report run`` generates one report for a team now (stored, then posted to the team's Slack channel
unless ``--no-post``; only a channel the team has, as for schedules), with progress on stderr. ``report run-due`` claims and runs every job due now,
exactly as the scheduler actor's tick does: it is the RayCronJob's entrypoint, and safe to run
beside the actor (claims are unique).
"""

from __future__ import annotations

import asyncio
import json

import typer

from cli.choices import RUNNER_HELP, one_of, report_kinds, runner_names
from cli.errors import fail
from cli.progress import Step, progress

report_app = typer.Typer(no_args_is_help=True, help="Generate scheduled reports (health report, digest).")


def _settings(database_url: str | None):
    from incidentfox.settings import Settings, ensure_local_secrets

    base = Settings(database_url=database_url) if database_url else Settings()
    return ensure_local_secrets(base)


@report_app.command("run")
def run_cmd(
    org: str = typer.Option(..., help="Org id."),
    team: str = typer.Option(..., help="Team node id."),
    kind: str = typer.Option("health_report", metavar="KIND", help="Report kind: health_report or digest.",
                             **one_of(report_kinds, default="health_report")),
    channel: str | None = typer.Option(None, help="Slack channel, one the team has (default: the team's slack.default_channel)."),
    post: bool = typer.Option(True, "--post/--no-post", help="Post to Slack after storing."),
    days: int = typer.Option(7, min=1, max=366, help="Period length in days, ending now."),
    database_url: str | None = typer.Option(None, help="Override INCIDENTFOX_DATABASE_URL."),
    as_json: bool = typer.Option(False, "--json", help="Print the stored report as JSON."),
) -> None:
    """Generate one report for a team now (progress on stderr when it is a terminal)."""
    from datetime import timedelta

    from actors.scheduler.jobs import channel_refusal, report_view, run_report_job
    from actors.scheduler.teams import team_config
    from incidentfox.db import make_async_engine, session_factory

    settings = _settings(database_url)

    async def run(step: Step) -> dict:
        engine = make_async_engine(settings.resolved_database_url())
        sessions = session_factory(engine)
        try:
            from incidentfox.errors import NotFound

            try:
                cfg = await team_config(sessions, settings, org_id=org, team_id=team)
            except NotFound as exc:
                fail(exc.message)
            dest = (channel or (cfg.get("slack") or {}).get("default_channel")) if post else None
            token = ((cfg.get("integrations") or {}).get("slack") or {}).get("bot_token")
            # The team's bot posts only in a channel the team has (--channel included): else the report
            # is stored and "not posted: channel_not_claimed: …".
            refused = await channel_refusal(sessions, org_id=org, team_id=team, channel=dest)
            report = await run_report_job(sessions, org_id=org, team_id=team, kind=kind, channel=dest,
                                          bot_token=token, slack_api_url=settings.slack_api_url,
                                          public_url=settings.public_url, period=timedelta(days=days),
                                          progress=step, refused=refused)
            return report_view(report)
        finally:
            await engine.dispose()

    with progress("loading team config", quiet=as_json) as step:
        view = asyncio.run(run(step))
    if as_json:
        typer.echo(json.dumps(view, indent=2))
        return
    c = view["content"]
    typer.echo(f"report {view['report_id']} ({view['kind']}) for {org}/{team}")
    if view["kind"] == "health_report":
        typer.echo(f"  runs: {c['runs']['total']} {c['runs']['outcomes']}")
        for src, v in c["by_source"].items():
            typer.echo(f"  {src}: {v['runs']} runs, MTTA {v['mtta_s']} s, MTTR {v['mttr_s']} s")
        typer.echo(f"  feedback: +{c['feedback']['up']} / -{c['feedback']['down']}")
    else:
        typer.echo(f"  incidents: {len(c['incidents'])}")
    if view["posted_at"]:
        typer.echo(f"  posted to {view['channel']}")
    elif view["post_error"]:
        typer.echo(f"  not posted: {view['post_error']}")


@report_app.command("run-due")
def run_due_cmd(
    database_url: str | None = typer.Option(None, help="Override INCIDENTFOX_DATABASE_URL."),
    runner: str = typer.Option("investigation", metavar="RUNNER",
                               help=f"Runner for scheduled investigations: {RUNNER_HELP}.",
                               **one_of(runner_names, default="investigation")),
    local: bool = typer.Option(False, "--local", help="Run the jobs in this process instead of as Ray tasks."),
) -> None:
    """Claim and run every scheduled job due now (one scheduler tick; the RayCronJob entrypoint)."""
    from actors.scheduler.execute import execute_claimed
    from actors.scheduler.service import SchedulerService, run_batch
    from actors.scheduler.teams import team_config_provider
    from incidentfox.db import make_async_engine, session_factory
    from serve_apps.runners import RUNNERS

    runner_factory = RUNNERS[runner]
    settings = _settings(database_url)
    url = settings.resolved_database_url()

    async def run() -> list:
        engine = make_async_engine(url)
        try:
            svc = SchedulerService(database_url=url,
                                   team_configs=team_config_provider(session_factory(engine), settings))
            claimed = await svc.tick()
            await svc.close()
            if local:
                async def submit(c, _name):
                    return await execute_claimed(c, database_url=url, slack_api_url=settings.slack_api_url,
                                                 runner=runner_factory, public_url=settings.public_url)
                return await run_batch(claimed, submit=submit)
            import ray

            from actors.scheduler.actor import dispatch_batch

            if not ray.is_initialized():
                ray.init(address="auto", log_to_driver=False)
            return await dispatch_batch(claimed, database_url=url, slack_api_url=settings.slack_api_url,
                                        runner=runner_factory, public_url=settings.public_url)
        finally:
            await engine.dispose()

    for outcome in asyncio.run(run()):
        typer.echo(json.dumps(outcome if isinstance(outcome, dict) else {"error": repr(outcome)}))


def register(app: typer.Typer) -> None:
    """Attach ``report`` to the root app."""
    app.add_typer(report_app, name="report")
