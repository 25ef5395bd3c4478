"""Transaction-scoped named locks: serialise writers that each check "no such row yet", then insert.

A row lock (``SELECT … FOR UPDATE``, :func:`incidentfox.runs.store.get_run`) only covers a row that
exists. Two alerts of one storm each find no active run for ``service:checkout`` and would each
start one; :func:`lock_names` makes the second wait until the first's transaction ended, and then
find the first's run (under READ COMMITTED each statement sees what committed before it).

On PostgreSQL each name is a ``pg_advisory_xact_lock`` on a stable 64-bit hash of it (SHA-256, so
every process and replica agrees), released when the transaction commits or rolls back. A caller
passes all its names of one kind in ONE call: the hashes are taken in ascending order, so two
transactions locking overlapping sets never wait on each other in a cycle. Kinds are taken in one
order: a thread's lock (:func:`thread_lock_name`) before a team's correlation locks
(:func:`correlation_lock_names`), and both before any lock on an existing row (a sandbox session's
thread claim inserts its own new row first, which nobody else waits on). A hash collision only
serialises two unrelated names.

On SQLite nothing is taken: a transaction that has written holds the database's one write lock
(intake inserts its delivery row before it decides), so no other writer runs between its check and
its insert.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession


def lock_key(name: str) -> int:
    """The signed 64-bit advisory-lock key of ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def thread_lock_name(*, channel: str, thread_ts: str) -> str:
    """The lock name of a Slack thread: every binder (a run or a sandbox session bound to it) holds it
    from reading the thread's owner to its insert, so two first bindings at once find one owner."""
    return json.dumps(["thread", channel, thread_ts])


def correlation_lock_names(*, org_id: str, team_id: str, keys: Iterable[str]) -> list[str]:
    """The lock names of a team's correlation keys (``service:…`` / ``fp:…``); JSON, so no choice of
    ids can make two different (org, team, key) triples one name."""
    return [json.dumps(["correlation", org_id, team_id, k]) for k in sorted({k for k in keys if k})]


async def lock_names(session: AsyncSession, names: Iterable[str]) -> None:
    """Hold a lock on each of ``names`` until ``session``'s transaction ends (see module doc)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted({lock_key(n) for n in names}):
        await session.execute(select(func.pg_advisory_xact_lock(key)))
