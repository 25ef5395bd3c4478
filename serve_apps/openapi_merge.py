"""Merge the OpenAPI documents of several HTTP surfaces into one (a pure function).

Each surface is a FastAPI app mounted under a route prefix (``serve_apps/serve_config.yaml``); its
own document lists paths relative to that prefix. :func:`merge_openapi` returns one OpenAPI 3
document for the whole platform:

* paths are prefixed with the surface's mount prefix (two surfaces claiming the same full path is
  a mounting error: :class:`ValueError`);
* components (schemas and any other section) that several surfaces define identically are kept
  once; a name defined differently by two surfaces is namespaced in each of them
  (``Agent_ApprovalDecision``, ``Sandbox_ApprovalDecision``) and their ``$ref`` s rewritten;
* an ``operationId`` used by more than one surface is prefixed the same way (``sandbox_health_…``),
  so ids stay unique and every other id is unchanged;
* every operation carries ``x-surface`` (the surface's name) and, when it had no tag, the
  surface's name as its tag; per-surface ``servers`` are dropped (the prefix is in the path).

Nothing here builds an app: callers pass the documents (see :mod:`serve_apps.api_docs`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class Surface:
    name: str                 # the Serve application's name, e.g. "agent"
    prefix: str               # its route prefix as deployed, e.g. "/api/v1/agent" ("/" for the root)
    document: dict[str, Any]  # its own OpenAPI document (paths relative to the prefix)


def full_path(prefix: str, path: str) -> str:
    """``prefix`` + ``path`` as a client calls it (``"/"`` + ``"/health"`` → ``"/health"``)."""
    base = prefix.rstrip("/")
    if path in ("", "/"):
        return base or "/"
    return base + path


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def _renames(surfaces: Sequence[Surface]) -> dict[str, dict[tuple[str, str], str]]:
    """Per surface: (components section, name) → new name, for names defined differently by two."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for s in surfaces:
        for section, entries in (s.document.get("components") or {}).items():
            for name, value in entries.items():
                seen.setdefault((section, name), {})[s.name] = value
    out: dict[str, dict[tuple[str, str], str]] = {s.name: {} for s in surfaces}
    for (section, name), by_surface in seen.items():
        values = list(by_surface.values())
        if any(v != values[0] for v in values[1:]):
            for surface_name in by_surface:
                out[surface_name][(section, name)] = f"{_title(surface_name)}_{name}"
    return out


def _rewrite_refs(node: Any, renames: dict[tuple[str, str], str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/"):
                _, _, section, name = value.split("/", 3)
                new = renames.get((section, name))
                out[key] = f"#/components/{section}/{new}" if new else value
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def _shared_operation_ids(surfaces: Sequence[Surface]) -> set[str]:
    owners: dict[str, set[str]] = {}
    for s in surfaces:
        for item in (s.document.get("paths") or {}).values():
            for method in METHODS:
                op_id = (item.get(method) or {}).get("operationId")
                if op_id:
                    owners.setdefault(op_id, set()).add(s.name)
    return {op_id for op_id, names in owners.items() if len(names) > 1}


def merge_openapi(surfaces: Sequence[Surface], *, title: str = "IncidentFox API", version: str = "1",
                  description: str = "") -> dict[str, Any]:
    """One OpenAPI document for all ``surfaces`` (see the module docstring)."""
    names = [s.name for s in surfaces]
    if len(set(names)) != len(names):
        raise ValueError(f"surface names must be unique: {names}")
    renames = _renames(surfaces)
    shared_ids = _shared_operation_ids(surfaces)
    versions = sorted({s.document.get("openapi", "3.1.0") for s in surfaces}) or ["3.1.0"]
    merged: dict[str, Any] = {"openapi": versions[-1],
                              "info": {"title": title, "version": version, "description": description},
                              "paths": {}, "components": {}, "tags": []}
    owner_of: dict[str, str] = {}
    for s in surfaces:
        doc = _rewrite_refs(copy.deepcopy(s.document), renames[s.name])
        merged["tags"].append({"name": s.name, "description": f"{doc.get('info', {}).get('title', s.name)} "
                                                              f"(mounted at {s.prefix})"})
        for path, item in (doc.get("paths") or {}).items():
            full = full_path(s.prefix, path)
            if full in owner_of:
                raise ValueError(f"{full} is served by both {owner_of[full]!r} and {s.name!r}")
            owner_of[full] = s.name
            for method in METHODS:
                op = item.get(method)
                if op is None:
                    continue
                if op.get("operationId") in shared_ids:
                    op["operationId"] = f"{s.name}_{op['operationId']}"
                op["x-surface"] = s.name
                op.setdefault("tags", [s.name])
            merged["paths"][full] = item
        for section, entries in (doc.get("components") or {}).items():
            target = merged["components"].setdefault(section, {})
            for name, value in entries.items():
                target[renames[s.name].get((section, name), name)] = value
    for section in merged["components"].values():
        section_sorted = dict(sorted(section.items()))
        section.clear()
        section.update(section_sorted)
    merged["paths"] = dict(sorted(merged["paths"].items()))
    return merged
