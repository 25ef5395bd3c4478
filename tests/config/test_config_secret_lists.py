"""Secrets inside lists (``custom.webhooks[].token``, ``agents.planner.playbook[].args.api_key``):
encrypted at rest, masked in every view and diff, revealed for the engine, and a masked list sent
back in a patch keeps the secrets of the elements it was read from (``core/secret_fields.py``).
The property over arbitrary trees, through the API: ``tests/security/test_security_config_secret_lists.py``."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet, MultiFernet
from gateway_kit import ADMIN_TOKEN, settings_for
from sqlalchemy import select, text
from typer.testing import CliRunner

from cli.main import app as cli_app
from config_service.core.merge import changes, merge_patch
from config_service.core.secret_fields import (
    ENC_PREFIX,
    MASK,
    decrypt_secrets,
    encrypt_patch,
    encrypt_secrets,
    mask_changes,
    mask_secrets,
    rotate_secrets,
)
from config_service.db.models import ConfigNode, ConfigVersion
from config_service.services import audit
from config_service.services.cache import clear_effective_cache
from config_service.services.config import get_effective_config
from config_service.services.orgs import bump_org_epoch
from config_service.services.rotation import rotate_secrets as rotate_secrets_service
from config_service.testing import config_harness
from incidentfox.db import session_factory
from incidentfox.errors import Unprocessable
from incidentfox.ports import free_port
from incidentfox.settings import get_settings

OLD_KEY = Fernet.generate_key()
CIPHER = MultiFernet([Fernet(OLD_KEY)])
DOC = {
    "custom": {"webhooks": [{"url": "https://a.example", "token": "T0KEN-A"},
                            {"url": "https://b.example", "token": "T0KEN-B"}],
               "matrix": [[{"password": "PW-DEEP", "name": "n"}], "plain"]},
    "agents": {"planner": {"playbook": [{"tool": "http_get", "args": {"api_key": "AK-PLAY", "path": "/x"}}]}},
}
PLAINTEXTS = ("T0KEN-A", "T0KEN-B", "PW-DEEP", "AK-PLAY")
MASKED = {
    "custom": {"webhooks": [{"url": "https://a.example", "token": MASK}, {"url": "https://b.example", "token": MASK}],
               "matrix": [[{"password": MASK, "name": "n"}], "plain"]},
    "agents": {"planner": {"playbook": [{"tool": "http_get", "args": {"api_key": MASK, "path": "/x"}}]}},
}


def test_secrets_inside_lists_are_encrypted_masked_and_revealed():
    enc = encrypt_secrets(DOC, CIPHER)
    assert not any(p in json.dumps(enc) for p in PLAINTEXTS)
    assert enc["custom"]["webhooks"][0]["token"].startswith(ENC_PREFIX)
    assert enc["custom"]["matrix"][0][0]["password"].startswith(ENC_PREFIX)
    assert enc["agents"]["planner"]["playbook"][0]["args"]["api_key"].startswith(ENC_PREFIX)
    assert enc["custom"]["webhooks"][0]["url"] == "https://a.example" and enc["custom"]["matrix"][1] == "plain"
    assert mask_secrets(enc) == mask_secrets(DOC) == MASKED
    assert decrypt_secrets(enc, CIPHER) == DOC


def test_diffs_mask_secrets_inside_lists():
    enc = encrypt_secrets(DOC, CIPHER)
    for diff in (changes({}, enc), changes(enc, {}), changes(DOC, {"custom": {"webhooks": []}})):
        masked = json.dumps(mask_changes(diff))
        assert ENC_PREFIX not in masked and not any(p in masked for p in PLAINTEXTS)
    hooks = {"path": "custom.webhooks", "op": "add", "new": DOC["custom"]["webhooks"]}
    assert mask_changes([hooks]) == [{**hooks, "new": MASKED["custom"]["webhooks"]}]
    assert mask_changes(mask_changes([hooks])) == mask_changes([hooks])  # idempotent: stored diffs re-masked on read


def test_plaintext_stored_before_the_fix_still_reads_and_rotation_encrypts_it():
    legacy = json.loads(json.dumps(DOC))  # lists were stored as sent
    legacy["llm"] = {"api_key": encrypt_secrets({"api_key": "sk-1"}, CIPHER)["api_key"]}
    assert decrypt_secrets(legacy, CIPHER) == {**DOC, "llm": {"api_key": "sk-1"}}
    assert mask_secrets(legacy) == {**MASKED, "llm": {"api_key": MASK}}
    new = MultiFernet([Fernet(Fernet.generate_key()), Fernet(OLD_KEY)])
    sealed, n = rotate_secrets(legacy, new)
    assert n == 5 and not any(p in json.dumps(sealed) for p in PLAINTEXTS)
    assert decrypt_secrets(sealed, new) == {**DOC, "llm": {"api_key": "sk-1"}}


def _write(stored: dict, patch: dict) -> dict:
    """What a patch leaves stored (the service's order: encrypt the patch, then merge it)."""
    return merge_patch(stored, encrypt_patch(patch, stored=stored, cipher=CIPHER))


def test_a_masked_document_sent_back_keeps_every_secret_and_changes_nothing():
    stored = encrypt_secrets(DOC, CIPHER)
    assert _write(stored, MASKED) == stored  # ciphertext untouched, so the write has an empty diff


def test_masked_list_elements_keep_their_own_secret_when_reordered_removed_or_appended():
    stored = encrypt_secrets(DOC, CIPHER)
    a, b = MASKED["custom"]["webhooks"]
    new = {"url": "https://c.example", "token": "T0KEN-C"}
    after = _write(stored, {"custom": {"webhooks": [b, new, a]}})
    assert decrypt_secrets(after, CIPHER)["custom"]["webhooks"] == [
        DOC["custom"]["webhooks"][1], new, DOC["custom"]["webhooks"][0]]
    after = _write(stored, {"custom": {"webhooks": [b]}})  # the first one removed
    assert decrypt_secrets(after, CIPHER)["custom"]["webhooks"] == [DOC["custom"]["webhooks"][1]]


@pytest.mark.parametrize(("webhooks", "bad"), [
    ([{"url": "https://evil.example", "token": MASK}], "custom.webhooks.0"),         # edited element
    ([{"url": "https://a.example", "token": "T0KEN-NEW"},
      {"url": "https://z.example", "token": MASK}], "custom.webhooks.1"),            # nothing like it stored
    ([{"url": "https://a.example", "token": MASK, "extra": 1}], "custom.webhooks.0"),
])
def test_a_masked_secret_in_an_element_that_matches_no_stored_one_is_refused(webhooks, bad):
    stored = encrypt_secrets(DOC, CIPHER)
    with pytest.raises(Unprocessable) as err:
        _write(stored, {"custom": {"webhooks": webhooks}})
    assert err.value.code == "invalid_config"
    assert [e["path"] for e in err.value.details["errors"]] == [bad]
    assert "T0KEN" not in json.dumps(err.value.details)


def test_a_masked_element_matching_several_stored_ones_is_refused_unless_at_its_own_index():
    same = [{"url": "https://a.example", "token": "T0KEN-1"}, {"url": "https://a.example", "token": "T0KEN-2"},
            {"url": "https://a.example", "token": "T0KEN-3"}]
    stored = encrypt_secrets({"custom": {"webhooks": same}}, CIPHER)
    masked = mask_secrets(stored)["custom"]["webhooks"]
    kept = _write(stored, {"custom": {"webhooks": masked[:2]}})  # same indices: each keeps its own
    assert decrypt_secrets(kept, CIPHER)["custom"]["webhooks"] == same[:2]
    with pytest.raises(Unprocessable):  # index 3 does not exist; which of three secrets is meant?
        _write(stored, {"custom": {"webhooks": [*masked, masked[0]]}})


def test_a_masked_element_where_nothing_is_stored_is_refused():
    with pytest.raises(Unprocessable):
        _write({}, {"custom": {"webhooks": [{"url": "https://a.example", "token": MASK}]}})


# ---- through the service -------------------------------------------------------------------------

def assert_hidden(blob: str, where: str) -> None:
    for plaintext in PLAINTEXTS:
        assert plaintext not in blob, f"{plaintext} in {where}"
    assert ENC_PREFIX not in blob, f"ciphertext in {where}"


async def _views(cs, node: str = "sre") -> dict[str, str]:
    base = f"/api/v1/orgs/acme/nodes/{node}/config"
    out = {}
    for name, path in (("raw", "/raw"), ("effective", "/effective"), ("explain", "/effective?explain=true"),
                       ("history", "/history")):
        r = await cs.call("GET", base + path)
        assert r.status_code == 200, r.text
        out[name] = r.text
    out["audit"] = (await cs.call("GET", "/api/v1/orgs/acme/audit")).text
    return out


async def _reveal(cs) -> dict:
    async with session_factory(cs.app.state.engine)() as s:
        return await get_effective_config(s, org_id="acme", node_id="sre", reveal_secrets=True, settings=cs.settings)


async def _tables(cs) -> str:
    async with session_factory(cs.app.state.engine)() as s:
        return str([(await s.execute(text(f"SELECT * FROM {t}"))).all()
                    for t in ("config_nodes", "config_versions", "audit_events")])


async def test_secrets_in_lists_written_through_the_api_are_hidden_everywhere_but_the_engine(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as cs:
        await cs.create_org("acme")
        await cs.create_node("acme", "sre", kind="team")
        r = await cs.patch("acme", "sre", DOC)
        assert r.status_code == 200, r.text
        assert_hidden(r.text, "patch answer")
        assert r.json()["config"] == MASKED
        for name, blob in (await _views(cs)).items():
            assert_hidden(blob, name)
        team = await cs.team_token("acme", "sre")
        mine = await cs.call("GET", "/api/v1/team/config", token=team)
        assert_hidden(mine.text, "team view")
        assert mine.json()["config"]["custom"] == MASKED["custom"]
        for plaintext in PLAINTEXTS:
            assert plaintext not in await _tables(cs)
        assert {k: v for k, v in (await _reveal(cs)).items() if k in DOC} == DOC
        # a client edits one element and sends the rest back masked
        raw = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/raw")).json()["config"]
        raw["custom"]["webhooks"][1] = {"url": "https://b2.example", "token": "T0KEN-B2"}
        r = await cs.patch("acme", "sre", raw)
        assert r.status_code == 200, r.text
        assert [d["path"] for d in r.json()["diff"]] == ["custom.webhooks"]
        assert_hidden(r.text, "second patch")
        assert "T0KEN-B2" not in r.text
        assert (await _reveal(cs))["custom"]["webhooks"] == [DOC["custom"]["webhooks"][0], raw["custom"]["webhooks"][1]]
        # an edited element still masked is refused, naming it, and nothing is stored
        raw["custom"]["webhooks"][0]["url"] = "https://elsewhere.example"
        r = await cs.patch("acme", "sre", raw)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_config"
        assert [e["path"] for e in r.json()["error"]["details"]["errors"]] == ["custom.webhooks.0"]
        assert (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/raw")).json()["version"] == 2


async def test_legacy_plaintext_lists_read_masked_and_rotation_seals_them(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as cs:
        await cs.create_org("acme")
        await cs.create_node("acme", "sre", kind="team")
        legacy_diff = [{"path": "custom.webhooks", "op": "add", "new": DOC["custom"]["webhooks"]}]
        async with session_factory(cs.app.state.engine)() as s:  # what the old code stored
            await bump_org_epoch(s, org_id="acme")
            node = (await s.execute(select(ConfigNode).where(ConfigNode.node_id == "sre"))).scalar_one()
            node.config, node.version = json.loads(json.dumps(DOC)), 1
            s.add(ConfigVersion(org_id="acme", node_id="sre", version=1, action="patch", config=node.config,
                                diff=legacy_diff, actor="old", created_at=node.updated_at))
            audit.record(s, org_id="acme", actor="old", action="config.patch", target="node:acme/sre",
                         diff={"version": 1, "changes": legacy_diff, "restored_from": None})
            await s.commit()
        for name, blob in (await _views(cs)).items():
            assert_hidden(blob, name)
        assert {k: v for k, v in (await _reveal(cs)).items() if k in DOC} == DOC
        raw = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/raw")).json()["config"]
        r = await cs.patch("acme", "sre", raw)  # sent back as read: every secret kept, now encrypted
        assert r.status_code == 200, r.text
        assert_hidden(r.text, "round trip")
        async with session_factory(cs.app.state.engine)() as s:
            stored = (await s.execute(select(ConfigNode.config).where(ConfigNode.node_id == "sre"))).scalar_one()
        assert not any(p in json.dumps(stored) for p in PLAINTEXTS)
        clear_effective_cache()
        assert {k: v for k, v in (await _reveal(cs)).items() if k in DOC} == DOC
        async with session_factory(cs.app.state.engine)() as s:
            counts = await rotate_secrets_service(s, settings=cs.settings)
        # version 1 (the old write) is sealed; the node and version 2 were already encrypted
        assert counts["nodes"] == 1 and counts["versions"] == 2 and counts["secrets"] == 3 * len(PLAINTEXTS)
        assert counts["diffs"] == 2  # the version's and the audit entry's
        assert_hidden((await _tables(cs)).replace(ENC_PREFIX, ""), "tables after rotation")
        clear_effective_cache()
        assert {k: v for k, v in (await _reveal(cs)).items() if k in DOC} == DOC


async def test_a_rollback_to_a_legacy_plaintext_version_stores_it_sealed(db_url, tmp_path):
    """Version 1 holds list secrets in plaintext (written by an older release); rolling back to it
    stores them encrypted, with no `secrets rotate` needed, and the engine still reads them."""
    async with config_harness(db_url=db_url, home=tmp_path) as cs:
        await cs.create_org("acme")
        await cs.create_node("acme", "sre", kind="team")
        async with session_factory(cs.app.state.engine)() as s:  # what the old code stored
            await bump_org_epoch(s, org_id="acme")
            node = (await s.execute(select(ConfigNode).where(ConfigNode.node_id == "sre"))).scalar_one()
            node.config, node.version = json.loads(json.dumps(DOC)), 1
            s.add(ConfigVersion(org_id="acme", node_id="sre", version=1, action="patch", config=node.config,
                                diff=[], actor="old", created_at=node.updated_at))
            await s.commit()
        assert (await cs.patch("acme", "sre", {"custom": {"webhooks": []}})).status_code == 200
        r = await cs.call("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback", json={"version": 1})
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 3 and r.json()["restored_from"] == 1
        assert_hidden(r.text, "rollback answer")
        async with session_factory(cs.app.state.engine)() as s:
            stored = (await s.execute(select(ConfigNode.config).where(ConfigNode.node_id == "sre"))).scalar_one()
            restored = (await s.execute(select(ConfigVersion.config).where(
                ConfigVersion.node_id == "sre", ConfigVersion.version == 3))).scalar_one()
        assert not any(p in json.dumps([stored, restored]) for p in PLAINTEXTS)
        clear_effective_cache()
        assert {k: v for k, v in (await _reveal(cs)).items() if k in DOC} == DOC


def test_cli_config_get_and_history_show_secrets_in_lists_masked(sqlite_url, tmp_path, monkeypatch):
    from config_service.app import create_app

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(settings_for(sqlite_url, tmp_path)), host="127.0.0.1", port=port,
                                        log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not srv.started:  # uvicorn offers no start event; poll its flag, bounded
            assert thread.is_alive() and time.monotonic() < deadline, "config service did not start"
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30) as c:
            assert c.post("/api/v1/orgs", json={"org_id": "acme", "name": "Acme"}).status_code < 300
            assert c.post("/api/v1/orgs/acme/nodes", json={"node_id": "sre", "kind": "team"}).status_code < 300
            assert c.patch("/api/v1/orgs/acme/nodes/sre/config", json=DOC).status_code == 200
        monkeypatch.setenv("INCIDENTFOX_CONFIG_URL", url)
        monkeypatch.setenv("INCIDENTFOX_TOKEN", ADMIN_TOKEN)
        monkeypatch.setenv("INCIDENTFOX_HOME", str(tmp_path))
        get_settings.cache_clear()
        runner = CliRunner()
        for args in (["get", "--view", "raw"], ["get", "--view", "effective"], ["get", "--view", "explain", "--json"],
                     ["history", "--json"], ["history"]):
            result = runner.invoke(cli_app, ["config", *args, "--org", "acme", "--node", "sre"])
            assert result.exit_code == 0, result.output
            assert_hidden(result.output, f"config {' '.join(args)}")
        assert "***" in runner.invoke(cli_app, ["config", "get", "--org", "acme", "--node", "sre"]).output
    finally:
        get_settings.cache_clear()
        srv.should_exit = True
        thread.join(timeout=20)
