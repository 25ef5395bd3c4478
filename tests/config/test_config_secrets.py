"""Secrets in config: encrypted at rest, masked in every response, audit diff and log line,
revealed only in-process for the engine, and re-encrypted by `incidentfox secrets rotate`."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli_app
from config_service import DEFAULT_CONFIG
from config_service.services.cache import clear_effective_cache
from config_service.services.config import get_effective_config
from config_service.testing import config_harness
from incidentfox.settings import get_settings

SECRETS = {"llm-key": "sk-live-SECRET-ONE", "slack": "xoxb-SECRET-TWO", "dd": "dd-SECRET-THREE",
           "aws": "aws-SECRET-FOUR"}
PATCH = {
    "llm": {"provider": "openai", "model": "gpt-4o", "api_key": SECRETS["llm-key"]},
    "integrations": {
        "slack": {"bot_token": SECRETS["slack"], "default_channel": "C0SRE"},
        "datadog": {"api_key": SECRETS["dd"], "site": "datadoghq.eu"},
        "aws": {"secret_access_key": SECRETS["aws"], "access_key_id": "AKIAEXAMPLE", "region": "eu-west-1"},
    },
    "slack": {"default_channel": "C0SRE"},
}


def assert_no_secret(blob: str, where: str) -> None:
    for name, value in SECRETS.items():
        assert value not in blob, f"{name} leaked in {where}"
        assert value[-10:] not in blob, f"part of {name} leaked in {where}"


async def test_secrets_never_leave_in_plaintext(db_url, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # every statement and its parameters
    async with config_harness(db_url=db_url, home=tmp_path) as cs:
        await cs.create_org("acme")
        await cs.create_node("acme", "sre", kind="team")
        team = await cs.team_token("acme", "sre")
        imp = await cs.impersonation_token("acme", "sre")
        r = await cs.patch("acme", "sre", PATCH)
        assert r.status_code == 200
        responses = {"patch": r}
        responses["raw"] = await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/raw")
        responses["effective"] = await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/effective")
        responses["explain"] = await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/effective?explain=true")
        responses["history"] = await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/history")
        responses["audit"] = await cs.call("GET", "/api/v1/orgs/acme/audit")
        responses["team"] = await cs.call("GET", "/api/v1/team/config", token=team)
        responses["impersonation"] = await cs.call("GET", "/api/v1/team/config", token=imp)
        # change one secret and remove another: diffs must still be masked
        responses["patch2"] = await cs.patch("acme", "sre", {"integrations": {"slack": {"bot_token": "xoxb-new"},
                                                                              "aws": None}})
        responses["audit2"] = await cs.call("GET", "/api/v1/orgs/acme/audit")
        responses["rollback"] = await cs.call("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback",
                                              json={"version": 1})
        # refused writes carrying secrets do not echo them either
        responses["bad-type"] = await cs.patch("acme", "sre", {"llm": {"api_key": [SECRETS["llm-key"]]}})
        responses["bad-body"] = await cs.call("POST", "/api/v1/orgs", json={"org_id": "x", "name": 1,
                                                                            "password": SECRETS["dd"]})
        assert responses["bad-type"].status_code == 422 and responses["bad-body"].status_code == 422
        for name, resp in responses.items():
            assert resp.status_code < 500, name
            assert_no_secret(resp.text, f"response {name}")
            assert "xoxb-new" not in resp.text

        eff = responses["effective"].json()["config"]
        assert eff["llm"]["api_key"] == "***" and eff["llm"]["model"] == "gpt-4o"
        assert eff["integrations"]["slack"] == {"bot_token": "***", "default_channel": "***"}
        diff = responses["patch2"].json()["diff"]
        assert {"path": "integrations.slack.bot_token", "op": "replace", "old": "***", "new": "***"} in diff
        assert {"path": "integrations.aws.secret_access_key", "op": "remove", "old": "***"} in diff

        # at rest: no table holds a plaintext secret
        async with cs.app.state.session_factory() as s:
            for table in ("config_nodes", "config_versions", "audit_events"):
                rows = (await s.execute(text(f"SELECT * FROM {table}"))).all()
                assert rows
                assert_no_secret(str(rows), f"table {table}")
                assert "xoxb-new" not in str(rows)

        # in-process engine use reveals them (and masks by default)
        clear_effective_cache()
        async with cs.app.state.session_factory() as s:
            revealed = await get_effective_config(s, org_id="acme", node_id="sre", reveal_secrets=True,
                                                  settings=cs.settings)
            masked = await get_effective_config(s, org_id="acme", node_id="sre")
        assert revealed["llm"]["api_key"] == SECRETS["llm-key"]
        assert revealed["integrations"]["aws"]["secret_access_key"] == SECRETS["aws"]  # restored by rollback
        assert masked["llm"]["api_key"] == "***"
    assert "config_nodes" in caplog.text  # SQL was logged, so the next check means something
    assert_no_secret(caplog.text, "logs")
    assert "xoxb-new" not in caplog.text
    for token in (team, imp, cs.admin_token):
        assert token not in caplog.text


async def test_masked_values_round_trip_without_wiping_secrets(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as cs:
        await cs.create_org("acme")
        await cs.create_node("acme", "sre", kind="team")
        await cs.patch("acme", "sre", PATCH)
        raw = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/raw")).json()["config"]
        raw["llm"]["model"] = "gpt-4.1"
        r = await cs.patch("acme", "sre", raw)  # a client sends back what it read, masks included
        assert r.status_code == 200
        assert r.json()["diff"] == [{"path": "llm.model", "op": "replace", "old": "gpt-4o", "new": "gpt-4.1"}]
        async with cs.app.state.session_factory() as s:
            revealed = await get_effective_config(s, org_id="acme", node_id="sre", reveal_secrets=True,
                                                  settings=cs.settings)
        assert revealed["integrations"]["slack"]["bot_token"] == SECRETS["slack"]
        assert revealed["llm"] == {**DEFAULT_CONFIG["llm"], "provider": "openai", "model": "gpt-4.1",
                                       "api_key": SECRETS["llm-key"]}


@pytest.fixture
def clean_settings_cache():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _write_secrets(db_url, home, key: str) -> None:
    async with config_harness(db_url=db_url, home=home, secret_key=SecretStr(key)) as cs:
        await cs.create_org("acme")
        await cs.create_node("acme", "sre", kind="team")
        await cs.patch("acme", "sre", PATCH)
        await cs.patch("acme", "sre", {"llm": {"api_key": "sk-second"}})


async def _reveal(db_url, home, key: str, version: int | None = None) -> dict:
    async with config_harness(db_url=db_url, home=home, secret_key=SecretStr(key)) as cs:
        if version is not None:
            r = await cs.call("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback", json={"version": version})
            assert r.status_code == 200, r.text
        clear_effective_cache()
        async with cs.app.state.session_factory() as s:
            return await get_effective_config(s, org_id="acme", node_id="sre", reveal_secrets=True,
                                              settings=cs.settings)


async def test_secrets_rotate_cli_reencrypts_nodes_and_versions(db_url, tmp_path, monkeypatch,
                                                                clean_settings_cache):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    await _write_secrets(db_url, tmp_path, old)
    monkeypatch.setenv("INCIDENTFOX_DATABASE_URL", db_url)
    monkeypatch.setenv("INCIDENTFOX_HOME", str(tmp_path))
    monkeypatch.setenv("INCIDENTFOX_SECRET_KEY", f"{new},{old}")
    monkeypatch.setenv("INCIDENTFOX_TOKEN_PEPPER", "pepper")
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, ["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output.strip().splitlines()[-1])
    # the node's current config, plus versions 1 and 2 (versions 0 hold no secrets)
    # 8 secret leaves in PATCH; no diff held an unmasked secret
    assert counts == {"nodes": 1, "versions": 2, "secrets": 3 * 8, "diffs": 0, "webhook_secrets": 0}
    assert_no_secret(result.output, "CLI output")
    # the old key can go: current config and an old version both decrypt with the new key alone
    eff = await _reveal(db_url, tmp_path, new)
    assert eff["llm"]["api_key"] == "sk-second"
    eff = await _reveal(db_url, tmp_path, new, version=1)
    assert eff["llm"]["api_key"] == SECRETS["llm-key"]
    assert eff["integrations"]["datadog"] == {"api_key": SECRETS["dd"], "site": "datadoghq.eu"}


def test_generate_key_prints_a_fernet_key():
    result = CliRunner().invoke(cli_app, ["secrets", "generate-key"])
    assert result.exit_code == 0
    Fernet(result.output.strip().encode())
