"""GitHub webhooks.

Verification (docs: "Validating webhook deliveries"):
``X-Hub-Signature-256 = "sha256=" + hex(HMAC-SHA256(secret, body))``. There is no timestamp, and
the ``X-GitHub-Delivery`` GUID is NOT signed: a replay of a signed body under a fresh GUID must stay a
duplicate, so the delivery id is the SHA-256 of the signed body (``sha256:<hex>``; GitHub's redeliveries
resend the same body, so they stay duplicates too).

Events: an ``issue_comment`` (created) that mentions ``@incidentfox`` or starts with ``/incidentfox``
→ START (human); ``check_run`` / ``workflow_run`` completed with a failing conclusion → START
(``event_kind="ci_failure"``); ``push``, ``pull_request``, ``deployment`` and ``deployment_status`` →
RECORD (change events, read back by :mod:`actors.tools.recorded_changes`); the rest is ignored. Bodies may be JSON or the legacy ``payload=<json>`` form encoding.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from incidentfox.contracts import TriggerAction
from serve_apps.webhooks.common import (
    ParseResult,
    accepted,
    answer_target,
    arr,
    body_digest,
    build_trigger,
    clip,
    has_header,
    header,
    identifiers,
    ignored,
    links,
    load_form,
    load_json_object,
    obj,
    parse_time,
    positive_int,
    require_secret,
    s,
    same,
    to_bytes,
)
from serve_apps.webhooks.errors import WebhookError, malformed

SOURCE = "github"
SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
BOT_HANDLE = "incidentfox"
# Conclusions that mean "CI is broken"; cancelled/skipped/neutral/action_required are not failures.
FAILING_CONCLUSIONS = frozenset({"failure", "timed_out", "startup_failure"})
RECORDED_PR_ACTIONS = frozenset({"opened", "reopened", "synchronize", "closed", "edited", "ready_for_review"})
_MENTION_RE = re.compile(rf"(?<![\w@/-])@{BOT_HANDLE}(?:\[bot\])?(?![\w-])", re.IGNORECASE)
_COMMAND_RE = re.compile(rf"^\s*/{BOT_HANDLE}(?![\w-])", re.IGNORECASE)


def sign(*, body: bytes, secret: str) -> dict[str, str]:
    """The signature header GitHub would send for ``body`` (tests, benchmarks)."""
    digest = hmac.new(to_bytes(secret), body, hashlib.sha256).hexdigest()
    return {SIGNATURE_HEADER: f"sha256={digest}"}


def verify(*, headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
    """Check ``X-Hub-Signature-256``; raise WebhookError (401) otherwise. ``now`` is unused (no
    timestamp in GitHub's scheme)."""
    key = require_secret(secret, SOURCE)
    signature = header(headers, SIGNATURE_HEADER)
    if not signature:
        raise WebhookError("missing_signature", source=SOURCE, message=f"missing {SIGNATURE_HEADER} header")
    expected = "sha256=" + hmac.new(key, bytes(body), hashlib.sha256).hexdigest()
    if not same(expected, signature):
        raise WebhookError("bad_signature", source=SOURCE, message="GitHub signature does not match")


def signature_present(headers: Mapping[str, str]) -> bool:
    """Whether the request carries a GitHub signature at all (checked before any lookup)."""
    return has_header(headers, SIGNATURE_HEADER)


def parse(*, headers: Mapping[str, str], body: bytes, now: float) -> ParseResult:
    """Needs ``X-GitHub-Event`` (else ``malformed_body``). The delivery id is ``sha256:`` + hex of
    the body, never the unsigned ``X-GitHub-Delivery`` header. ``now`` unused."""
    event = header(headers, EVENT_HEADER) or ""
    if not event:
        raise malformed(SOURCE, f"missing {EVENT_HEADER} header")
    data = _strict_body(body)
    did = "sha256:" + body_digest(body)
    if event == "ping":
        return ignored("ping")
    handler = _HANDLERS.get(event)
    if handler is None:
        return ignored(f"unsupported_event:{clip(event, 64)}")
    return handler(data, did)


def _strict_body(body: bytes) -> dict[str, Any]:
    if not isinstance(body, bytes | bytearray | memoryview):
        raise malformed(SOURCE, "body must be bytes")
    raw = bytes(body)
    if raw.startswith(b"payload="):
        form = load_form(raw, SOURCE)
        return load_json_object(to_bytes(form.get("payload", "")), SOURCE)
    return load_json_object(raw, SOURCE)


def _repo(data: dict[str, Any]) -> str:
    repo = s(obj(data, "repository"), "full_name")
    if not repo:
        raise malformed(SOURCE, "missing repository.full_name")
    return repo


def _is_bot(user: dict[str, Any]) -> bool:
    return s(user, "type") == "Bot" or s(user, "login").endswith("[bot]")


def _issue_comment(data: dict[str, Any], did: str) -> ParseResult:
    repo = _repo(data)
    action = s(data, "action")
    comment, issue = obj(data, "comment"), obj(data, "issue")
    if not comment:
        raise malformed(SOURCE, "issue_comment without a comment object")
    body = comment.get("body") if isinstance(comment.get("body"), str) else ""
    user = obj(comment, "user")
    fields = {
        "delivery_id": did,
        "event_kind": "issue_comment",
        "identifiers": identifiers(github_repo=repo),
        "title": s(issue, "title"),
        "links": links(s(comment, "html_url"), s(issue, "html_url")),
        "actor": s(user, "login") or None,
        "occurred_at": parse_time(comment.get("created_at")),
        "external_ref": s(issue, "html_url") or None,
        "answer_to": answer_target(SOURCE, repo=repo, issue_number=positive_int(issue, "number"),
                                   installation_id=positive_int(obj(data, "installation"), "id")),
    }
    if action != "created":
        return ignored(f"comment_{clip(action, 32) or 'unknown'}",
                       build_trigger(SOURCE, action=TriggerAction.IGNORE, text=body, **fields))
    if _is_bot(user):
        return ignored("bot_comment", build_trigger(SOURCE, action=TriggerAction.IGNORE, text=body, **fields))
    if not (_COMMAND_RE.search(body) or _MENTION_RE.search(body)):
        return ignored("not_addressed",
                       build_trigger(SOURCE, action=TriggerAction.IGNORE, text=body, **fields))
    text = _MENTION_RE.sub("", _COMMAND_RE.sub("", body, count=1))
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    return accepted(build_trigger(SOURCE, action=TriggerAction.START, human=True, text=text, **fields))


def _ci(data: dict[str, Any], did: str, key: str) -> ParseResult:
    repo = _repo(data)
    run = obj(data, key)
    if not run:
        raise malformed(SOURCE, f"{key} event without a {key} object")
    conclusion = s(run, "conclusion")
    name = s(run, "name") or s(obj(data, "workflow"), "name") or key
    branch = s(run, "head_branch") or s(obj(run, "check_suite"), "head_branch")
    sha = s(run, "head_sha")
    failing = conclusion in FAILING_CONCLUSIONS
    label = "CI failure" if failing else f"CI {conclusion or 'finished'}"
    title = f"{label}: {name} on {repo}" + (f"@{branch}" if branch else "")
    text_parts = [f"{key} {name!r} concluded {conclusion or 'unknown'}"]
    if sha:
        text_parts.append(f"commit {sha}")
    if s(run, "display_title"):
        text_parts.append(s(run, "display_title"))
    url = s(run, "html_url")
    trigger_fields = {
        "delivery_id": did,
        "event_kind": "ci_failure" if failing else f"{key}.completed",
        "identifiers": identifiers(github_repo=repo),
        "title": title,
        "text": "; ".join(text_parts),
        "links": links(url, s(run, "details_url")),
        "actor": s(obj(data, "sender"), "login") or None,
        "occurred_at": parse_time(run.get("completed_at")) or parse_time(run.get("updated_at")),
        "external_ref": url or None,
        "fingerprint": f"github:{key}:{s(run, 'id')}" if s(run, "id") else None,
        "answer_to": answer_target(SOURCE, repo=repo, head_sha=sha,
                                   installation_id=positive_int(obj(data, "installation"), "id")),
    }
    if s(data, "action") != "completed":
        return ignored(f"{key}_{clip(s(data, 'action'), 32) or 'unknown'}")
    if not failing:
        return ignored(f"{key}_{clip(conclusion, 32) or 'no_conclusion'}",
                       build_trigger(SOURCE, action=TriggerAction.IGNORE, **trigger_fields))
    return accepted(build_trigger(SOURCE, action=TriggerAction.START, **trigger_fields))


def _check_run(data: dict[str, Any], did: str) -> ParseResult:
    return _ci(data, did, "check_run")


def _workflow_run(data: dict[str, Any], did: str) -> ParseResult:
    return _ci(data, did, "workflow_run")


def _push(data: dict[str, Any], did: str) -> ParseResult:
    repo = _repo(data)
    ref = s(data, "ref")
    if not ref:
        raise malformed(SOURCE, "push without ref")
    commits = [c for c in arr(data, "commits") if isinstance(c, dict)]
    head = obj(data, "head_commit")
    messages = [f"{s(c, 'id')[:12]} {s(c, 'message').splitlines()[0] if s(c, 'message') else ''}".strip()
                for c in commits]
    first_line = s(head, "message").splitlines()[0] if s(head, "message") else ""
    title = f"push to {repo} {ref}" + (f": {first_line}" if first_line else "")
    if data.get("deleted") is True:
        title = f"{repo} {ref} deleted"
    pushed_at = parse_time(head.get("timestamp")) or parse_time(obj(data, "repository").get("pushed_at"))
    return accepted(build_trigger(
        SOURCE,
        delivery_id=did,
        event_kind="push",
        action=TriggerAction.RECORD,
        identifiers=identifiers(github_repo=repo),
        title=title,
        text="\n".join([f"{s(data, 'before')[:12]}..{s(data, 'after')[:12]}", *messages]),
        links=links(s(data, "compare"), s(head, "url")),
        actor=s(obj(data, "pusher"), "name") or s(obj(data, "sender"), "login") or None,
        occurred_at=pushed_at,
        external_ref=None if data.get("deleted") is True else (s(data, "after") or None),
    ))


def _pull_request(data: dict[str, Any], did: str) -> ParseResult:
    repo = _repo(data)
    pr = obj(data, "pull_request")
    if not pr:
        raise malformed(SOURCE, "pull_request event without a pull_request object")
    action = s(data, "action")
    merged = pr.get("merged") is True
    verb = "merged" if action == "closed" and merged else action
    number = s(pr, "number") or s(data, "number")
    body = pr.get("body") if isinstance(pr.get("body"), str) else ""
    fields = {
        "delivery_id": did,
        "event_kind": f"pull_request.{clip(verb, 32) or 'unknown'}",
        "identifiers": identifiers(github_repo=repo),
        "title": f"PR #{number} {verb}: {s(pr, 'title')}",
        "text": body,
        "links": links(s(pr, "html_url")),
        # A merge's actor is who merged it (the revert pull request's approval, actors/engine/revert_merge.py).
        "actor": (s(obj(pr, "merged_by"), "login") if merged else "") or s(obj(data, "sender"), "login") or None,
        "occurred_at": ((parse_time(pr.get("merged_at")) if merged else None)
                        or parse_time(pr.get("updated_at")) or parse_time(pr.get("created_at"))),
        "external_ref": s(pr, "html_url") or None,
    }
    if action not in RECORDED_PR_ACTIONS:
        return ignored(f"pull_request_{clip(action, 32) or 'unknown'}",
                       build_trigger(SOURCE, action=TriggerAction.IGNORE, **fields))
    return accepted(build_trigger(SOURCE, action=TriggerAction.RECORD, **fields))


def _deployment(data: dict[str, Any], did: str) -> ParseResult:
    """``deployment`` (created) and ``deployment_status`` (created): recorded as change events."""
    repo = _repo(data)
    dep = obj(data, "deployment")
    if not dep:
        raise malformed(SOURCE, "deployment event without a deployment object")
    status = obj(data, "deployment_status")
    state = s(status, "state")
    env = s(dep, "environment")
    kind = "deployment_status" if status else "deployment"
    return accepted(build_trigger(
        SOURCE,
        delivery_id=did,
        event_kind=f"{kind}.{clip(state, 32)}" if state else kind,
        action=TriggerAction.RECORD,
        identifiers=identifiers(github_repo=repo),
        title=f"deploy {s(dep, 'ref') or s(dep, 'sha')[:12]} of {repo}" + (f" to {env}" if env else "")
              + (f" [{state}]" if state else ""),
        text=s(dep, "description"),
        links=links(s(status, "target_url"), s(dep, "url")),
        actor=s(obj(dep, "creator"), "login") or s(obj(data, "sender"), "login") or None,
        occurred_at=parse_time(status.get("created_at")) or parse_time(dep.get("created_at")),
        external_ref=s(dep, "sha") or None,
    ))


_HANDLERS = {
    "deployment": _deployment,
    "deployment_status": _deployment,
    "issue_comment": _issue_comment,
    "check_run": _check_run,
    "workflow_run": _workflow_run,
    "push": _push,
    "pull_request": _pull_request,
}

__all__ = ["BOT_HANDLE", "SOURCE", "parse", "sign", "signature_present", "verify"]
