"""Recorded GitHub webhook payloads → :class:`ChangeEvent` evidence. Pure: a payload in, changes out.

The changes have exactly the shape the GitHub REST tools (:mod:`actors.tools.github`) give the same
facts, so the ranking weighs them alike and :func:`actors.ranking.changes.dedupe_changes` recognises
a change found both ways:

* ``push`` to a branch → one ``commit`` per pushed commit (ref: the sha's first 12 characters);
  tag pushes and branch deletions carry no change;
* ``pull_request`` closed with ``merged: true`` → one ``pull_request`` (ref: the PR's URL); other
  actions (opened, edited, closed unmerged…) are not changes;
* ``deployment`` and ``deployment_status`` → one ``deploy`` (ref: the deployed sha's first 12
  characters), described like the ``github_deployments`` tool: ``deploy <ref> to <env>[: desc]``
  plus `` [<state>]`` for a status; its time is the deployment's creation.

Anything malformed yields no change (never an exception): these bodies were verified, but a
recorded payload is still outside input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from incidentfox.evidence import ChangeEvent
from incidentfox.timeparse import parse_time

DESCRIPTION_MAX = 300


def _obj(data: Any, key: str) -> Mapping[str, Any]:
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _str(data: Any, key: str) -> str:
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, str) else (str(value) if isinstance(value, int) else "")


def repo_of(payload: Mapping[str, Any]) -> str:
    """``owner/name`` of the payload's repository ("" when absent)."""
    return _str(_obj(payload, "repository"), "full_name")


def service_of(repo: str, repo_services: Mapping[str, str] | None) -> str:
    """The entity a repo's changes are about: ``integrations.github.repo_services[repo]``, else the
    repo's name (the GitHub tools' rule)."""
    mapped = (repo_services or {}).get(repo)
    return mapped if isinstance(mapped, str) and mapped else repo.split("/")[-1]


def push_changes(payload: Mapping[str, Any], service: str) -> list[ChangeEvent]:
    ref = _str(payload, "ref")
    if not ref.startswith("refs/heads/") or payload.get("deleted") is True:
        return []
    out = []
    for c in payload.get("commits") or []:
        if not isinstance(c, Mapping) or not _str(c, "id"):
            continue
        author = _obj(c, "author")
        out.append(ChangeEvent(
            entity=service, kind="commit",
            description=(_str(c, "message").split("\n")[0])[:DESCRIPTION_MAX],
            at=parse_time(c.get("timestamp")),
            author=_str(author, "username") or _str(author, "name"),
            ref=_str(c, "id")[:12], repo=repo_of(payload), sha=_str(c, "id")))
    return out


def merged_pull_request_change(payload: Mapping[str, Any], service: str) -> list[ChangeEvent]:
    pr = _obj(payload, "pull_request")
    if _str(payload, "action") != "closed" or pr.get("merged") is not True:
        return []
    return [ChangeEvent(
        entity=service, kind="pull_request",
        description=f"#{_str(pr, 'number')} {_str(pr, 'title')[:200]} (merged)",
        at=parse_time(pr.get("merged_at")) or parse_time(pr.get("closed_at")),
        author=_str(_obj(pr, "user"), "login"),
        ref=_str(pr, "html_url"), repo=repo_of(payload), sha=_str(pr, "merge_commit_sha"))]


def deployment_change(payload: Mapping[str, Any], service: str) -> list[ChangeEvent]:
    dep = _obj(payload, "deployment")
    if not dep:
        return []
    state = _str(_obj(payload, "deployment_status"), "state")
    desc = f"deploy {_str(dep, 'ref')} to {_str(dep, 'environment')}"
    if _str(dep, "description"):
        desc += f": {_str(dep, 'description')}"
    return [ChangeEvent(
        entity=service, kind="deploy",
        description=(desc + (f" [{state}]" if state else ""))[:DESCRIPTION_MAX],
        at=parse_time(dep.get("created_at")),
        author=_str(_obj(dep, "creator"), "login"),
        ref=_str(dep, "sha")[:12])]


_BY_EVENT = {
    "push": push_changes,
    "pull_request": merged_pull_request_change,
    "deployment": deployment_change,
    "deployment_status": deployment_change,
}


def changes_from_payload(event_kind: str, payload: Mapping[str, Any],
                         repo_services: Mapping[str, str] | None = None) -> list[ChangeEvent]:
    """The changes one recorded delivery carries. ``event_kind`` is the recorded kind
    (``push``, ``pull_request.merged``, ``deployment``, ``deployment_status.success``…): the part
    before the first dot picks the parser."""
    parse = _BY_EVENT.get(event_kind.split(".", 1)[0])
    repo = repo_of(payload) if isinstance(payload, Mapping) else ""
    if parse is None or not repo:
        return []
    return parse(payload, service_of(repo, repo_services))
