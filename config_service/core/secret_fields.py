"""Which config values are secrets, and how they are encrypted, revealed and masked.

A value is secret when its path is under ``integrations.<name>`` (every leaf there: integration
blocks hold credentials whose key names we cannot predict), or when any key on its path looks
secret (``api_key``, ``bot_token``, ``signing_secret``, ``password``…), e.g. ``llm.api_key``.
Paths run through lists: an element's path is its list's path plus its index, so
``custom.webhooks.0.token`` and ``agents.planner.playbook.2.args.api_key`` are secret.

A *secret leaf* is the first value on a secret path that is not an object: a scalar, or a list,
which is encrypted whole. Objects stay objects so merge patches and inheritance work per field;
a list on a path that is not secret stays a list and is searched element by element, at any
depth. A stored secret leaf is ``"enc:v1:" + Fernet(json(value))``, so any JSON type round-trips.
A stored value without that prefix is plaintext from before secrets inside lists were encrypted:
it still reads as is, is masked like any secret, and ``incidentfox secrets rotate`` encrypts it.

Every API response, audit diff and version diff shows :data:`MASK` instead. Sending :data:`MASK`
back in a patch means "keep the stored value", so a client can round-trip a masked document
without wiping secrets: in an object the key is dropped from the patch (:func:`drop_masked`); a
list replaces the stored one whole, so an element holding :data:`MASK` is taken to be the stored
element it was read from (:func:`encrypt_patch`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.fernet import InvalidToken, MultiFernet

from config_service.core.merge import Path, split_path
from incidentfox.errors import IncidentFoxError, Unprocessable

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


def _walk(value: Any, fn: Callable[[Any], Any], path: Path = ()) -> Any:
    """Copy of ``value`` (found at ``path``) with ``fn`` applied to every non-null secret leaf."""
    if isinstance(value, Mapping):
        return {key: _walk(sub, fn, (*path, key)) for key, sub in value.items()}
    if value is not None and is_secret_path(path):
        return fn(value)
    if isinstance(value, list):
        return [_walk(sub, fn, (*path, str(i))) for i, sub in enumerate(value)]
    return value


def _masked(_value: Any) -> str:
    return MASK


def _encrypter(cipher: MultiFernet) -> Callable[[Any], str]:
    return lambda value: ENC_PREFIX + cipher.encrypt(json.dumps(value).encode()).decode()


def _is_ciphertext(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(ENC_PREFIX)


def _undecryptable() -> SecretDecryptionError:
    return SecretDecryptionError("a stored secret cannot be decrypted with the configured keys")


def mask_secrets(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of ``doc`` with every secret leaf replaced by ``"***"`` (nulls in patches kept)."""
    return _walk(doc, _masked)


def encrypt_secrets(doc: Mapping[str, Any], cipher: MultiFernet) -> dict[str, Any]:
    """Copy of ``doc`` (a patch or a config) with secret leaves encrypted; nulls pass through."""
    return _walk(doc, _encrypter(cipher))


def seal_plaintext(doc: Mapping[str, Any], cipher: MultiFernet) -> dict[str, Any]:
    """Copy of a stored config with every secret leaf still in plaintext (written before secrets in
    lists were encrypted) encrypted, and the encrypted ones kept as they are: what a rollback to
    such a version stores."""
    seal = _encrypter(cipher)
    return _walk(doc, lambda value: value if _is_ciphertext(value) else seal(value))


def decrypt_secrets(doc: Mapping[str, Any], cipher: MultiFernet) -> dict[str, Any]:
    """Copy of a stored config with secret leaves decrypted (for the engine; never for responses).
    A leaf stored as plaintext (before secrets in lists were encrypted) is returned as is."""

    def dec(value: Any) -> Any:
        if not _is_ciphertext(value):
            return value
        try:
            return json.loads(cipher.decrypt(value[len(ENC_PREFIX):].encode()))
        except InvalidToken:
            raise _undecryptable() from None

    return _walk(doc, dec)


def rotate_secrets(doc: Mapping[str, Any], cipher: MultiFernet) -> tuple[dict[str, Any], int]:
    """Re-encrypt every stored secret leaf under the newest key, and encrypt any still stored as
    plaintext (written before secrets in lists were encrypted); return the copy and the count."""
    count = 0
    seal = _encrypter(cipher)

    def rot(value: Any) -> Any:
        nonlocal count
        count += 1
        if not _is_ciphertext(value):
            return seal(value)
        try:
            return ENC_PREFIX + cipher.rotate(value[len(ENC_PREFIX):].encode()).decode()
        except InvalidToken:
            raise _undecryptable() from None

    return _walk(doc, rot), count


