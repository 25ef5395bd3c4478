"""Parse recorded ``argocd app get`` / ``argocd app list`` text into the API's application shape,
then into evidence exactly as the live tool does (:func:`actors.tools.argocd.application_state`)."""

from __future__ import annotations

import re
from typing import Any

from actors.tools.argocd import application_state
from evaluation.recordings.kubectl import parse_table, parse_tree
from incidentfox.evidence import ObjectState

_TABLE_HEAD = re.compile(r"^(GROUP\s+KIND|NAME\s+CLUSTER)\b")


def _app(name: str, sync: str, health: str, phase: str = "", message: str = "",
         resources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    namespace, _, short = name.rpartition("/")   # the CLI prints <app namespace>/<app name>
    return {"metadata": {"name": short, "namespace": namespace},
            "status": {"sync": {"status": sync.split(" ")[0]}, "health": {"status": health},
                       "operationState": {"phase": phase, "message": message}, "resources": resources or []}}


def _resources(lines: list[str]) -> list[dict[str, Any]]:
    start = next((i for i, ln in enumerate(lines) if _TABLE_HEAD.match(ln)), None)
    if start is None:
        return []
    return [{"kind": r.get("KIND", ""), "namespace": r.get("NAMESPACE", ""), "name": r.get("NAME", ""),
             "status": r.get("STATUS", ""), "health": {"status": r.get("HEALTH", ""), "message": r.get("MESSAGE", "")}}
            for r in parse_table(lines[start:])]


def parse_app_get(text: str) -> list[ObjectState]:
    """``argocd app get <name>``: one application with its sync, health, last operation and resources."""
    tree = parse_tree(text.split("\n\n" + next((ln for ln in text.splitlines() if _TABLE_HEAD.match(ln)), "\0"))[0])
    name = tree.val("Name")
    if not name:
        return []
    app = _app(name, tree.val("Sync Status"), tree.val("Health Status"), tree.val("Phase"), tree.val("Message"),
               _resources(text.splitlines()))
    return [application_state(app)]


def parse_app_list(text: str) -> list[ObjectState]:
    """``argocd app list``: one application per row (sync and health only)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if _TABLE_HEAD.match(ln)), None)
    rows = parse_table(lines[start:]) if start is not None else []
    return [application_state(_app(r["NAME"], r.get("STATUS", ""), r.get("HEALTH", ""))) for r in rows if r.get("NAME")]
