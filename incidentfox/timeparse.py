"""The one parser of the timestamps IncidentFox reads from the outside world.

Webhook payloads, tool backends (Kubernetes, Prometheus, Loki, GitHub, Slack, …), recorded
benchmark traces and run triggers carry times as ISO-8601 / RFC 3339 strings (any fraction length,
``Z`` or an offset, with or without a zone), as unix timestamps (numbers or numeric strings, in
seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude), or as ``datetime``
objects. :func:`parse_time` maps all of them to an aware UTC ``datetime``.

Pure and total: it never raises, and anything it cannot read (empty, malformed, out of range,
Go's zero time ``0001-01-01T00:00:00Z``, which Alertmanager sends for "no end") is ``None``.
ISO strings are read with ``python-dateutil``'s strict ISO parser.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from dateutil.parser import isoparse

MAX_TEXT = 64          # longer strings are not timestamps
_NUMERIC = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,9})?")
# Unix timestamps above these are in ns, µs, ms (a seconds value that large is past the year 9999).
_SCALES = ((1e18, 1e9), (1e15, 1e6), (1e12, 1e3))


def _from_unix(x: float) -> datetime | None:
    if not math.isfinite(x):
        return None
    for threshold, divisor in _SCALES:
        if abs(x) >= threshold:
            x /= divisor
            break
    try:
        return datetime.fromtimestamp(x, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _utc(dt: datetime) -> datetime | None:
    try:
        out = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return None if out.year <= 1 else out


def parse_time(value: Any) -> datetime | None:
    """``value`` as an aware UTC datetime, or None when it is not a usable timestamp (see the module)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, int | float):
        return _from_unix(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > MAX_TEXT:
        return None
    if _NUMERIC.fullmatch(text):
        return _from_unix(float(text))
    try:
        parsed = isoparse(text)
    except (ValueError, OverflowError):
        return None
    return _utc(parsed)
