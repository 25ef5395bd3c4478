"""PagerDuty V3 webhooks.

Verification (PagerDuty developer docs, "Verifying Signatures"): ``X-PagerDuty-Signature`` is a
comma-separated list with one ``v1=<hex HMAC-SHA256(secret, body)>`` per active secret (several
during rotation); the request is authentic if any ``v1`` entry matches. No timestamp: retries (up to
48 h) are absorbed by deduplicating on ``event.id``, which is inside the signed body and stable across
retries (``sha256:<hex of the body>`` when it is absent). ``X-Webhook-Id`` is
NOT signed, so it is never the dedupe key: a replay under a fresh one stays a duplicate.

Events: ``incident.triggered`` → START (an alert; fingerprint = incident id), ``incident.acknowledged``
and ``incident.resolved`` → UPDATE; everything else is ignored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from incidentfox.contracts import TriggerAction
from serve_apps.webhooks.common import (
    ParseResult,
    accepted,
    answer_target,
    body_digest,
    build_trigger,
    clip,
    delivery_id,
    has_header,
    header,
    identifiers,
    ignored,
    links,
    load_json_object,
    obj,
    parse_time,
    require_secret,
    s,
    same,
    services,
    to_bytes,
)
from serve_apps.webhooks.errors import WebhookError, malformed

SOURCE = "pagerduty"
SIGNATURE_HEADER = "X-PagerDuty-Signature"
WEBHOOK_ID_HEADER = "X-Webhook-Id"
SUBSCRIPTION_HEADER = "X-Webhook-Subscription"
ACTIONS = {
    "incident.triggered": TriggerAction.START,
    "incident.acknowledged": TriggerAction.UPDATE,
    "incident.resolved": TriggerAction.UPDATE,
}


def sign(*, body: bytes, secrets: list[str] | str) -> dict[str, str]:
    """The signature header PagerDuty would send, one ``v1=`` per secret (tests, benchmarks)."""
    keys = [secrets] if isinstance(secrets, str) else secrets
    parts = [f"v1={hmac.new(to_bytes(k), body, hashlib.sha256).hexdigest()}" for k in keys]
    return {SIGNATURE_HEADER: ",".join(parts)}


def verify(*, headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
    """Accept if any ``v1=`` entry matches; raise WebhookError (401) otherwise. ``now`` is unused."""
    key = require_secret(secret, SOURCE)
    raw = header(headers, SIGNATURE_HEADER)
    if not raw:
        raise WebhookError("missing_signature", source=SOURCE, message=f"missing {SIGNATURE_HEADER} header")
    expected = "v1=" + hmac.new(key, bytes(body), hashlib.sha256).hexdigest()
    matched = False
    for entry in raw.split(","):
        # Every entry is compared (no early exit) so timing does not reveal which one matched.
        matched |= same(expected, entry.strip())
    if not matched:
        raise WebhookError("bad_signature", source=SOURCE, message="no PagerDuty v1 signature matches")


def signature_present(headers: Mapping[str, str]) -> bool:
    """Whether the request carries a PagerDuty signature at all (checked before any lookup)."""
    return has_header(headers, SIGNATURE_HEADER)


def parse(*, headers: Mapping[str, str], body: bytes, now: float) -> ParseResult:
    """V3 envelope ``{"event": {...}}`` → ParseResult. ``now`` is unused."""
    data = load_json_object(body, SOURCE)
    event = obj(data, "event")
    if not event:
        raise malformed(SOURCE, "body has no event object (is this a V3 webhook?)")
    event_type = s(event, "event_type")
    if not event_type:
        raise malformed(SOURCE, "missing event.event_type")
    event_id = s(event, "id")
    did = delivery_id(event_id if 0 < len(event_id) <= 200 else "sha256:" + body_digest(body),
                      SOURCE, "event.id")
    action = ACTIONS.get(event_type)
    if action is None:
        return ignored(f"unsupported_event:{clip(event_type, 64)}")
    return accepted(_incident_trigger(event, event_type, action, did))


def _incident_trigger(event: dict[str, Any], event_type: str, action: TriggerAction, did: str):
    incident = obj(event, "data")
    incident_id = s(incident, "id")
    if not incident_id:
        raise malformed(SOURCE, "missing event.data.id (incident id)")
    service = obj(incident, "service")
    title = s(incident, "title") or f"PagerDuty incident {incident_id}"
    number = s(incident, "number")
    status = s(incident, "status") or event_type.rpartition(".")[2]
    priority = s(obj(incident, "priority"), "summary")
    details = [f"urgency {s(incident, 'urgency')}" if s(incident, "urgency") else "",
               f"priority {priority}" if priority else "",
               f"service {s(service, 'summary')}" if s(service, "summary") else ""]
    text = f"PagerDuty incident {'#' + number + ' ' if number else ''}{status}: {title}"
    if any(details):
        text += " (" + ", ".join(d for d in details if d) + ")"
    return build_trigger(
        SOURCE,
        delivery_id=did,
        event_kind=event_type,
        action=action,
        identifiers=identifiers(pagerduty_service_id=s(service, "id")),
        title=title,
        text=text,
        links=links(s(incident, "html_url"), s(service, "html_url")),
        fingerprint=incident_id,
        services=services(s(service, "summary")),
        is_alert=True,
        actor=s(obj(event, "agent"), "summary") or None,
        occurred_at=parse_time(event.get("occurred_at")),
        external_ref=s(incident, "html_url") or incident_id,
        answer_to=answer_target(SOURCE, incident_id=incident_id),
    )


__all__ = ["SOURCE", "parse", "sign", "signature_present", "verify"]
