"""Every source's happy path and every rejection, through the gateway's HTTP layer (ASGI), with the
real fixture payloads signed with test secrets."""

from __future__ import annotations

import json
import time

import pytest
from gateway_kit import (
    DEFAULT_ROUTES,
    SECRETS,
    StaticRoutes,
    client_for,
    load,
    make_core,
    signed,
    slack_event,
)
from sqlalchemy import select

from incidentfox.runs.models import Delivery, Run


async def _rows(core, model):
    async with core.sessions() as s:
        return list((await s.scalars(select(model))).all())


@pytest.fixture
async def gw(sqlite_url):
    core = make_core(sqlite_url)
    async with client_for(core) as client:
        yield core, client
    await core.drain()
    await core.engine.dispose()


async def test_slack_app_mention_starts_a_run(gw, fixtures_dir):
    core, client = gw
    body = slack_event(fixtures_dir)
    r = await client.post("/slack/events", content=body, headers=signed("slack", body))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["run_id"].startswith("run_") and data["outcome"] == "accepted" and "duplicate" not in data
    await core.drain()
    assert core.runner.submitted == [data["run_id"]]
    (run,) = await _rows(core, Run)
    assert (run.org_id, run.team_id, run.status, run.source) == ("acme", "payments", "queued", "slack")
    assert run.trigger["text"] == "Hi there!" and run.thread_channel == "C111"
    (row,) = await _rows(core, Delivery)
    assert row.delivery_id == "Ev111" and row.run_id == run.id and row.dispatched_at is not None


async def test_slack_url_verification_answered_directly(gw, fixtures_dir):
    core, client = gw
    body = load(fixtures_dir, "slack/url_verification.json")
    r = await client.post("/slack/events", content=body, headers=signed("slack", body))
    assert r.status_code == 200
    assert r.json() == {"challenge": json.loads(body)["challenge"]}
    assert await _rows(core, Delivery) == []


async def test_slack_slash_command_answers_ephemerally(gw, fixtures_dir):
    core, client = gw
    body = load(fixtures_dir, "slack/slash_command.form-urlencoded.txt")
    r = await client.post("/slack/commands", content=body, headers=signed("slack", body))
    assert r.status_code == 200
    data = r.json()
    assert data["response_type"] == "ephemeral" and data["run_id"] in data["text"]
    (run,) = await _rows(core, Run)
    assert run.trigger["event_kind"] == "slash_command" and run.trigger["text"] == "Hi"


async def test_slack_slash_command_in_unclaimed_channel_says_so(sqlite_url, fixtures_dir):
    core = make_core(sqlite_url, routes=StaticRoutes({}))
    async with client_for(core) as client:
        body = load(fixtures_dir, "slack/slash_command.form-urlencoded.txt")
        r = await client.post("/slack/commands", content=body, headers=signed("slack", body))
    assert r.status_code == 200
    assert r.json()["response_type"] == "ephemeral" and "No team" in r.json()["text"]
    assert r.json()["outcome"] == "unrouted" and r.json()["run_id"] is None
    await core.engine.dispose()


async def test_slack_bot_message_is_ignored(gw, fixtures_dir):
    core, client = gw
    data = json.loads(slack_event(fixtures_dir))
    data["event"]["bot_id"] = "B999"
    body = json.dumps(data).encode()
    r = await client.post("/slack/events", content=body, headers=signed("slack", body))
    assert r.status_code == 200 and r.json()["ignored"] is True
    assert await _rows(core, Delivery) == [] and await _rows(core, Run) == []


async def test_github_issue_comment_mention_starts_a_run(gw, fixtures_dir):
    core, client = gw
    data = json.loads(load(fixtures_dir, "github/issue_comment.created.json"))
    data["comment"]["body"] = "@incidentfox why is checkout failing?"
    body = json.dumps(data).encode()
    r = await client.post("/github", content=body, headers=signed("github", body, event="issue_comment"))
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "accepted"
    (run,) = await _rows(core, Run)
    assert run.source == "github" and run.team_id == "payments"


async def test_github_comment_without_mention_is_ignored(gw, fixtures_dir):
    _core, client = gw
    body = load(fixtures_dir, "github/issue_comment.created.json")
    r = await client.post("/github", content=body, headers=signed("github", body, event="issue_comment"))
    assert r.status_code == 200 and r.json()["ignored"] is True


