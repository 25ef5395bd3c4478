"""Alembic environment: one migration chain for the whole IncidentFox database.

Revisions, in order: 0001_config (config service), 0002_runs (deliveries, runs and what they record),
0003_sandbox (sandbox sessions), 0004_scheduler (schedule claims, reports), 0005_webhook_secrets
(per-org webhook signing secrets), 0006_egress (the platform egress allow-list).
"""

from __future__ import annotations

from alembic import context

from incidentfox.db import Base, make_sync_engine

# Running the chain needs no models; Base.metadata (whatever models the caller imported) only
# serves autogenerate. tests/ground/test_migrations.py imports every model and checks that the
# chain and the models agree, so no ground-floor module has to import the packages above it.
target_metadata = Base.metadata


def run_migrations() -> None:
    cfg = context.config
    conn = cfg.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=conn.dialect.name == "sqlite",
                          # incidentfox.db.upgrade's progress hook, called after each applied revision
                          on_version_apply=cfg.attributes.get("on_version_apply"))
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_sync_engine(cfg.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():  # pragma: no cover - we never generate offline SQL
    raise SystemExit("offline migrations are not supported")
run_migrations()
