"""The SOURCES registry and the WebhookError / ParseResult contracts the gateway builds on."""

from __future__ import annotations

import inspect
import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from config_service.webhook_credentials import WEBHOOK_SOURCES
from incidentfox.contracts import Trigger, TriggerAction
from incidentfox.errors import IncidentFoxError, install_error_handlers
from serve_apps.webhooks.errors import WebhookError
from serve_apps.webhooks.registry import SOURCES, ParseResult, get_source

EXPECTED = {
    "slack": ("SLACK_SIGNING_SECRET", "sender"),
    "github": ("GITHUB_WEBHOOK_SECRET", "platform"),
    "pagerduty": ("PAGERDUTY_WEBHOOK_SECRET", "sender"),
    "incidentio": ("INCIDENTIO_WEBHOOK_SECRET", "sender"),
    "alertmanager": ("ALERTMANAGER_WEBHOOK_TOKEN", "platform"),
    "grafana": ("GRAFANA_WEBHOOK_SECRET", "platform"),
}


def test_sources_env_secrets_and_issuers() -> None:
    """The env names stay as they were (single-tenant default); the config service's list of sources
    (per-org secrets) is the gateway's list."""
    assert {name: (spec.secret_env, spec.policy.issuer) for name, spec in SOURCES.items()} == EXPECTED
    assert set(WEBHOOK_SOURCES) == set(SOURCES)
    assert WEBHOOK_SOURCES["grafana"].options == {"signature_header", "timestamp_header"}
    assert not any(hasattr(spec, "candidate_identifiers") for spec in SOURCES.values()), \
        "nothing reads identifiers from an unverified body any more (issue 12, point 5)"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_functions_are_keyword_only_with_the_agreed_names(name: str) -> None:
    spec = SOURCES[name]
    for fn, params in ((spec.verify, ["headers", "body", "secret", "now"]),
                       (spec.parse, ["headers", "body", "now"])):
        sig = inspect.signature(fn)
        assert list(sig.parameters)[: len(params)] == params
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in sig.parameters.values())
        extra = list(sig.parameters)[len(params):]
        assert all(sig.parameters[p].default is not inspect.Parameter.empty for p in extra)


def test_unknown_source() -> None:
    with pytest.raises(WebhookError) as info:
        get_source("nope")
    assert (info.value.reason, info.value.status) == ("unknown_source", 404)


def test_webhook_error_maps_through_the_one_error_handler() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/stale")
    async def stale() -> None:
        raise WebhookError("stale_timestamp", source="slack", message="stale timestamp: 400 s old")

    @app.post("/malformed")
    async def bad() -> None:
        raise WebhookError("malformed_body", source="github", message="body is not valid JSON")

    client = TestClient(app)
    r = client.post("/stale")
    assert r.status_code == 401
    assert r.json() == {"error": {"code": "stale_timestamp", "message": "stale timestamp: 400 s old",
                                  "details": {"source": "slack", "reason": "stale_timestamp"}}}
    r = client.post("/malformed")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed_body")
    assert issubclass(WebhookError, IncidentFoxError)


def test_parse_result_invariants() -> None:
    start = Trigger(source="slack", delivery_id="Ev1", event_kind="app_mention")
    ignore = start.model_copy(update={"action": TriggerAction.IGNORE})
    ParseResult(trigger=start)
    ParseResult(ignored=True, reason="bot_message")
    ParseResult(ignored=True, trigger=ignore)
    ParseResult(response={"challenge": "x"})
    for bad in ({}, {"trigger": ignore}, {"ignored": True, "trigger": start}):
        with pytest.raises(ValueError):
            ParseResult(**bad)
    assert json.loads(ParseResult(trigger=start).model_dump_json())["trigger"]["delivery_id"] == "Ev1"


def test_shared_url_secrets_come_from_settings_under_each_sources_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from serve_apps.webhook_secrets import WebhookSecrets

    for spec in SOURCES.values():
        monkeypatch.setenv(spec.secret_env, f"{spec.name}-shared-secret")
    secrets = WebhookSecrets(load=None)   # no env given: Settings reads the process environment
    assert {name: secrets.env_secret(spec) for name, spec in SOURCES.items()} == {
        name: f"{name}-shared-secret" for name in SOURCES}
    monkeypatch.delenv("GRAFANA_WEBHOOK_SECRET")
    assert WebhookSecrets(load=None).env_secret(SOURCES["grafana"]) == ""
