"""Sender values the database cannot hold as they are, on SQLite and PostgreSQL alike.

* An alert group key or service name longer than ``runs.correlation_key`` still starts a run, and
  a second alert of the same group or service is still correlated into it (the key is digested).
* A Slack channel or thread ts over 64 characters, or an id holding a NUL, is a malformed
  delivery (400 naming it), never a 500 that the sender would retry forever.
* A NUL in a message's text is dropped; in the stored raw payload it becomes U+FFFD.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from gateway_kit import load, signed
from sqlalchemy import select

from incidentfox.runs.models import CORRELATION_KEY_MAX, Delivery, Run


def _alert(fixtures_dir: Any, *, group_key: str, fingerprint: str, service: str | None) -> bytes:
    data = json.loads(load(fixtures_dir, "alertmanager/webhook.v4.firing.json"))
    data["receiver"] = "ops-zulip"
    data["groupKey"] = group_key
    data["commonLabels"].pop("service", None)
    for a in data["alerts"]:
        a["labels"].pop("service", None)
        a["fingerprint"] = fingerprint
        if service is not None:
            a["labels"]["service"] = service
    if service is not None:
        data["commonLabels"]["service"] = service
    return json.dumps(data).encode()


async def _post(client: Any, path: str, body: bytes, source: str) -> Any:
    return await client.post(path, content=body, headers=signed(source, body))


@pytest.mark.parametrize("kind", ["group_key", "service"])
async def test_an_over_long_correlation_key_starts_a_run_and_still_correlates(gw, fixtures_dir, kind):
    core, client = gw
    long_key = "{}/{}:{" + ",".join(f'label{i}="value-{i}-xxxxxxxx"' for i in range(14)) + "}"
    service = "svc-" + "s" * 250 if kind == "service" else None
    group = long_key if kind == "group_key" else '{}:{alertname="x"}'
    assert len("fp:" + long_key) > CORRELATION_KEY_MAX
    outcomes = []
    for i in range(2):
        r = await _post(client, "/alertmanager", _alert(fixtures_dir, group_key=group, fingerprint=f"fp{i}",
                                                        service=service), "alertmanager")
        assert r.status_code == 200, r.text
        outcomes.append((r.json()["outcome"], r.json().get("run_id")))
    assert [o for o, _ in outcomes] == ["accepted", "correlated"]
    assert outcomes[0][1] == outcomes[1][1]
    async with core.sessions() as s:
        run = (await s.scalars(select(Run))).one()
    prefix = "service:sha256:" if kind == "service" else "fp:sha256:"
    assert run.correlation_key.startswith(prefix) and len(run.correlation_key) <= CORRELATION_KEY_MAX


@pytest.mark.parametrize("field", ["ts", "channel"])
async def test_an_over_long_slack_id_is_a_malformed_delivery(gw, fixtures_dir, field):
    core, client = gw
    data = json.loads(load(fixtures_dir, "slack/event_callback.app_mention.json"))
    data["event_id"] = f"Ev-long-{field}"
    if field == "ts":
        data["event"]["ts"] = data["event"]["event_ts"] = "1" * 70
    else:
        data["event"]["channel"] = "C" * 70
    r = await _post(client, "/slack/events", json.dumps(data).encode(), "slack")
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_body", r.text
    async with core.sessions() as s:
        assert (await s.scalars(select(Delivery))).all() == []


async def test_a_nul_in_an_id_is_malformed_and_in_text_is_dropped(gw, fixtures_dir):
    core, client = gw
    data = json.loads(load(fixtures_dir, "slack/event_callback.app_mention.json"))
    data["event_id"] = "Ev\u0000nul"
    r = await _post(client, "/slack/events", json.dumps(data).encode(), "slack")
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_body", r.text

    form = urlencode({"token": "x", "team_id": "T1", "channel_id": "C111", "user_id": "U1",
                      "command": "/incidentfox", "text": "inv\x00estigate db", "trigger_id": "1.2.3",
                      "response_url": "https://hooks.slack.com/x"}).encode()
    raw = form.replace(b"%00", b"\x00")          # a raw NUL byte, as a broken sender would send it
    r = await _post(client, "/slack/commands", raw, "slack")
    assert r.status_code == 200 and r.json()["outcome"] == "accepted", r.text
    async with core.sessions() as s:
        delivery = (await s.scalars(select(Delivery))).one()
        run = (await s.scalars(select(Run))).one()
    assert "\x00" not in delivery.payload and "inv\ufffdestigate" in delivery.payload
    assert run.trigger["text"] == "investigate db"


async def test_a_button_naming_a_run_id_with_a_nul_names_no_run(gw, fixtures_dir):
    _, client = gw
    payload = json.loads(load(fixtures_dir, "slack/block_actions.json"))
    payload["actions"][0].update(action_id="incidentfox_cancel", value="run_\x00x")
    body = urlencode({"payload": json.dumps(payload)}).encode()
    r = await _post(client, "/slack/interactions", body, "slack")
    assert r.status_code == 200, r.text
    assert r.json().get("outcome") in ("rejected", None), r.text


async def test_a_lone_surrogate_in_a_message_becomes_a_replacement_character(gw, fixtures_dir):
    core, client = gw
    data = json.loads(load(fixtures_dir, "slack/event_callback.app_mention.json"))
    data["event_id"] = "Ev-surrogate"
    data["event"]["text"] = data["event"]["text"] + " checkout \ud800 is down"
    r = await _post(client, "/slack/events", json.dumps(data).encode(), "slack")   # sent as a \\ud800 escape
    assert r.status_code == 200 and r.json()["outcome"] == "accepted", r.text
    async with core.sessions() as s:
        run = (await s.scalars(select(Run))).one()
    assert "checkout \ufffd is down" in run.trigger["text"]
    json.dumps(run.trigger, ensure_ascii=False).encode()   # what an API reply does: no surrogate left
