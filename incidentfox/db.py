"""Database plumbing shared by every process: the declarative ``Base``, engines and migrations.

One database holds config, runs, deliveries, sandbox transcripts, schedules and reports. The URL
comes from settings (``INCIDENTFOX_DATABASE_URL``): SQLite by default, PostgreSQL through
``postgresql+psycopg://``. Request paths use the async engine (aiosqlite / psycopg async); Alembic
and CLI maintenance use the sync one. :func:`upgrade` is safe under concurrent starts: on
PostgreSQL it holds an advisory lock for the duration of the migration. What SQLite's single
writer needs (pragmas, the write lock, retries) is in :mod:`incidentfox.sqlite_writer`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, MetaData, TypeDecorator, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from incidentfox.pg_connections import pool_options
from incidentfox.settings import Settings
from incidentfox.sqlite_writer import configure_connection

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MIGRATION_LOCK_ID = 0x1F0C5  # PostgreSQL advisory lock key for `upgrade`.


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both SQLite (which drops tzinfo) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict: JSON, dict[str, Any]: JSON,
        list: JSON, list[str]: JSON, list[dict[str, Any]]: JSON,
    }


def sync_url(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("sqlite+aiosqlite",):
        u = u.set(drivername="sqlite")
    if u.drivername in ("postgresql", "postgresql+asyncpg", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def async_url(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _ensure_sqlite_dir(url: str) -> None:
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)


def make_sync_engine(url: str, **kw) -> Engine:
    url = sync_url(url)
    _ensure_sqlite_dir(url)
    engine = create_engine(url, **kw)
    if is_sqlite(url):
        event.listen(engine, "connect", configure_connection)
    return engine


def make_async_engine(url: str, **kw) -> AsyncEngine:
    url = async_url(url)
    _ensure_sqlite_dir(url)
    if not is_sqlite(url):
        # Read from the environment now, not through the process's cached get_settings(): an engine
        # made before the environment is final (a test, a CLI command) must not freeze what comes later.
        settings = Settings()
        for key, value in pool_options(pool_size=settings.db_pool_size, overflow=settings.db_pool_overflow,
                                       url=url).items():
            kw.setdefault(key, value)
    engine = create_async_engine(url, **kw)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", configure_connection)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str):
    from alembic.config import Config

    here = Path(__file__).resolve().parent.parent / "config_service" / "alembic"
    cfg = Config()
    cfg.set_main_option("script_location", str(here))
    cfg.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head", *, progress: Callable[[str], None] | None = None) -> None:
    """Apply migrations up to ``revision``. Concurrent callers serialise on an advisory lock.
    ``progress(message)``, when given, hears each step (the lock wait, every applied revision)."""
    from alembic import command

    say = progress or (lambda _message: None)

    def applied(*, step: Any, **_kw: Any) -> None:   # alembic's on_version_apply, after each revision
        say(f"applied {step.up_revision_id}")

    url = sync_url(url)
    cfg = alembic_config(url)
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            if not is_sqlite(url):
                say("waiting for the migration lock")
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_ID})
            say(f"migrating to {revision}")
            try:
                cfg.attributes["connection"] = conn
                cfg.attributes["on_version_apply"] = applied
                command.upgrade(cfg, revision)
                conn.commit()
            finally:
                if not is_sqlite(url):
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_ID})
                    conn.commit()
    finally:
        engine.dispose()
