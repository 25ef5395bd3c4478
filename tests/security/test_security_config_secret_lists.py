"""Property: a secret-named key at any depth of a team's config, inside objects and lists, is
encrypted at rest, shown as ``***`` in every view (patch answer, raw, effective, explain, history,
audit, the team's own read), revealed only in-process for the engine, and a masked document sent
back changes nothing. Documents are random trees under ``custom`` (kept as written by validation),
each secret a unique string so a leak anywhere is found by searching for it.

One database and app for the whole run (a persistent loop); every example writes a fresh team.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from config_service.core.secret_fields import ENC_PREFIX, MASK, decrypt_secrets, encrypt_secrets, mask_secrets
from config_service.db.models import ConfigNode
from config_service.services.config import get_effective_config
from config_service.testing import config_harness
from incidentfox.db import session_factory, upgrade

SECRET_KEYS = ["token", "api_key", "password", "client_secret", "bot_token", "private_key", "X-Api-Key", "credentials"]
PLAIN_KEYS = ["url", "name", "hooks", "args", "items", "id", "steps"]
SENTINEL = re.compile(r"zQ\d+sEcReT")
SECRETS = st.integers(0, 10**9).map(lambda n: f"zQ{n}sEcReT")
PLAIN = st.booleans() | st.integers(-1000, 1000) | st.sampled_from(["a", "", MASK, "https://h.example"])
SECRET_VALUES = st.recursive(SECRETS, lambda inner: st.lists(inner, min_size=1, max_size=3) | st.dictionaries(
    st.sampled_from(PLAIN_KEYS + SECRET_KEYS), inner, min_size=1, max_size=3), max_leaves=5)


def _holder(inner: st.SearchStrategy, *, min_plain: int = 0) -> st.SearchStrategy:
    """Objects with plain keys (any tree) and secret keys (secret values)."""
    return st.builds(lambda plain, secret: {**plain, **secret},
                     st.dictionaries(st.sampled_from(PLAIN_KEYS), inner, min_size=min_plain, max_size=3),
                     st.dictionaries(st.sampled_from(SECRET_KEYS), SECRET_VALUES, max_size=2))


TREES = st.recursive(PLAIN, lambda inner: st.lists(inner, max_size=3) | _holder(inner), max_leaves=14)
DOCS = _holder(TREES, min_plain=1)
SECRET = object()  # where the reference rule puts a secret leaf


def secret_leaves(value: Any, secret: bool = False) -> Any:
    """The rule, written independently of the service: ``value`` with every secret leaf (a value
    under a secret-named key that is not an object) replaced by :data:`SECRET`."""
    if isinstance(value, dict):
        return {k: secret_leaves(v, secret or k in SECRET_KEYS) for k, v in value.items()}
    if secret:
        return SECRET
    if isinstance(value, list):
        return [secret_leaves(v) for v in value]
    return value


def masked(reference: Any) -> Any:
    if reference is SECRET:
        return MASK
    if isinstance(reference, dict):
        return {k: masked(v) for k, v in reference.items()}
    if isinstance(reference, list):
        return [masked(v) for v in reference]
    return reference


def assert_encrypted_at_rest(stored: Any, reference: Any) -> None:
    if reference is SECRET:
        assert isinstance(stored, str) and stored.startswith(ENC_PREFIX), stored
    elif isinstance(reference, dict):
        assert isinstance(stored, dict) and stored.keys() == reference.keys()
        for key in reference:
            assert_encrypted_at_rest(stored[key], reference[key])
    elif isinstance(reference, list):
        assert isinstance(stored, list) and len(stored) == len(reference)
        for got, want in zip(stored, reference, strict=True):
            assert_encrypted_at_rest(got, want)
    else:
        assert stored == reference


class World:
    """One migrated database and config app on a loop that outlives the examples."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(self.tmp.name) / 'secrets.db'}"
        upgrade(url)
        self._cm = config_harness(db_url=url, home=Path(self.tmp.name))
        self.cs = self.run(self._cm.__aenter__())
        self.run(self.cs.create_org("acme"))
        self.teams = 0

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self._cm.__aexit__(None, None, None))
        self.loop.close()
        self.tmp.cleanup()


