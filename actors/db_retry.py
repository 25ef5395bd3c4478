"""Retrying a transaction that lost to SQLite's write lock: implemented once, in
:mod:`incidentfox.sqlite_writer` (with the other single-writer workarounds); re-exported here for the
engine modules that import it from this path."""

from incidentfox.sqlite_writer import RETRY_TOTAL_S as TOTAL_S
from incidentfox.sqlite_writer import is_locked, retry_locked

__all__ = ["TOTAL_S", "is_locked", "retry_locked"]
