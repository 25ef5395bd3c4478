"""Config layering: deep merge of layers and RFC 7396 JSON merge patches.

Contracts (checked by property tests):

* Nothing here mutates its inputs, and no result aliases an input's nested dict or list: a cached
  org layer can be merged into many teams' configs without one merge leaking into another.
* :func:`deep_merge`: objects merge key by key; scalars and lists replace; the last layer wins.
* :func:`merge_patch`: RFC 7396. ``null`` removes a key, so the parent layer's value shows through
  again; a non-object patch replaces the target.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Path = tuple[str, ...]


def json_copy(value: Any) -> Any:
    """Copy a JSON tree (dicts and lists are new objects; scalars are immutable and shared)."""
    if isinstance(value, Mapping):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


def deep_merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``layers`` left to right into a new dict: objects merge, scalars and lists replace."""
    result: dict[str, Any] = {}
    for layer in layers:
        _merge_into(result, layer)
    return result


def _merge_into(target: dict[str, Any], src: Mapping[str, Any]) -> None:
    # `target` and every dict nested in it were built here (json_copy), so updating them in place
    # never touches a caller's object.
    for key, value in src.items():
        current = target.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            _merge_into(current, value)
        else:
            target[key] = json_copy(value)


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7396 merge patch to ``target`` and return the result as a new tree."""
    return _apply(json_copy(target), patch)


def _apply(target: Any, patch: Any) -> Any:
    # `target` is owned (already copied), so it may be updated in place.
    if not isinstance(patch, Mapping):
        return json_copy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _apply(target.get(key), value)
    return target


def make_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7396 patch that turns ``old`` into ``new`` (``new`` must hold no ``null`` in objects)."""
    patch: dict[str, Any] = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        before = old.get(key, _MISSING)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            sub = make_patch(before, value)
            if sub:
                patch[key] = sub
        elif before is _MISSING or before != value or type(before) is not type(value):
            patch[key] = json_copy(value)
    return patch


_MISSING = object()


def iter_leaves(doc: Mapping[str, Any], prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Yield ``(path, value)`` for every non-object value (scalars and lists are leaves)."""
    for key, value in doc.items():
        path = (*prefix, key)
        if isinstance(value, Mapping):
            yield from iter_leaves(value, path)
        else:
            yield path, value


def patch_paths(patch: Mapping[str, Any], prefix: Path = ()) -> Iterator[Path]:
    """Paths a merge patch writes or removes. An empty object writes nothing, so yields nothing."""
    for key, value in patch.items():
        path = (*prefix, key)
        if isinstance(value, Mapping):
            yield from patch_paths(value, path)
        else:
            yield path


def changes(old: Mapping[str, Any], new: Mapping[str, Any], prefix: Path = ()) -> list[dict[str, Any]]:
    """Leaf-level diff: ``[{"path", "op": add|remove|replace, "old"?, "new"?}]`` sorted by path."""
    out: list[dict[str, Any]] = []
    for key in sorted(set(old) | set(new)):
        path = (*prefix, key)
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(changes(a, b, path))
            continue
        if a is not _MISSING and b is not _MISSING and a == b and type(a) is type(b):
            continue
        if isinstance(a, Mapping):  # an object replaced by a scalar: report its leaves as removed
            out.extend({"path": ".".join(p), "op": "remove", "old": v} for p, v in iter_leaves(a, path))
            a = _MISSING
            if b is _MISSING:
                continue
        if isinstance(b, Mapping):
            if a is not _MISSING:
                out.append({"path": ".".join(path), "op": "remove", "old": a})
            out.extend({"path": ".".join(p), "op": "add", "new": v} for p, v in iter_leaves(b, path))
            continue
        if a is _MISSING:
            out.append({"path": ".".join(path), "op": "add", "new": json_copy(b)})
        elif b is _MISSING:
            out.append({"path": ".".join(path), "op": "remove", "old": json_copy(a)})
        else:
            out.append({"path": ".".join(path), "op": "replace", "old": json_copy(a), "new": json_copy(b)})
    return out


def split_path(dotted: str) -> Path:
    return tuple(dotted.split("."))


def paths_overlap(a: Path, b: Path) -> bool:
    """True when one path is a prefix of the other (writing ``llm`` touches ``llm.provider``)."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]
