"""PostgreSQL connections: how many each process keeps, and waiting when the server is full.

Every platform process that touches the database (each Serve replica, investigation actor, tool
executor, scheduler, sandbox manager...) has its own SQLAlchemy pool, so the platform's connections
are the sum of those pools, and PostgreSQL refuses connections past its ``max_connections`` (100 by
default) with "sorry, too many clients already". Measured in a 1,000-run burst on a stock
PostgreSQL with the earlier pools (10 kept + 20 overflow per process), 53 runs failed on that
error and 28 submissions were answered 503; and a checkout past the kept connections opens a new
server backend (a process fork on the server), closed again as soon as it is returned.

So a process keeps at most ``db_pool_size`` connections (settings, default 5, opened as needed)
and opens at most ``db_pool_overflow`` more at peak (default 0: under load a transaction waits in
its own process's queue, which costs nothing, instead of forking a server backend per checkout).
The same burst then held at most 37 connections to the server, and every run succeeded
(docs/operations.md, "Database connections", has the measurements).

The sizes are the guarantee; waiting is for the moments around them. A connection the server
refuses because it is full is not an error yet: :func:`waiting_connect` retries it with the
platform's backoff for up to ``CONNECT_WAIT_S`` and only then raises. Slots free up when a process
closes connections: its overflow ones as they are returned, all of its own when it exits (a replica
replaced, a CLI command or a migration ending). Nothing here applies to SQLite.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import make_url
from tenacity import AsyncRetrying

from incidentfox.retry import backoff

log = logging.getLogger(__name__)

CONNECT_WAIT_S = 30.0   # as long as a checkout waits for a pooled connection (SQLAlchemy's pool_timeout)

# PostgreSQL's words for a server (or a role's, or a database's) connection limit (SQLSTATE 53300).
# libpq reports a refused connection as text only: psycopg's ``sqlstate`` is None there.
_FULL = ("too many clients", "too many connections", "remaining connection slots are reserved")


def server_full(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL refusing a new connection because its connection limit is reached."""
    text = str(exc).lower()
    return any(words in text for words in _FULL)


def waiting_connect(url: str, *, wait_s: float = CONNECT_WAIT_S) -> Callable[[], Awaitable[Any]]:
    """SQLAlchemy's ``async_creator`` for ``url`` (``postgresql+psycopg://``): opens a psycopg
    connection, retrying while the server is full, for at most ``wait_s``."""
    import psycopg

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def connect() -> Any:
        async for attempt in AsyncRetrying(**backoff(retry_on=server_full, within_s=wait_s,
                                                     first_s=0.05, max_s=1.0)):
            with attempt:
                if attempt.retry_state.attempt_number == 2:
                    log.warning("the database refused a connection: its connection limit is reached; "
                                "waiting up to %.0f s", wait_s)
                return await psycopg.AsyncConnection.connect(conninfo)
        raise AssertionError("unreachable: tenacity re-raises the last error")   # pragma: no cover

    return connect


def pool_options(*, pool_size: int, overflow: int, url: str) -> dict[str, Any]:
    """``create_async_engine`` keywords for a PostgreSQL ``url``."""
    return {"pool_size": pool_size, "max_overflow": overflow, "pool_pre_ping": True,
            "async_creator": waiting_connect(url)}
