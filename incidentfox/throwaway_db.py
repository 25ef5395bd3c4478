"""Throwaway PostgreSQL databases for tests and benchmarks (the local server, trust auth)."""

from __future__ import annotations

import uuid

from incidentfox.settings import Settings

# INCIDENTFOX_TEST_PG (``Settings.test_pg``), read once at import like the tests' other fixtures.
PG_ADMIN_DSN = Settings().test_pg


def pg_available(admin_dsn: str = PG_ADMIN_DSN) -> bool:
    try:
        import psycopg

        with psycopg.connect(admin_dsn, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False


def create_pg_database(prefix: str = "ifx_test", admin_dsn: str = PG_ADMIN_DSN) -> tuple[str, str]:
    """Create an empty database; return ``(name, SQLAlchemy URL)``."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_pg_database(name: str, admin_dsn: str = PG_ADMIN_DSN) -> None:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