async def test_github_push_is_recorded_as_a_change_event(gw, fixtures_dir):
    core, client = gw
    body = load(fixtures_dir, "github/push.json")
    r = await client.post("/github", content=body, headers=signed("github", body, event="push"))
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "recorded" and r.json()["run_id"] is None
    (row,) = await _rows(core, Delivery)
    assert row.outcome == "recorded" and row.dispatched_at is not None
    assert await _rows(core, Run) == []


async def test_github_check_run_failure_starts_a_ci_run(gw, fixtures_dir):
    _core, client = gw
    body = load(fixtures_dir, "github/check_run.completed.failure.json")
    r = await client.post("/github", content=body, headers=signed("github", body, event="check_run"))
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] in ("accepted", "unrouted")


async def test_pagerduty_trigger_then_ack_and_resolve_update_the_run(gw, fixtures_dir):
    core, client = gw
    body = load(fixtures_dir, "pagerduty/incident.triggered.json")
    r = await client.post("/pagerduty", content=body, headers=signed("pagerduty", body))
    assert r.status_code == 200 and r.json()["outcome"] == "accepted", r.text
    run_id = r.json()["run_id"]
    for name, field in (("incident.acknowledged.json", "acknowledged_at"), ("incident.resolved.json", "resolved_at")):
        # The three fixtures are captures of different incidents: make these about the first one.
        data = json.loads(load(fixtures_dir, f"pagerduty/{name}"))
        data["event"]["data"]["id"] = "PFQZPSY"
        body = json.dumps(data).encode()
        r = await client.post("/pagerduty", content=body, headers=signed("pagerduty", body))
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == "updated" and r.json()["run_id"] == run_id
        async with core.sessions() as s:
            run = await s.get(Run, run_id)
            assert getattr(run, field) is not None


async def test_incidentio_incident_created_starts_a_run(sqlite_url, fixtures_dir):
    body = load(fixtures_dir, "incident_io/public_incident.incident_created_v2.json")
    routes = StaticRoutes(DEFAULT_ROUTES)
    core = make_core(sqlite_url, routes=routes)
    async with client_for(core) as client:
        r = await client.post("/incidentio", content=body, headers=signed("incidentio", body))
    assert r.status_code == 200, r.text
    # Routed by the incident's Slack channel or a service field; the fixture names neither of ours.
    assert r.json()["outcome"] in ("accepted", "unrouted")
    assert routes.calls, "the gateway asked the router"
    (row,) = await _rows(core, Delivery)
    assert row.source == "incidentio"
    await core.engine.dispose()


@pytest.mark.parametrize("source,fixture", [("alertmanager", "alertmanager/webhook.v4.firing.json"),
                                            ("grafana", "grafana/alerting.webhook.v11.firing.json")])
async def test_alert_group_firing_starts_one_run_and_resolved_marks_it(gw, fixtures_dir, source, fixture):
    core, client = gw
    body = load(fixtures_dir, fixture)
    r = await client.post(f"/{source}", content=body, headers=signed(source, body))
    assert r.status_code == 200 and r.json()["outcome"] == "accepted", r.text
    run_id = r.json()["run_id"]
    data = json.loads(body)
    data["status"] = "resolved"
    for a in data["alerts"]:
        a["status"] = "resolved"
    body = json.dumps(data).encode()
    r = await client.post(f"/{source}", content=body, headers=signed(source, body))
    assert r.status_code == 200 and r.json()["outcome"] == "updated", r.text
    async with core.sessions() as s:
        assert (await s.get(Run, run_id)).resolved_at is not None
    assert len(await _rows(core, Run)) == 1


# --- rejections ----------------------------------------------------------------------------------

