"""PagerDuty, incident.io, Alertmanager and Grafana parsing: every real fixture, plus variants."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from incidentfox.contracts import ROUTING_KEYS, TriggerAction
from serve_apps.webhooks import alertmanager, grafana, incidentio, pagerduty
from serve_apps.webhooks.common import TEXT_MAX, ParseResult
from serve_apps.webhooks.errors import WebhookError

NOW = 1_700_000_000.0


def _json(fixtures_dir: Path, rel: str) -> dict[str, Any]:
    path = fixtures_dir / rel
    if not path.exists():
        pytest.skip(f"{rel} absent")
    return json.loads(path.read_bytes())


def _raw(fixtures_dir: Path, rel: str) -> bytes:
    path = fixtures_dir / rel
    if not path.exists():
        pytest.skip(f"{rel} absent")
    return path.read_bytes()


def _parse(module: Any, body: bytes | dict[str, Any], headers: dict[str, str] | None = None) -> ParseResult:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    result = module.parse(headers=headers or {}, body=body, now=NOW)
    if result.trigger is not None:
        assert set(result.trigger.identifiers) <= set(ROUTING_KEYS)
    return result


def _malformed(module: Any, body: bytes, headers: dict[str, str] | None = None) -> None:
    with pytest.raises(WebhookError) as info:
        module.parse(headers=headers or {}, body=body, now=NOW)
    assert (info.value.reason, info.value.status) == ("malformed_body", 400)


# --- PagerDuty ------------------------------------------------------------------------------------

PD = {
    "incident.triggered": ("01BZYIL05THJDFF2Y08X9SVMTU", "PFQZPSY", TriggerAction.START, "Test Incident 3",
                           datetime(2021, 6, 4, 13, 35, 29, 781000, tzinfo=UTC)),
    "incident.acknowledged": ("01BZYK8N47N5JG55J1EEEHPEJI", "PQ1K5C8", TriggerAction.UPDATE, "Test Incident",
                              datetime(2021, 6, 4, 13, 55, 30, 394000, tzinfo=UTC)),
    "incident.resolved": ("01BZYH1JJY09P9LEIST8HG2PMN", "PCPZE64", TriggerAction.UPDATE, "Test Incident",
                          datetime(2021, 6, 4, 13, 16, 53, 816000, tzinfo=UTC)),
}


@pytest.mark.parametrize("kind", sorted(PD))
def test_pagerduty_fixture(fixtures_dir: Path, kind: str) -> None:
    event_id, incident_id, action, title, at = PD[kind]
    raw = _raw(fixtures_dir, f"pagerduty/{kind}.json")
    t = _parse(pagerduty, raw).trigger
    assert t is not None
    assert (t.source, t.delivery_id, t.event_kind, t.action) == ("pagerduty", event_id, kind, action)
    assert (t.fingerprint, t.title, t.occurred_at) == (incident_id, title, at)
    assert t.is_alert and not t.human
    assert t.identifiers == {"pagerduty_service_id": "PA2P440"} and t.services == ["pig208"]
    assert t.external_ref == f"https://pig208.pagerduty.com/incidents/{incident_id}"
    assert t.thread is None


def test_pagerduty_signed_event_id_wins_over_the_unsigned_header(fixtures_dir: Path) -> None:
    """Issue 12: X-Webhook-Id is not signed, so it never makes a delivery new; event.id (signed) does."""
    body = _json(fixtures_dir, "pagerduty/incident.triggered.json")
    t = _parse(pagerduty, body, {"x-webhook-id": "wh-123"}).trigger
    assert t is not None and t.delivery_id == body["event"]["id"]
    assert _parse(pagerduty, body, {"x-webhook-id": "wh-456"}).trigger.delivery_id == t.delivery_id
    del body["event"]["id"]
    raw = json.dumps(body).encode()
    assert _parse(pagerduty, raw).trigger.delivery_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    body["event"]["event_type"] = "incident.priority_updated"
    result = _parse(pagerduty, body)
    assert result.ignored and result.reason == "unsupported_event:incident.priority_updated"


@pytest.mark.parametrize("body", [b"", b"null", b'{"messages": []}', b'{"event": {"id": "E1"}}',
                                  b'{"event": {"event_type": "incident.triggered"}}',
                                  b'{"event": {"id": "E1", "event_type": "incident.triggered", "data": {}}}'])
def test_pagerduty_malformed(body: bytes) -> None:
    _malformed(pagerduty, body)


# --- incident.io ----------------------------------------------------------------------------------

def test_incidentio_created_starts_an_alert_run(fixtures_dir: Path) -> None:
    raw = _raw(fixtures_dir, "incident_io/public_incident.incident_created_v2.json")
    t = _parse(incidentio, raw, {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek"}).trigger
    assert t is not None
    assert (t.source, t.delivery_id, t.action) == ("incidentio", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                                   TriggerAction.START)
    assert t.event_kind == "public_incident.incident_created_v2" and t.is_alert
    assert t.fingerprint == "01FDAG4SAP5TYPT98WGR2N7W91"
    assert t.title == "INC-123 Our database is sad"
    assert t.text.startswith("Our database is really really sad")
    assert t.identifiers == {"slack_channel_id": "C02AW36C1M5",
                             "incidentio_team_id": "01FCNDV6P870EA6S7TK1DSYDG0"}
    assert t.external_ref == "https://app.incident.io/incidents/123"
    assert t.occurred_at == datetime(2021, 8, 17, 13, 28, 57, 801578, tzinfo=UTC)


def test_incidentio_service_custom_field_routes(fixtures_dir: Path) -> None:
    body = _json(fixtures_dir, "incident_io/public_incident.incident_created_v2.json")
    incident = body["public_incident.incident_created_v2"]
    entry = copy.deepcopy(incident["custom_field_entries"][0])
    entry["custom_field"]["name"] = "Service"
    entry["values"] = [{"value_catalog_entry": {"id": "01X", "name": " Checkout-API "}}]
    incident["custom_field_entries"].append(entry)
    t = _parse(incidentio, body, {"webhook-id": "m1"}).trigger
    assert t is not None and t.identifiers["service"] == "checkout-api" and t.services == ["checkout-api"]


def test_incidentio_status_update_and_private_incidents(fixtures_dir: Path) -> None:
    t = _parse(incidentio, _raw(fixtures_dir, "incident_io/public_incident.incident_status_updated_v2.json"),
               {"webhook-id": "m2"}).trigger
    assert t is not None and t.action == TriggerAction.UPDATE
    assert t.fingerprint == "01FDAG4SAP5TYPT98WGR2N7W91" and t.title.endswith("status Closed")
    result = _parse(incidentio, _raw(fixtures_dir, "incident_io/private_incident.incident_created_v2.json"),
                    {"webhook-id": "m3"})
    assert result.ignored and result.trigger is None


def test_incidentio_malformed(fixtures_dir: Path) -> None:
    raw = _raw(fixtures_dir, "incident_io/public_incident.incident_created_v2.json")
    _malformed(incidentio, raw)                                         # no webhook-id header
    _malformed(incidentio, b'{"event_type": ""}', {"webhook-id": "m"})
    _malformed(incidentio, b'{"event_type": "public_incident.incident_created_v2"}', {"webhook-id": "m"})
    _malformed(incidentio, b'{"event_type": "public_incident.incident_created_v2", '
                           b'"public_incident.incident_created_v2": {"name": "x"}}', {"webhook-id": "m"})


# --- Alertmanager and Grafana ---------------------------------------------------------------------

def test_alertmanager_firing_group_starts_one_run(fixtures_dir: Path) -> None:
    raw = _raw(fixtures_dir, "alertmanager/webhook.v4.firing.json")
    result = _parse(alertmanager, raw)
    t = result.trigger
    assert t is not None and not result.ignored
    assert (t.source, t.event_kind, t.action) == ("alertmanager", "alert.firing", TriggerAction.START)
    assert t.is_alert
    assert t.fingerprint == "{}/{}:{}"
    assert t.identifiers == {"alertmanager_receiver": "ops-zulip"}
    assert t.title == "[FIRING:2] High CPU Temperature: High CPU core temperature"
    assert "CPU core temperature is 34.75C" in t.text and "CPU core temperature is 17.625C" in t.text
    assert t.occurred_at == datetime(2020, 2, 6, 0, 17, 58, 432911, tzinfo=UTC)
    assert len(t.delivery_id) == 64 and t.thread is None
    assert "http://ops1:9093" in t.links


def test_alertmanager_resolved_updates(fixtures_dir: Path) -> None:
    t = _parse(alertmanager, _raw(fixtures_dir, "alertmanager/webhook.v4.resolved_single.json")).trigger
    assert t is not None and (t.action, t.event_kind) == (TriggerAction.UPDATE, "alert.resolved")
    assert t.fingerprint == "{}/{}:{}"
    assert t.occurred_at is None          # this capture's endsAt is Go's zero time


def test_alert_delivery_id_is_stable_and_a_refire_is_new(fixtures_dir: Path) -> None:
    body = _json(fixtures_dir, "alertmanager/webhook.v4.firing.json")
    first = _parse(alertmanager, body).trigger
    reordered = dict(body, alerts=list(reversed(body["alerts"])))
    reordered["commonAnnotations"] = {"summary": "reworded"}
    assert _parse(alertmanager, reordered).trigger.delivery_id == first.delivery_id   # repeat notification
    refire = copy.deepcopy(body)
    refire["alerts"][0]["startsAt"] = "2020-02-06T01:00:00Z"
    assert _parse(alertmanager, refire).trigger.delivery_id != first.delivery_id
    resolved = dict(body, status="resolved")
    assert _parse(alertmanager, resolved).trigger.delivery_id != first.delivery_id
    other_group = dict(body, groupKey='{}:{alertname="Other"}')
    assert _parse(alertmanager, other_group).trigger.delivery_id != first.delivery_id


def test_alertmanager_service_label_routes(fixtures_dir: Path) -> None:
    body = _json(fixtures_dir, "alertmanager/webhook.v4.firing.json")
    body["alerts"][1]["labels"]["service"] = "Checkout"
    t = _parse(alertmanager, body).trigger
    assert t.identifiers == {"alertmanager_receiver": "ops-zulip", "service": "checkout"}
    body["commonLabels"]["service"] = "Payments "
    t = _parse(alertmanager, body).trigger
    assert t.identifiers["service"] == "payments" and t.services == ["payments", "checkout"]


@pytest.mark.parametrize("body", [b"{}", b'{"alerts": {}}', b'{"alerts": [], "status": "firing"}',
                                  b'{"alerts": [], "groupKey": "g"}', b"[]", b"\x00"])
def test_alertmanager_malformed(body: bytes) -> None:
    _malformed(alertmanager, body)


def test_alertmanager_odd_groups_are_ignored() -> None:
    assert _parse(alertmanager, {"alerts": [], "status": "firing", "groupKey": "g"}).reason == "no_alerts"
    assert _parse(alertmanager, {"alerts": [{}], "status": "pending", "groupKey": "g"}).ignored


def test_grafana_firing_fixture(fixtures_dir: Path) -> None:
    raw = _raw(fixtures_dir, "grafana/alerting.webhook.v11.firing.json")
    t = _parse(grafana, raw).trigger
    assert t is not None
    assert (t.source, t.event_kind, t.action) == ("grafana", "alert.firing", TriggerAction.START)
    assert t.is_alert
    assert t.title == "[FIRING:1] Memory (copy) device (true)"
    assert t.fingerprint == '{}/{debug="true"}:{alertname="Memory (copy)", grafana_folder="device"}'
    assert t.identifiers == {"alertmanager_receiver": "Debug webhook"}
    assert t.occurred_at == datetime(2024, 3, 1, 2, 9, tzinfo=UTC)
    assert "https://play.grafana.org/d/ece9fb32-7f71-4be9-bd94-2f23608ae5b9?orgId=1&viewPanel=2" in t.links
    body = json.loads(raw)
    body["status"] = "resolved"
    assert _parse(grafana, body).trigger.action == TriggerAction.UPDATE


def test_alert_text_is_bounded_and_notes_truncation(fixtures_dir: Path) -> None:
    body = _json(fixtures_dir, "alertmanager/webhook.v4.firing.json")
    template = body["alerts"][0]
    body["alerts"] = [dict(template, fingerprint=f"fp{i}", annotations={"description": "d" * 200})
                      for i in range(100)]
    body["truncatedAlerts"] = 7
    t = _parse(alertmanager, body).trigger
    assert t is not None and len(t.text) <= TEXT_MAX
    assert "more alerts" in t.text and t.text.endswith("(7 more alerts were truncated by the sender)")
