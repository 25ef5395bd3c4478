"""Which config values are secrets, and how they are encrypted, revealed and masked.

A value is secret when its path is under ``integrations.<name>`` (every leaf there: integration
blocks hold credentials whose key names we cannot predict), or when any key on its path looks
secret (``api_key``, ``bot_token``, ``signing_secret``, ``password``…), e.g. ``llm.api_key``.

Only leaves (scalars and lists) are encrypted; objects stay objects so merge patches and
inheritance work per field. A stored secret leaf is ``"enc:v1:" + Fernet(json(value))``, so any
JSON type round-trips. Every API response, audit diff and version diff shows :data:`MASK`
instead; sending :data:`MASK` back in a patch means "keep the stored value" so a client can
round-trip a masked document without wiping secrets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import InvalidToken, MultiFernet

from config_service.core.merge import Path
from incidentfox.errors import IncidentFoxError

MASK = "***"
ENC_PREFIX = "enc:v1:"

_SECRET_NAMES = frozenset({"token", "secret", "password", "passwd", "key", "credentials", "credential",
                           "apikey", "private_key", "client_secret"})
_SECRET_SUFFIXES = ("_token", "-token", "_secret", "-secret", "_password", "-password", "_key", "-key",
                    "_credentials", "apikey")


class SecretDecryptionError(IncidentFoxError):
    """A stored secret no key in ``INCIDENTFOX_SECRET_KEY`` decrypts (a key was dropped too early)."""

    status, code = 500, "secret_undecryptable"


def is_secret_name(name: str) -> bool:
    low = name.lower()
    return low in _SECRET_NAMES or low.endswith(_SECRET_SUFFIXES)


def is_secret_path(path: Path) -> bool:
    if len(path) >= 2 and path[0] == "integrations":
        return True
    return any(is_secret_name(part) for part in path)


def _map_secret_leaves(doc: Any, fn, prefix: Path = ()) -> Any:
    """Return a copy of ``doc`` with ``fn(value)`` applied to every non-null secret leaf."""
    if isinstance(doc, Mapping):
        out = {}
        for key, value in doc.items():
            path = (*prefix, key)
            if isinstance(value, Mapping):
                out[key] = _map_secret_leaves(value, fn, path)
            elif value is not None and is_secret_path(path):
                out[key] = fn(value)
            else:
                out[key] = _plain_copy(value)
        return out
    return _plain_copy(doc)


def _plain_copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain_copy(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain_copy(v) for k, v in value.items()}
    return value


def mask_secrets(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of ``doc`` with every secret leaf replaced by ``"***"`` (nulls in patches kept)."""
    return _map_secret_leaves(doc, lambda _v: MASK)


def encrypt_secrets(doc: Mapping[str, Any], cipher: MultiFernet) -> dict[str, Any]:
    """Copy of ``doc`` (a patch or a config) with secret leaves encrypted; nulls pass through."""
    return _map_secret_leaves(doc, lambda v: ENC_PREFIX + cipher.encrypt(json.dumps(v).encode()).decode())


def decrypt_secrets(doc: Mapping[str, Any], cipher: MultiFernet) -> dict[str, Any]:
    """Copy of a stored config with secret leaves decrypted (for the engine; never for responses)."""

    def dec(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(ENC_PREFIX):
            try:
                return json.loads(cipher.decrypt(value[len(ENC_PREFIX):].encode()))
            except InvalidToken:
                raise SecretDecryptionError("a stored secret cannot be decrypted with the configured keys") \
                    from None
        return value

    return _map_secret_leaves(doc, dec)


def rotate_secrets(doc: Mapping[str, Any], cipher: MultiFernet) -> tuple[dict[str, Any], int]:
    """Re-encrypt every stored secret leaf under the newest key; return the copy and the count."""
    count = 0

    def rot(value: Any) -> Any:
        nonlocal count
        if isinstance(value, str) and value.startswith(ENC_PREFIX):
            try:
                token = cipher.rotate(value[len(ENC_PREFIX):].encode()).decode()
            except InvalidToken:
                raise SecretDecryptionError("a stored secret cannot be decrypted with the configured keys") \
                    from None
            count += 1
            return ENC_PREFIX + token
        return value

    return _map_secret_leaves(doc, rot), count


def drop_masked(patch: Mapping[str, Any], prefix: Path = ()) -> dict[str, Any]:
    """Remove secret leaves equal to ``"***"`` from a patch: a masked value means "unchanged"."""
    out: dict[str, Any] = {}
    for key, value in patch.items():
        path = (*prefix, key)
        if isinstance(value, Mapping):
            sub = drop_masked(value, path)
            if sub or not value:
                out[key] = sub
        elif value == MASK and is_secret_path(path):
            continue
        else:
            out[key] = value
    return out


def mask_changes(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mask ``old``/``new`` of diff entries whose path is secret (see ``merge.changes``)."""
    out = []
    for item in items:
        if is_secret_path(tuple(item["path"].split("."))):
            item = {k: (MASK if k in ("old", "new") and v is not None else v) for k, v in item.items()}
        out.append(item)
    return out