def drop_masked(patch: Mapping[str, Any], prefix: Path = ()) -> dict[str, Any]:
    """Remove secret leaves equal to ``"***"`` from a patch's objects: a masked value means
    "unchanged". Lists are left to :func:`encrypt_patch`."""
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


def encrypt_patch(patch: Mapping[str, Any], *, stored: Mapping[str, Any], cipher: MultiFernet) -> dict[str, Any]:
    """The patch to merge into the ``stored`` config: secret leaves encrypted, and every list
    element that holds ``"***"`` on a secret path replaced by the stored element it was read from.

    A merge patch replaces a list whole, so a masked value in it cannot just be dropped. The element
    is matched by its masked form: the stored element at the same index of the same list when
    masking it gives exactly the patch's element, else the only stored element of that list that
    does. It is kept as stored (ciphertext untouched, so an unchanged list makes no diff). An
    element that matches none (it was edited: a secret kept for a changed element could be sent
    somewhere new) or several is refused: 422 ``invalid_config`` naming it; send its secrets again.
    """
    errors: list[dict[str, str]] = []
    out = _encrypt_in(patch, stored, _encrypter(cipher), (), errors)
    if errors:
        raise Unprocessable("a masked secret (***) in a list does not match a stored element; send the secret "
                            "again", code="invalid_config", details={"errors": errors})
    return out


def _encrypt_in(value: Any, stored: Any, seal: Callable[[Any], str], path: Path, errors: list) -> Any:
    if isinstance(value, Mapping):
        base = stored if isinstance(stored, Mapping) else {}
        return {key: _encrypt_in(sub, base.get(key), seal, (*path, key), errors) for key, sub in value.items()}
    if not isinstance(value, list) or is_secret_path(path):
        return _walk(value, seal, path)
    olds = stored if isinstance(stored, list) else []
    read: _StoredElements | None = None  # built once per list, only when an element needs it
    out = []
    for i, item in enumerate(value):
        at = (*path, str(i))
        if not _holds_mask(item, at):
            out.append(_walk(item, seal, at))
            continue
        read = _StoredElements(olds, path) if read is None else read
        j = read.match(item, i)
        if j is None:
            errors.append({"path": ".".join(at), "message": "a masked secret (***) here matches no single stored "
                                                            "element; an edited element needs its secrets again"})
            out.append(None)
        else:  # plaintext kept from before secrets in lists were encrypted is encrypted now
            out.append(_walk(olds[j], lambda v: v if _is_ciphertext(v) else seal(v), at))
    return out


class _StoredElements:
    """The stored elements of one list, by the masked form a client read them in."""

    def __init__(self, olds: list[Any], path: Path) -> None:
        self.forms = [json.dumps(_walk(old, _masked, (*path, str(j))), sort_keys=True) for j, old in enumerate(olds)]
        self.where: dict[str, list[int]] = {}
        for j, form in enumerate(self.forms):
            self.where.setdefault(form, []).append(j)

    def match(self, item: Any, index: int) -> int | None:
        """The stored element at ``index`` if it reads as ``item``, else the only one that does."""
        want = json.dumps(item, sort_keys=True)
        if index < len(self.forms) and self.forms[index] == want:
            return index
        same = self.where.get(want, [])
        return same[0] if len(same) == 1 else None


def _holds_mask(value: Any, path: Path) -> bool:
    found = False

    def probe(leaf: Any) -> Any:
        nonlocal found
        found = found or leaf == MASK
        return leaf

    _walk(value, probe, path)
    return found


def mask_changes(items: Any) -> Any:
    """Mask ``old``/``new`` of diff entries (see ``merge.changes``) at and under secret paths,
    inside lists too. Idempotent, so it also masks diffs stored before secrets in lists were."""
    if not isinstance(items, list):
        return items
    out = []
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("path"), str):
            path = split_path(item["path"])
            item = {k: (_walk(v, _masked, path) if k in ("old", "new") else v) for k, v in item.items()}
        out.append(item)
    return out
