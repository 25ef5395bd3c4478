"""The one Alembic chain and the ORM models describe the same schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from incidentfox.db import Base, make_sync_engine, upgrade

# Every package that declares tables; the test is the composition root that knows them all.
MODEL_MODULES = ("config_service.db.models", "incidentfox.runs.models", "actors.sandbox.models",
                 "actors.scheduler.models", "incidentfox.egress.store")


@pytest.fixture(scope="module")
def all_models() -> None:
    import importlib

    for name in MODEL_MODULES:
        importlib.import_module(name)


def test_every_table_has_a_migration_and_no_migration_drifts(all_models: None, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    upgrade(url)
    engine = make_sync_engine(url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    tables = [d for d in diffs if d[0] in ("add_table", "remove_table")]
    assert tables == [], f"tables without a migration, or migrated tables without a model: {tables}"
    assert {t.name for t in Base.metadata.sorted_tables} >= {"runs", "webhook_deliveries", "config_nodes"}
