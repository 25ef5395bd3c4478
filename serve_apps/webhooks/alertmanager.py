"""Prometheus Alertmanager webhooks (``webhook_config``, payload version 4).

Verification: Alertmanager does not sign; it authenticates through ``http_config``. We require
``Authorization: Bearer <token>`` and compare the token in constant time.

One notification is one alert group: ``firing`` → START (an alert; fingerprint = ``groupKey``),
``resolved`` → UPDATE. The delivery id is a hash of ``groupKey``, ``status`` and every alert's
``fingerprint`` + ``startsAt``, so Alertmanager's repeat of an unchanged group is a duplicate while an
alert that fires again (new ``startsAt``) is a new delivery. The id comes from the body only, so no
header can turn a replay into a new delivery. :func:`parse_group` is shared with
Grafana, whose payload has the same shape.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from incidentfox.contracts import Trigger, TriggerAction
from serve_apps.webhooks.common import (
    TEXT_MAX,
    ParseResult,
    accepted,
    arr,
    build_trigger,
    clip,
    has_header,
    header,
    identifiers,
    ignored,
    links,
    load_json_object,
    obj,
    parse_time,
    require_secret,
    require_str,
    s,
    same,
    services,
)
from serve_apps.webhooks.errors import WebhookError, malformed

SOURCE = "alertmanager"
AUTH_HEADER = "Authorization"
STATUSES = {"firing": TriggerAction.START, "resolved": TriggerAction.UPDATE}


def sign(*, body: bytes, secret: str) -> dict[str, str]:
    """The header Alertmanager's ``http_config.authorization`` would send (tests, benchmarks)."""
    return {AUTH_HEADER: f"Bearer {secret}"}


def verify(*, headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
    """Require ``Authorization: Bearer <secret>`` (scheme case-insensitive); raise WebhookError (401)
    otherwise. ``body`` and ``now`` are unused: the token is not bound to the payload."""
    expected = require_secret(secret, SOURCE)
    raw = header(headers, AUTH_HEADER)
    if not raw:
        raise WebhookError("missing_signature", source=SOURCE, message="missing Authorization bearer token")
    scheme, _, token = raw.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise WebhookError("missing_signature", source=SOURCE, message="Authorization is not a Bearer token")
    if not same(expected, token.strip()):
        raise WebhookError("bad_signature", source=SOURCE, message="bearer token does not match")


def signature_present(headers: Mapping[str, str]) -> bool:
    """Whether the request carries an Authorization header at all (checked before any lookup)."""
    return has_header(headers, AUTH_HEADER)


def parse(*, headers: Mapping[str, str], body: bytes, now: float) -> ParseResult:
    """One alert group → ParseResult. ``now`` is unused."""
    return parse_group(load_json_object(body, SOURCE), source=SOURCE)


def group_delivery_id(data: dict[str, Any], status: str, group_key: str) -> str:
    """Stable hash of groupKey + status + each alert's (fingerprint, startsAt), order-independent."""
    parts = sorted((_alert_fingerprint(a), s(a, "startsAt")) for a in _alerts(data))
    canonical = json.dumps({"groupKey": group_key, "status": status, "alerts": parts},
                           sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _alerts(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in arr(data, "alerts") if isinstance(a, dict)]


def _labels(alert: dict[str, Any], key: str = "labels") -> dict[str, str]:
    return {k: v for k, v in obj(alert, key).items() if isinstance(v, str)}


def _alert_fingerprint(alert: dict[str, Any]) -> str:
    # Alertmanager ≥ 0.19 sends a fingerprint; older ones do not, and the labels identify the alert.
    return s(alert, "fingerprint") or hashlib.sha256(
        json.dumps(_labels(alert), sort_keys=True, ensure_ascii=True).encode()).hexdigest()[:16]


def group_service(data: dict[str, Any]) -> str:
    common = _labels(data, "commonLabels").get("service", "")
    if common.strip():
        return common
    for alert in _alerts(data):
        if _labels(alert).get("service", "").strip():
            return _labels(alert)["service"]
    return ""


def parse_group(data: dict[str, Any], *, source: str) -> ParseResult:
    """Alertmanager-shaped group (``status``, ``groupKey``, ``receiver``, ``alerts``) → ParseResult."""
    if not isinstance(data.get("alerts"), list):
        raise malformed(source, "missing alerts list")
    status = require_str(data, "status", source)
    group_key = require_str(data, "groupKey", source)
    action = STATUSES.get(status)
    if action is None:
        return ignored(f"unsupported_status:{clip(status, 32)}")
    alerts = _alerts(data)
    if not alerts:
        return ignored("no_alerts")
    return accepted(_group_trigger(data, source=source, status=status, group_key=group_key,
                                   action=action, alerts=alerts))


def _group_trigger(data: dict[str, Any], *, source: str, status: str, group_key: str,
                   action: TriggerAction, alerts: list[dict[str, Any]]) -> Trigger:
    common, annotations = _labels(data, "commonLabels"), _labels(data, "commonAnnotations")
    first = _labels(alerts[0])
    alertname = common.get("alertname") or first.get("alertname") or "alert"
    summary = annotations.get("summary") or _labels(alerts[0], "annotations").get("summary", "")
    title = s(data, "title") or (f"[{status.upper()}:{len(alerts)}] {alertname}"
                                 + (f": {summary}" if summary and summary != alertname else ""))
    all_services = [_labels(a).get("service", "") for a in alerts]
    return build_trigger(
        source,
        delivery_id=group_delivery_id(data, status, group_key),
        event_kind=f"alert.{status}",
        action=action,
        identifiers=identifiers(alertmanager_receiver=s(data, "receiver"), service=group_service(data)),
        title=title,
        text=_describe(alerts, truncated=data.get("truncatedAlerts")),
        links=links(*[u for a in alerts for u in (s(a, "generatorURL"), s(a, "dashboardURL"),
                                                   s(a, "panelURL"))], s(data, "externalURL")),
        fingerprint=group_key,
        services=services(group_service(data), *all_services),
        is_alert=True,
        occurred_at=_occurred_at(alerts, status),
        external_ref=s(data, "externalURL") or None,
    )


def _describe(alerts: list[dict[str, Any]], *, truncated: Any = 0) -> str:
    """One line per alert, bounded by TEXT_MAX; notes alerts left out here or by the sender."""
    lines: list[str] = []
    size = 0
    for alert in alerts:
        labels = _labels(alert)
        notes = _labels(alert, "annotations")
        shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
        detail = notes.get("description") or notes.get("summary") or s(alert, "valueString")
        line = (f"- {s(alert, 'status') or 'unknown'} {labels.get('alertname', 'alert')}"
                + (f" {{{shown}}}" if shown else "") + (f": {detail}" if detail else ""))
        size += len(line) + 1
        if size > TEXT_MAX - 100:
            lines.append(f"… and {len(alerts) - len(lines)} more alerts")
            break
        lines.append(line)
    if isinstance(truncated, int) and not isinstance(truncated, bool) and truncated > 0:
        lines.append(f"({truncated} more alerts were truncated by the sender)")
    return "\n".join(lines)


def _occurred_at(alerts: list[dict[str, Any]], status: str) -> datetime | None:
    key = "endsAt" if status == "resolved" else "startsAt"
    times = [t for t in (parse_time(a.get(key)) for a in alerts) if t is not None]
    if not times:
        return None
    return max(times) if status == "resolved" else min(times)


__all__ = ["SOURCE", "group_delivery_id", "group_service", "parse", "parse_group", "sign",
           "signature_present", "verify"]