async def test_bad_and_missing_signatures_are_401_and_record_nothing(gw, fixtures_dir):
    core, client = gw
    body = slack_event(fixtures_dir)
    bad = signed("slack", body, secret="not-the-secret")
    r = await client.post("/slack/events", content=body, headers=bad)
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
    r = await client.post("/slack/events", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and r.json()["error"]["code"] in ("missing_signature", "missing_header")
    for source, path, fixture in [("github", "/github", "github/push.json"),
                                  ("pagerduty", "/pagerduty", "pagerduty/incident.triggered.json"),
                                  ("incidentio", "/incidentio", "incident_io/public_incident.incident_created_v2.json"),
                                  ("alertmanager", "/alertmanager", "alertmanager/webhook.v4.firing.json"),
                                  ("grafana", "/grafana", "grafana/alerting.webhook.v11.firing.json")]:
        payload = load(fixtures_dir, fixture)
        wrong = "whsec_d3Jvbmctc2VjcmV0LXh4" if source == "incidentio" else "wrong-secret-xx"
        r = await client.post(path, content=payload, headers=signed(source, payload, secret=wrong, event="push"))
        assert r.status_code == 401, (source, r.text)
        assert r.json()["error"]["code"] in ("bad_signature", "invalid_secret"), (source, r.text)
        assert wrong not in r.text and SECRETS[next(k for k in SECRETS if k.startswith(
            source.upper()))] not in r.text
    assert await _rows(core, Delivery) == [] and await _rows(core, Run) == []


async def test_stale_timestamp_is_401_and_says_so(gw, fixtures_dir):
    _core, client = gw
    body = slack_event(fixtures_dir)
    r = await client.post("/slack/events", content=body, headers=signed("slack", body, now=time.time() - 3600))
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["code"] == "stale_timestamp" and "stale" in err["message"]
    payload = load(fixtures_dir, "incident_io/public_incident.incident_created_v2.json")
    r = await client.post("/incidentio", content=payload,
                          headers=signed("incidentio", payload, now=time.time() - 3600))
    assert r.status_code == 401 and r.json()["error"]["code"] == "stale_timestamp"


async def test_malformed_signed_body_is_400(gw):
    _core, client = gw
    body = b'{"type": "event_callback", "event_id": '
    r = await client.post("/slack/events", content=body, headers=signed("slack", body))
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_body"
    body = b"[1, 2, 3]"
    r = await client.post("/pagerduty", content=body, headers=signed("pagerduty", body))
    assert r.status_code == 400


async def test_body_over_one_mib_is_413_by_header_and_by_stream(gw):
    _core, client = gw
    big = b"{" + b" " * (1024 * 1024) + b"}"
    r = await client.post("/github", content=big, headers=signed("github", big, event="push"))
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    async def chunks():
        for _ in range(17):
            yield b" " * 65536

    r = await client.post("/github", content=chunks(), headers={"X-GitHub-Event": "push"})
    assert r.status_code == 413


async def test_unknown_event_type_is_200_ignored(gw, fixtures_dir):
    _core, client = gw
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    r = await client.post("/github", content=body, headers=signed("github", body, event="ping"))
    assert r.status_code == 200 and r.json()["ignored"] is True


async def test_missing_secret_configuration_is_401_not_500(sqlite_url, fixtures_dir):
    core = make_core(sqlite_url, env={})
    async with client_for(core) as client:
        body = slack_event(fixtures_dir)
        r = await client.post("/slack/events", content=body, headers=signed("slack", body))
    assert r.status_code == 401 and r.json()["error"]["code"] == "secret_not_configured"
    await core.engine.dispose()


async def test_org_url_verifies_with_the_orgs_secret_and_the_shared_url_with_the_envs(sqlite_url, fixtures_dir):
    """Issue 12: the URL, not the body, picks the secret (this replaced the org-config override test)."""
    from config_service.webhook_credentials import LoadedWebhookSecret

    async def load(org, node, source):
        return LoadedWebhookSecret("acme-own-slack-secret") if (org, node, source) == ("acme", "acme", "slack") \
            else None

    core = make_core(sqlite_url, load=load)
    async with client_for(core) as client:
        body = slack_event(fixtures_dir)
        r = await client.post("/slack/events/o/acme", content=body, headers=signed("slack", body))
        assert r.status_code == 401, "the env secret does not verify acme's URL"
        r = await client.post("/slack/events/o/acme", content=body,
                              headers=signed("slack", body, secret="acme-own-slack-secret"))
        assert r.status_code == 200 and r.json()["outcome"] == "accepted"
        other = slack_event(fixtures_dir, event_id="Ev222", channel="CUNCLAIMED")
        r = await client.post("/slack/events", content=other, headers=signed("slack", other))
        assert r.status_code == 200 and r.json()["outcome"] == "unrouted", "env secret on the shared URL"
    await core.drain()
    await core.engine.dispose()
