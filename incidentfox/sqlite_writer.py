"""SQLite's single writer, handled in one place.

SQLite lets one connection write at a time. PostgreSQL (production) needs none of this; locally
(``incidentfox up``, tests, the demo) every workaround the platform uses for SQLite lives here, and
each is a no-op on any other database:

* :func:`configure_connection` - WAL, ``synchronous=NORMAL``, a 10 s ``busy_timeout`` and foreign
  keys, on every new connection (``incidentfox.db`` engines install it).
* :func:`single_writer` - whether a session factory's database has one writer. The gateway uses it
  to choose its group commit (``serve_apps.deliveries.batch``). At deploy time the same question is
  asked of the URL (``incidentfox.db.is_sqlite``): ``incidentfox up`` then runs one replica of each
  deployment that writes runs (``serve_apps.builder.SINGLE_WRITER_APPS``).
* :func:`write_lock` - serialises this process's write transactions on one FIFO asyncio lock, so
  contending connections never spin in SQLite's busy handler.
* :func:`retry_locked` - re-runs an idempotent transaction that still lost to another process's
  write ("database is locked") with jittered backoff (:func:`incidentfox.retry.backoff`).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying

from incidentfox.retry import backoff

T = TypeVar("T")
RETRY_TOTAL_S = 120.0
BUSY_TIMEOUT_MS = 10_000

_WRITE_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def configure_connection(dbapi_conn: Any, _record: Any = None) -> None:
    """The pragmas every SQLite connection gets (a ``connect`` event listener)."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")        # readers never block the writer
    cur.execute("PRAGMA synchronous=NORMAL")      # durable at checkpoints; safe with WAL
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def single_writer(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether ``sessions`` write to a database with one writer at a time (SQLite)."""
    bind = sessions.kw.get("bind")
    return bind is not None and bind.dialect.name == "sqlite"


def write_lock(sessions: async_sessionmaker[AsyncSession]) -> contextlib.AbstractAsyncContextManager[Any]:
    """Serialise this process's write transactions on SQLite (one writer per database): waiting on an
    in-process asyncio lock is FIFO and costs nothing, while contending connections spin in SQLite's
    busy handler (sleeps of up to 100 ms) and can fail with "database is locked". No-op elsewhere."""
    if not single_writer(sessions):
        return contextlib.nullcontext()
    loop = asyncio.get_running_loop()
    entry = _WRITE_LOCKS.get(sessions)
    if entry is None or entry[0] is not loop:   # an asyncio.Lock belongs to one loop
        entry = _WRITE_LOCKS[sessions] = (loop, asyncio.Lock())
    return entry[1]


def is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database is locked" (another process held the write lock)."""
    return isinstance(exc, OperationalError) and "locked" in str(exc).lower()


async def retry_locked(op: Callable[[], Awaitable[T]], *, total_s: float = RETRY_TOTAL_S) -> T:
    """Run ``op`` (a whole, idempotent transaction), retrying while SQLite reports the database
    locked, with jittered backoff until ``total_s`` has passed. Any other error (and a lock that
    persists past ``total_s``) propagates. PostgreSQL never raises this error.

    When hundreds of runs finish at once on a busy 2-core node, a transaction can wait longer than
    the connection's ``busy_timeout`` even though nothing is wrong; the engine's state changes
    (claim, first message, finish) are compare-and-set updates, so re-running them is safe."""
    async def attempt() -> T:
        # Awaited here: tenacity calls a plain callable (``lambda: txn(s)``) without awaiting its result.
        return await op()

    return await AsyncRetrying(**backoff(retry_on=is_locked, within_s=total_s, first_s=0.05, max_s=2.0))(attempt)