@pytest.fixture(scope="module")
def world():
    w = World()
    yield w
    w.close()


def test_the_reference_rule_agrees_with_the_service_on_the_audit_case():
    doc = {"webhooks": [{"token": "T0KEN-SECRET", "url": "u"}]}
    assert masked(secret_leaves(doc)) == mask_secrets(doc) == {"webhooks": [{"token": MASK, "url": "u"}]}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(doc=DOCS)
@example(doc={"webhooks": [{"token": "zQ1sEcReT"}]})
@example(doc={"steps": [[{"args": {"api_key": "zQ2sEcReT", "id": 1}}, "a"], {"X-Api-Key": ["zQ3sEcReT"]}]})
def test_secret_keys_at_any_depth_are_encrypted_at_rest_and_masked_in_every_view(world, doc):
    reference = secret_leaves(doc)
    want = masked(reference)
    world.teams += 1
    team = f"t{world.teams}"
    cs = world.cs
    base = f"/api/v1/orgs/acme/nodes/{team}/config"

    async def go() -> None:
        await cs.create_node("acme", team, kind="team")
        token = await cs.team_token("acme", team)
        r = await cs.patch("acme", team, {"custom": doc})
        assert r.status_code == 200, r.text
        views = {"patch": r, "raw": await cs.call("GET", base + "/raw"),
                 "effective": await cs.call("GET", base + "/effective"),
                 "explain": await cs.call("GET", base + "/effective?explain=true"),
                 "history": await cs.call("GET", base + "/history"),
                 "audit": await cs.call("GET", "/api/v1/orgs/acme/audit", params={"target": f"node:acme/{team}"}),
                 "team": await cs.call("GET", "/api/v1/team/config", token=token)}
        for name, resp in views.items():
            assert resp.status_code == 200, (name, resp.text)
            assert not SENTINEL.search(resp.text), f"a secret leaked in {name}"
            assert ENC_PREFIX not in resp.text, f"ciphertext in {name}"
        assert [e["action"] for e in views["audit"].json()["items"]] == ["config.patch", "node.create"]
        configs = {"patch": r.json()["config"], "raw": views["raw"].json()["config"],
                   "effective": views["effective"].json()["config"], "explain": views["explain"].json()["config"],
                   "history": views["history"].json()["items"][0]["config"], "team": views["team"].json()["config"]}
        for name, config in configs.items():
            assert config["custom"] == want, name

        sessions = session_factory(cs.app.state.engine)
        async with sessions() as s:
            stored = (await s.execute(select(ConfigNode.config).where(
                ConfigNode.org_id == "acme", ConfigNode.node_id == team))).scalar_one()
            for table in ("config_nodes", "config_versions", "audit_events"):
                rows = str((await s.execute(text(f"SELECT * FROM {table}"))).all())
                assert not SENTINEL.search(rows), f"a secret at rest in {table}"
            revealed = await get_effective_config(s, org_id="acme", node_id=team, reveal_secrets=True,
                                                  settings=cs.settings)
        assert_encrypted_at_rest(stored["custom"], reference)
        assert revealed["custom"] == doc

        # what a client read, sent back as is, changes nothing and keeps every secret
        again = await cs.patch("acme", team, {"custom": configs["raw"]["custom"]})
        assert again.status_code == 200, again.text
        assert again.json()["diff"] == []
        async with sessions() as s:
            revealed = await get_effective_config(s, org_id="acme", node_id=team, reveal_secrets=True,
                                                  settings=cs.settings)
        assert revealed["custom"] == doc

    world.run(go())


@settings(max_examples=200, deadline=None)
@given(doc=DOCS)
def test_the_pure_functions_follow_the_rule(doc):
    from cryptography.fernet import Fernet, MultiFernet

    cipher = MultiFernet([Fernet(b"k" * 43 + b"=")])
    enc = encrypt_secrets(doc, cipher)
    assert_encrypted_at_rest(enc, secret_leaves(doc))
    assert not SENTINEL.search(json.dumps(enc))
    assert mask_secrets(enc) == mask_secrets(doc) == masked(secret_leaves(doc))
    assert decrypt_secrets(enc, cipher) == doc
