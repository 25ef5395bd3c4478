"""incident.io webhooks (Standard Webhooks / Svix signing).

Verification (https://www.standardwebhooks.com, incident.io API docs "Webhooks"): headers
``webhook-id``, ``webhook-timestamp`` (unix s, within 300 s of ``now``) and ``webhook-signature``, a
space-separated list of ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``; the key is the
base64 decoding of the secret after its ``whsec_`` prefix. Any matching ``v1`` entry is accepted.
The delivery id is ``webhook-id``, which is part of the signed content, so a replay cannot change it.

Events: ``public_incident.incident_created_v2`` → START (an alert, fingerprint = incident id),
``public_incident.incident_status_updated_v2`` → UPDATE; everything else (including private
incidents, which carry only an id) is ignored. Routing identifiers: the incident's Slack channel, a
custom field named ``Service``/``Services`` (→ ``service``) and one named ``Team``/``Teams``/``Affected
Team`` (→ ``incidentio_team_id``: the catalog entry id, else the option value, else the text), read
by :mod:`incidentfox.incidentio_incident` (which the answer-back ownership check uses too).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from incidentfox.contracts import Trigger, TriggerAction
from incidentfox.incidentio_incident import SERVICE_FIELDS, TEAM_FIELDS, field_values
from serve_apps.webhooks.common import (
    ParseResult,
    accepted,
    answer_target,
    build_trigger,
    check_timestamp,
    clip,
    delivery_id,
    header,
    identifiers,
    ignored,
    links,
    load_json_object,
    obj,
    parse_time,
    s,
    same,
    services,
    to_bytes,
)
from serve_apps.webhooks.errors import WebhookError, malformed

SOURCE = "incidentio"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
CREATED = "public_incident.incident_created_v2"
STATUS_UPDATED = "public_incident.incident_status_updated_v2"


def _key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret:
        raise WebhookError("secret_not_configured", source=SOURCE,
                           message="no incidentio webhook secret is configured")
    raw = secret.strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookError("invalid_secret", source=SOURCE,
                           message="the configured incidentio secret is not a base64 whsec_ secret") from None
    if not key:
        raise WebhookError("invalid_secret", source=SOURCE,
                           message="the configured incidentio secret is empty")
    return key


def _signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    content = to_bytes(f"{msg_id}.{timestamp}.") + bytes(body)
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def sign(*, body: bytes, secret: str, msg_id: str, timestamp: int) -> dict[str, str]:
    """The three headers incident.io would send (tests, benchmarks)."""
    sig = _signature(_key(secret), msg_id, str(timestamp), body)
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: f"v1,{sig}"}


def _h(headers: Mapping[str, str], name: str) -> str | None:
    # Svix-hosted senders use the same scheme under svix-* names.
    return header(headers, name) or header(headers, name.replace("webhook-", "svix-"))


def verify(*, headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
    """Standard Webhooks check with a 300 s window; raise WebhookError (401) otherwise."""
    key = _key(secret)
    signatures = _h(headers, SIGNATURE_HEADER)
    if not signatures:
        raise WebhookError("missing_signature", source=SOURCE, message=f"missing {SIGNATURE_HEADER} header")
    msg_id = _h(headers, ID_HEADER)
    if not msg_id:
        raise WebhookError("missing_header", source=SOURCE, message=f"missing {ID_HEADER} header")
    raw_ts = _h(headers, TIMESTAMP_HEADER)
    check_timestamp(raw_ts, now=now, source=SOURCE, header_name=TIMESTAMP_HEADER)
    expected = _signature(key, msg_id, raw_ts or "", bytes(body))
    matched = False
    for entry in signatures.split(" "):
        version, _, sig = entry.partition(",")
        if version == "v1":
            matched |= same(expected, sig)
    if not matched:
        raise WebhookError("bad_signature", source=SOURCE, message="no incident.io v1 signature matches")


def signature_present(headers: Mapping[str, str]) -> bool:
    """Whether the request carries a Standard Webhooks signature at all (checked before any lookup)."""
    return bool(_h(headers, SIGNATURE_HEADER))


def parse(*, headers: Mapping[str, str], body: bytes, now: float) -> ParseResult:
    """Needs the ``webhook-id`` header (delivery id; else ``malformed_body``). ``now`` is unused."""
    data = load_json_object(body, SOURCE)
    event_type = s(data, "event_type")
    if not event_type:
        raise malformed(SOURCE, "missing event_type")
    did = delivery_id(_h(headers, ID_HEADER) or "", SOURCE, f"{ID_HEADER} header")
    if event_type not in (CREATED, STATUS_UPDATED):
        return ignored(f"unsupported_event:{clip(event_type, 64)}")
    if not obj(data, event_type):
        raise malformed(SOURCE, f"missing the {event_type} object")
    incident = _incident(data, event_type)
    if not s(incident, "id"):
        raise malformed(SOURCE, "missing incident id")
    if event_type == CREATED:
        return accepted(_trigger(incident, did, event_type, TriggerAction.START,
                                 title=s(incident, "name"), text=s(incident, "summary")))
    payload = obj(data, event_type)
    new_status = s(obj(payload, "new_status"), "name")
    name = s(incident, "name")
    return accepted(_trigger(incident, did, event_type, TriggerAction.UPDATE,
                             title=f"{name}: status {new_status}" if new_status else name,
                             text=s(payload, "message")))


def _incident(data: dict[str, Any], event_type: str) -> dict[str, Any]:
    payload = obj(data, event_type)
    return obj(payload, "incident") if event_type == STATUS_UPDATED else payload


def _trigger(incident: dict[str, Any], did: str, event_type: str, action: TriggerAction, *,
             title: str, text: str) -> Trigger:
    service_values = field_values(incident, SERVICE_FIELDS, catalog="name")
    team_values = field_values(incident, TEAM_FIELDS, catalog="id")
    severity = s(obj(incident, "severity"), "name")
    reference = s(incident, "reference")
    return build_trigger(
        SOURCE,
        delivery_id=did,
        event_kind=event_type,
        action=action,
        identifiers=identifiers(
            slack_channel_id=s(incident, "slack_channel_id"),
            service=service_values[0] if service_values else "",
            incidentio_team_id=team_values[0] if team_values else "",
        ),
        title=(f"{reference} " if reference else "") + (title or "incident.io incident"),
        text=text + (f"\nseverity: {severity}" if severity else ""),
        links=links(s(incident, "permalink"), s(incident, "call_url")),
        fingerprint=s(incident, "id"),
        services=services(*service_values),
        is_alert=True,
        actor=s(obj(obj(incident, "creator"), "user"), "name") or None,
        occurred_at=parse_time(incident.get("created_at" if action == TriggerAction.START else "updated_at")),
        external_ref=s(incident, "permalink") or s(incident, "id"),
        answer_to=answer_target(SOURCE, incident_id=s(incident, "id")),
    )


__all__ = ["SOURCE", "parse", "sign", "signature_present", "verify"]
