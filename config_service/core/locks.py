"""Locked paths: an org or unit forbids its descendants to write some config paths.

A write *touches* a path when the merge patch names it or anything under or above it: with
``llm.provider`` locked, ``{"llm": {"provider": "x"}}``, ``{"llm": null}`` and
``{"llm": {"provider": {"a": 1}}}`` are all refused, while ``{"llm": {"model": "y"}}`` is not.
A node's own locks never restrict the node itself, only the nodes below it.

Locks also hold when they are added after a descendant already set the path: the effective
config drops such descendant values (:func:`prune_locked`), so the locking node's view wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config_service.core.merge import Path, json_copy, paths_overlap, split_path
from incidentfox.errors import Conflict


@dataclass(frozen=True)
class LockViolation:
    path: str          # the path the write touched
    locked_path: str   # the lock it collided with
    locked_by: str     # node id of the ancestor that set the lock


def node_locks(config: Mapping[str, Any]) -> list[str]:
    paths = config.get("locked_paths")
    return [p for p in paths if isinstance(p, str)] if isinstance(paths, list) else []


def find_lock_violation(*, touched: Iterable[Path],
                        ancestors: Sequence[tuple[str, Mapping[str, Any]]]) -> LockViolation | None:
    """First collision of a touched path with a lock set by one of ``ancestors`` (root first)."""
    locks = [(split_path(lock), lock, node_id) for node_id, config in ancestors for lock in node_locks(config)]
    if not locks:
        return None
    for path in touched:
        for lock_path, lock, node_id in locks:
            if paths_overlap(path, lock_path):
                return LockViolation(path=".".join(path), locked_path=lock, locked_by=node_id)
    return None


def raise_if_locked(*, touched: Iterable[Path], ancestors: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    violation = find_lock_violation(touched=touched, ancestors=ancestors)
    if violation is not None:
        raise Conflict(
            f"path {violation.path!r} is locked by node {violation.locked_by!r} ({violation.locked_path})",
            code="path_locked",
            details={"path": violation.path, "locked_path": violation.locked_path,
                     "locked_by": violation.locked_by},
        )


def prune_locked(config: Mapping[str, Any], locks: Sequence[str]) -> dict[str, Any]:
    """Copy of ``config`` without the values that would override any of ``locks``: the locked path
    itself, or a non-object value set on its way (``llm: "x"`` overrides ``llm.provider``)."""
    out = json_copy(config)
    for lock in locks:
        parts = split_path(lock)
        node: Any = out
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                break
            if i == len(parts) - 1 or not isinstance(node[part], dict):
                del node[part]
                break
            node = node[part]
    return out
