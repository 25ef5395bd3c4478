"""Per-process LRU cache of composed effective configs, keyed by ``(database, org, node, org epoch)``.

Entries keep secret leaves encrypted, as stored; readers decrypt (engine) or mask (responses) their
own copy, so no decrypted tenant credential lives in this cache.

The database part (its URL, password hidden) keeps two databases in one process (tests, tools)
apart. Correctness does not depend on eviction: every config write bumps the org epoch in the database,
readers read the epoch first, so an entry for an old epoch is simply never asked for again. Values
are stored once and copied out, so callers may mutate what they get.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core.merge import json_copy

CacheKey = tuple[str, str, str, int]
_DB_KEYS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def database_key(session: AsyncSession) -> str:
    """A stable name for the database behind ``session`` (memoised per engine)."""
    engine = session.bind.sync_engine if session.bind is not None else None
    if engine is None:
        return ""
    key = _DB_KEYS.get(engine)
    if key is None:
        key = _DB_KEYS[engine] = str(engine.url)
    return key


class EffectiveConfigCache:
    def __init__(self, max_entries: int = 4096) -> None:
        self._max = max_entries
        self._data: OrderedDict[CacheKey, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()  # Serve replicas may call from several threads
        self.hits = 0
        self.misses = 0

    def get(self, key: CacheKey) -> dict[str, Any] | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
        return json_copy(value)

    def put(self, key: CacheKey, value: dict[str, Any]) -> None:
        with self._lock:
            self._data[key] = json_copy(value)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def invalidate(self, org_id: str, node_id: str | None = None) -> int:
        """Drop the entries of one org (or one node), whatever their database and epoch."""
        with self._lock:
            keys = [k for k in self._data if k[1] == org_id and (node_id is None or k[2] == node_id)]
            for key in keys:
                del self._data[key]
        return len(keys)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


EFFECTIVE_CACHE = EffectiveConfigCache()


def clear_effective_cache() -> None:
    EFFECTIVE_CACHE.clear()
