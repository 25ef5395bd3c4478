"""Issue 12: per-org webhook secrets over the config service API. Who may generate, rotate, list and
delete them; that a secret is shown once and never again (not in lists, audit, errors or the table
in plain text); that every generation, rotation and deletion is audited; and what is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from config_service.db.models import WebhookSecret
from config_service.testing import config_harness


@pytest.fixture
async def cs(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as harness:
        for org, teams in (("acme", ("payments",)), ("globex", ("ops",))):
            await harness.create_org(org)
            for team in teams:
                await harness.create_node(org, team, kind="team")
        await harness.create_node("acme", "platform", kind="unit")
        yield harness


async def test_generate_shows_the_secret_once_and_stores_it_encrypted(cs):
    r = await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/github")
    assert r.status_code == 201, r.text
    body = r.json()
    secret = body["secret"]
    assert len(secret) >= 43 and body["version"] == 1 and body["scope"] == "org"
    assert body["url_path"] == "/webhooks/github/o/acme"
    listed = await cs.call("GET", "/api/v1/orgs/acme/webhook-secrets")
    assert listed.status_code == 200 and secret not in listed.text
    (item,) = listed.json()["items"]
    assert item["source"] == "github" and "secret" not in item
    audit = await cs.call("GET", "/api/v1/orgs/acme/audit?action=webhook_secret.*")
    assert [e["action"] for e in audit.json()["items"]] == ["webhook_secret.generate"]
    assert secret not in audit.text
    async with cs.app.state.session_factory() as s:
        row = (await s.scalars(select(WebhookSecret))).one()
        assert secret not in row.current and row.current.startswith("gAAAA")   # a Fernet token


async def test_rotation_keeps_the_old_secret_for_the_grace_window_and_is_audited(cs):
    first = (await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/github")).json()
    r = await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/github", json={"grace_s": 900})
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["version"] == 2 and rotated["secret"] != first["secret"]
    assert rotated["previous_valid_until"] is not None
    r = await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/github", json={"grace_s": 0})
    assert r.json()["version"] == 3 and r.json()["previous_valid_until"] is None
    audit = (await cs.call("GET", "/api/v1/orgs/acme/audit?action=webhook_secret.*")).json()["items"]
    assert [e["action"] for e in audit] == ["webhook_secret.rotate", "webhook_secret.rotate",
                                            "webhook_secret.generate"]
    assert audit[1]["diff"]["grace_s"] == 900 and audit[1]["diff"]["previous_valid_until"]
    assert audit[0]["target"] == "webhook_secret:github:acme"


async def test_sender_issued_secrets_are_pasted_never_generated_nor_echoed(cs):
    r = await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/slack")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "secret_required")
    pasted = "8f742231b10e8888abcd99yyyzzz85a5"
    r = await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/slack", json={"secret": pasted})
    assert r.status_code == 201 and pasted not in r.text and "secret" not in r.json()
    audit = (await cs.call("GET", "/api/v1/orgs/acme/audit?action=webhook_secret.set")).json()["items"]
    assert len(audit) == 1 and pasted not in str(audit)
    for source, bad in (("incidentio", "not-a-whsec-secret-at-all"), ("incidentio", "whsec_!!!!"),
                        ("pagerduty", "short"), ("pagerduty", "has spaces in it but long enough")):
        r = await cs.call("POST", f"/api/v1/orgs/acme/webhook-secrets/{source}", json={"secret": bad})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_webhook_secret"), (source, bad)
        assert bad not in r.text
    r = await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/incidentio",
                      json={"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
    assert r.status_code == 201


async def test_grafana_options_must_keep_signed_requests_recognisable(cs):
    r = await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/grafana",
                      json={"signature_header": "X-Grafana-Alerting-Signature",
                            "timestamp_header": "X-Grafana-Alerting-Timestamp"})
    assert r.status_code == 201 and r.json()["options"]["signature_header"] == "X-Grafana-Alerting-Signature"
    for body in ({"signature_header": "Authorization"}, {"timestamp_header": "bad header"}):
        r = await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/grafana", json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_webhook_option")
    r = await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/github", json={"signature_header": "X-A-Signature"})
    assert r.status_code == 422


async def test_who_may_manage_webhook_secrets(cs):
    acme_admin = await cs.org_token("acme")
    globex_admin = await cs.org_token("globex")
    team = await cs.team_token("acme", "payments")
    path = "/api/v1/orgs/acme/webhook-secrets/github"
    for token, expected in ((team, 403), (globex_admin, 403), ("acme.not-a-token", 401)):
        for method in ("POST", "DELETE"):
            r = await cs.call(method, path, token=token)
            assert r.status_code == expected, (method, r.text)
        assert (await cs.call("GET", "/api/v1/orgs/acme/webhook-secrets", token=token)).status_code == expected
    r = await cs.client.post(path)
    assert r.status_code == 401
    assert (await cs.call("POST", path, token=acme_admin)).status_code == 201
    r = await cs.call("POST", "/api/v1/orgs/acme/teams/payments/webhook-secrets/github", token=acme_admin)
    assert r.status_code == 201 and r.json()["scope"] == "team"
    assert r.json()["url_path"] == "/webhooks/github/o/acme/t/payments"
    assert (await cs.call("POST", path, token=cs.admin_token)).status_code == 200
    items = (await cs.call("GET", "/api/v1/orgs/acme/webhook-secrets", token=acme_admin)).json()["items"]
    assert {(i["scope"], i["team_id"]) for i in items} == {("org", None), ("team", "payments")}
    actors = {e["actor"] for e in (await cs.call("GET", "/api/v1/orgs/acme/audit?action=webhook_secret.*"))
              .json()["items"]}
    assert len(actors) == 2, "the org admin's token and the global admin are both recorded"


async def test_unknown_sources_scopes_and_deletion(cs):
    r = await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/datadog")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_webhook_source")
    r = await cs.call("POST", "/api/v1/orgs/acme/teams/nope/webhook-secrets/github")
    assert r.status_code == 404
    r = await cs.call("POST", "/api/v1/orgs/acme/teams/platform/webhook-secrets/github")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "not_a_team")
    r = await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/github", json={"grace_s": -1})
    assert r.status_code == 422
    r = await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/github", json={"unknown": 1})
    assert r.status_code == 422
    assert (await cs.call("DELETE", "/api/v1/orgs/acme/webhook-secrets/github")).status_code == 404
    await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/github")
    r = await cs.call("DELETE", "/api/v1/orgs/acme/webhook-secrets/github")
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert (await cs.call("GET", "/api/v1/orgs/acme/webhook-secrets")).json()["items"] == []
    audit = (await cs.call("GET", "/api/v1/orgs/acme/audit?action=webhook_secret.delete")).json()["items"]
    assert len(audit) == 1


async def test_key_rotation_re_encrypts_webhook_secrets(cs):
    from cryptography.fernet import Fernet
    from pydantic import SecretStr

    from config_service.services.rotation import rotate_secrets
    from config_service.webhook_credentials import webhook_secret_loader

    secret = (await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/github")).json()["secret"]
    await cs.call("POST", "/api/v1/orgs/acme/webhook-secrets/github", json={"grace_s": 600})
    new_key = Fernet.generate_key().decode()
    settings = cs.settings.model_copy(update={"secret_key": SecretStr(
        f"{new_key},{cs.settings.secret_key.get_secret_value()}")})
    async with cs.app.state.session_factory() as s:
        counts = await rotate_secrets(s, settings=settings)
    assert counts["webhook_secrets"] == 1
    only_new = cs.settings.model_copy(update={"secret_key": SecretStr(new_key)})
    loaded = await webhook_secret_loader(cs.app.state.session_factory, settings=only_new)("acme", "acme", "github")
    assert loaded is not None and loaded.previous == secret and loaded.version == 2
