"""Org and node ids: ``^[a-z0-9][a-z0-9-]{0,30}$``.

Ids end up in tokens (``{org}.{team}.{random}``), Kubernetes names and Ray resource names, so dots,
underscores and capitals are refused (422) rather than normalised: silently rewriting an id would
make two spellings name one team.
"""

from __future__ import annotations

import re

from incidentfox.errors import Unprocessable

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,30}$"
_ID_RE = re.compile(ID_PATTERN)


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def require_id(value: object, *, field: str) -> str:
    """Return ``value`` if it is a valid id, else raise 422 ``invalid_id`` naming ``field``."""
    if not is_valid_id(value):
        raise Unprocessable(
            f"{field} must match {ID_PATTERN} (lowercase letters, digits and '-', at most 31 characters)",
            code="invalid_id",
            details={"field": field, "pattern": ID_PATTERN},
        )
    return value  # type: ignore[return-value]
