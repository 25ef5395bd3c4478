"""CLI: ``incidentfox config-service``, ``incidentfox db upgrade``, ``incidentfox secrets rotate|generate-key``.

All read ``INCIDENTFOX_*`` settings; local starts generate the token pepper and Fernet key into
``./.incidentfox/`` on first use (:func:`incidentfox.settings.ensure_local_secrets`).
"""

from __future__ import annotations

import asyncio
import json

import typer

from cli.progress import QuietOpt, progress
from incidentfox.settings import Settings, ensure_local_secrets, get_settings


def _settings(database_url: str | None) -> Settings:
    settings = ensure_local_secrets(get_settings())
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    return settings


def config_service(
    port: int = typer.Option(8080, help="TCP port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind (0.0.0.0 for all)."),
    database_url: str = typer.Option(None, help="Overrides INCIDENTFOX_DATABASE_URL."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Run the config service API (migrates the database first). OpenAPI at /docs."""
    import uvicorn

    from config_service import create_app
    from incidentfox.db import upgrade

    settings = _settings(database_url)
    if settings.admin_token is None:
        typer.echo("warning: INCIDENTFOX_ADMIN_TOKEN is not set; only org and team tokens will work", err=True)
    upgrade(settings.resolved_database_url())
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)


def db_upgrade(
    database_url: str = typer.Option(None, help="Overrides INCIDENTFOX_DATABASE_URL."),
    revision: str = typer.Option("head", help="Target Alembic revision."),
    quiet: QuietOpt = False,
) -> None:
    """Apply database migrations (safe to run concurrently: PostgreSQL advisory lock); on a terminal,
    shows each applied revision on stderr."""
    from incidentfox.db import upgrade

    settings = get_settings()
    url = database_url or settings.resolved_database_url()
    with progress("connecting to the database", quiet=quiet) as step:
        upgrade(url, revision, progress=step)
    typer.echo(f"database upgraded to {revision}")


def secrets_rotate(
    database_url: str = typer.Option(None, help="Overrides INCIDENTFOX_DATABASE_URL."),
) -> None:
    """Re-encrypt every stored config secret under the newest key in INCIDENTFOX_SECRET_KEY.

    Prepend the new key (comma-separated, newest first), run this, then drop the old key.
    """
    from config_service import rotate_secrets
    from incidentfox.db import make_async_engine, session_factory

    settings = _settings(database_url)

    async def run() -> dict[str, int]:
        engine = make_async_engine(settings.resolved_database_url())
        try:
            async with session_factory(engine)() as session:
                return await rotate_secrets(session, settings=settings)
        finally:
            await engine.dispose()

    typer.echo(json.dumps(asyncio.run(run())))


def secrets_generate_key() -> None:
    """Print a new Fernet key (to prepend to INCIDENTFOX_SECRET_KEY before `secrets rotate`)."""
    from cryptography.fernet import Fernet

    typer.echo(Fernet.generate_key().decode())


def register(app: typer.Typer) -> None:
    """Attach ``config-service`` and the ``db`` and ``secrets`` groups to the root app."""
    app.command("config-service")(config_service)
    db = typer.Typer(no_args_is_help=True, help="Database maintenance.")
    db.command("upgrade")(db_upgrade)
    app.add_typer(db, name="db")
    secrets = typer.Typer(no_args_is_help=True, help="Config-secret key management.")
    secrets.command("rotate")(secrets_rotate)
    secrets.command("generate-key")(secrets_generate_key)
    app.add_typer(secrets, name="secrets")
