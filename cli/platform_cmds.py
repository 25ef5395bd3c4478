"""``incidentfox up``: bring up the local platform on one HTTP port and block until Ctrl-C/SIGTERM.

Steps: migrate the database (``db upgrade``), make sure the local secrets exist (token pepper, Fernet
key, and a global admin token the services use to call each other), start Ray locally - never on
6379, Redis's port - or join ``--address``, deploy every application of ``serve_apps/serve_config.yaml``
through its typed builder (the same builders KubeRay's serveConfigV2 uses), print the URLs, and wait.
On SIGINT/SIGTERM: ``serve.shutdown()`` then ``ray.shutdown()``.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
from pathlib import Path

import typer

from cli.choices import RUNNER_HELP, one_of, runner_names

# Serve hot-path tuning measured by bench/webhook_ack.py on a 2-core machine; set before Ray starts
# so every Serve process inherits it (explicit environment values win).
SERVE_TUNING_ENV = {
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",   # one loop per replica: no cross-thread hop
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
    # Proxy → replica over gRPC with the request inline: the default path makes every replica call
    # back into the proxy actor for the body (measured +30% requests/s, p99 -40% on webhooks).
    "RAY_SERVE_PROXY_USE_GRPC": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray starts workers (so every Serve proxy and replica) at nice 15; on a shared small node that
    # starves the request path behind any other process. The platform's own services run at 0.
    "RAY_worker_niceness": "0",
}
FORWARDED_ENV_PREFIXES = ("INCIDENTFOX_", "SLACK_", "GITHUB_", "PAGERDUTY_", "INCIDENTIO_", "ALERTMANAGER_",
                          "GRAFANA_", "OPENAI_", "ANTHROPIC_", "RAY_SERVE_")


def _admin_token(home: Path) -> str:
    path = home / "admin_token"
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    token = "ifx-admin-" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def prepare_environment(*, port: int, runner: str) -> dict[str, str]:
    """Migrate, generate local secrets, and export what every Serve replica must agree on.
    Returns the environment to forward to Ray workers.

    This WRITES the process environment (Ray workers and Serve replicas inherit it, and read it
    through their own ``Settings``); the one read, the forwarded copy, passes variables on to child
    processes unread (tests/ground/test_settings_env.py allows exactly this)."""
    from incidentfox.db import upgrade
    from incidentfox.settings import Settings, ensure_local_secrets

    settings = ensure_local_secrets(Settings())
    home = settings.home.resolve()
    os.environ["INCIDENTFOX_HOME"] = str(home)
    url = settings.resolved_database_url()
    os.environ["INCIDENTFOX_DATABASE_URL"] = url
    if settings.admin_token is None:
        os.environ["INCIDENTFOX_ADMIN_TOKEN"] = _admin_token(home)
    os.environ.setdefault("INCIDENTFOX_CONFIG_URL", f"http://127.0.0.1:{port}")
    upgrade(url)
    for key, value in SERVE_TUNING_ENV.items():
        os.environ.setdefault(key, value)
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}


def up(
    port: int = typer.Option(8000, help="HTTP port serving every application."),
    host: str = typer.Option("127.0.0.1", help="Interface the HTTP proxy binds."),
    address: str | None = typer.Option(None, help="Join this Ray cluster instead of starting one."),
    metrics_port: int | None = typer.Option(None, help="Prometheus metrics export port of the local Ray."),
    runner: str = typer.Option("investigation", metavar="RUNNER", help=f"Runner for queued runs: {RUNNER_HELP}.",
                               **one_of(runner_names, default="investigation")),
    dashboard_port: int = typer.Option(8265, help="Ray dashboard port when starting Ray locally."),
    access_log: bool = typer.Option(True, help="Serve proxy/replica access logs (off saves hot-path CPU)."),
) -> None:
    """Start the local platform (config service, webhook gateway, agent API, tools) and block until
    Ctrl-C or SIGTERM, then shut Serve and Ray down cleanly."""
    if address and address.rsplit(":", 1)[-1] == "6379":
        typer.echo("warning: 6379 is Redis's port on this machine; make sure that is really a Ray head.",
                   err=True)
    prepare_environment(port=port, runner=runner)
    from incidentfox.logs import configure_process_logging
    from incidentfox.settings import Settings

    settings = Settings()   # as prepare_environment left the environment (home resolved, database URL set)

    configure_process_logging()   # after prepare_environment: the admin token and pepper are set now

    import ray
    from ray import serve

    from incidentfox.db import is_sqlite
    from serve_apps.builder import deploy_config, local_config

    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)

    # No runtime_env: it would show the webhook secrets in the dashboard's job view. A local Ray
    # inherits this process's environment; a joined cluster (--address) must provide its own (the
    # variables prepare_environment returns), as KubeRay does.
    init_kw: dict = {"namespace": "incidentfox", "log_to_driver": False}
    if address:
        ctx = ray.init(address=address, **init_kw)
    else:
        if metrics_port is not None:
            init_kw["_metrics_export_port"] = metrics_port
        from actors.engine.placement import LOCAL_RESOURCES  # shared teams' actors request "shared"

        # address="local": always a new instance; with no address Ray joins whatever cluster `ray start`
        # last recorded in /tmp/ray/ray_current_cluster (and then refuses our resources).
        ctx = ray.init(address="local", include_dashboard=True, dashboard_host="127.0.0.1",
                       dashboard_port=dashboard_port, resources=LOCAL_RESOURCES, **init_kw)
    try:
        serve.start(http_options={"host": host, "port": port},
                    logging_config=None if access_log else {"enable_access_log": False})

        def skipped(name: str, why: str) -> None:
            typer.echo(f"skipping application {name!r}: {why}")

        overrides = {"gateway": {"runner": runner}, "agent": {"runner": runner}}
        config = local_config(host=host, port=port, overrides=overrides, on_skip=skipped,
                              single_writer=is_sqlite(settings.resolved_database_url()))
        deployed = deploy_config(config)
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
        dashboard = getattr(ctx, "dashboard_url", "") or ""
        typer.echo(f"IncidentFox is up ({', '.join(deployed)}; runner: {runner})")
        typer.echo(f"  gateway URL:    {base}/webhooks")
        typer.echo(f"  agent API:      {base}/api/v1/agent")
        typer.echo(f"  config service: {base}/  (health: {base}/health, docs: {base}/docs)")
        typer.echo(f"  web console:    {base}/ui/  (sign in with a token; not built: make install)")
        typer.echo(f"  Ray dashboard:  {'http://' + dashboard if dashboard and '://' not in dashboard else dashboard or 'n/a'}")
        typer.echo(f"  admin token:    in $INCIDENTFOX_ADMIN_TOKEN or {settings.home / 'admin_token'}")
        typer.echo("Press Ctrl-C to stop.")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
        typer.echo("shutting down...")
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
    typer.echo("stopped.")


def demo(
    keep: bool = typer.Option(False, "--keep", help="Leave the platform running after the demo."),
    question: str = typer.Option("checkout is failing for customers - what happened?",
                                 help="What the demo user asks the bot in Slack."),
    metrics_port: int | None = typer.Option(None, help="Serve Ray's Prometheus metrics on this port "
                                                       "(http://127.0.0.1:PORT/metrics)."),
) -> None:
    """Investigate the demo world's incident end to end: start the platform, seed a team, send a signed
    Slack mention, show live progress and the RCA, then stop everything (unless --keep)."""
    import asyncio

    from cli.demo.flow import run_demo

    raise typer.Exit(asyncio.run(run_demo(keep=keep, question=question, metrics_port=metrics_port)))


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("up")(up)
    app.command("demo")(demo)
