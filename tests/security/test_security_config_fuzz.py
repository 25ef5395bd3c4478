"""Hostile config documents (issue 12): property-based fuzzing of the config validator
(``config_service/core/validation.py``) through ``PATCH …/config`` with an org-admin token: never a server error, every refusal in the shared error shape, and whatever is accepted can
be read back (a stored config never breaks the readers).

Documents are shaped like real configs (known sections, known keys) with hostile leaves: wrong
types, huge numbers, NUL, lone surrogates, long strings, deep nesting, URLs at internal addresses.
One database and app for the whole run (a persistent loop), so examples are cheap.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config_service.testing import config_harness
from incidentfox.db import upgrade

SECTIONS = ["llm", "integrations", "routing", "slack", "tools", "quotas", "deployment", "investigation",
            "subagents", "agents", "access", "sandbox", "locked_paths", "mcp_servers", "custom", "webhooks"]
KEYS = ["provider", "model", "base_url", "api_key", "url", "bot_token", "kubeconfig", "default_channel",
        "slack_channel_ids", "github_repos", "services", "max_concurrent_runs", "deadline_s", "mode",
        "approvers", "api_approvals", "enabled", "region", "endpoint_url", "playbook", "tool", "args",
        "instructions", "max_turns", "request_timeout_s", "aws", "kubernetes", "github", "prometheus"]
HOSTILE_TEXT = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\udc00", "\ud800x", "\u202eevil", "../../etc/passwd", "http://169.254.169.254/",
    "http://[::1]:8080/", "http://2130706433/", "file:///etc/shadow", "${ENV}", "{{7*7}}", "'; DROP TABLE x;--",
    "x" * 5000, "S0GROUP", "U0USER", "*", "***",
]) | st.text(max_size=30)
LEAVES = (st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
          | st.floats(allow_nan=False, allow_infinity=False) | HOSTILE_TEXT)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(KEYS) | HOSTILE_TEXT, inner,
                                                                max_size=5),
    max_leaves=25)
DOCS = st.dictionaries(st.sampled_from(SECTIONS) | HOSTILE_TEXT, VALUES, min_size=1, max_size=4)


class World:
    """One migrated database and config app on a loop that outlives the examples."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(self.tmp.name) / 'fuzz.db'}"
        upgrade(url)
        self._cm = config_harness(db_url=url, home=Path(self.tmp.name))
        self.cs = self.run(self._cm.__aenter__())
        self.run(self.cs.create_org("acme"))
        self.run(self.cs.create_node("acme", "sre", kind="team"))
        self.team_token = self.run(self.cs.team_token("acme", "sre"))
        self.org_token = self.run(self.cs.org_token("acme"))

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


def _body(doc) -> bytes:
    # ensure_ascii: lone surrogates travel as JSON escapes (they are not encodable as UTF-8 bytes).
    return json.dumps(doc, ensure_ascii=True).encode()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(doc=DOCS)
def test_hostile_config_patches_never_500_and_stay_readable(world, doc):
    token = world.org_token     # team tokens cannot write config at all (403, checked below)

    async def go() -> None:
        r = await world.cs.client.patch("/api/v1/orgs/acme/nodes/sre/config", content=_body(doc),
                                        headers={**world.cs.auth(token), "Content-Type": "application/json"})
        assert r.status_code < 500, (doc, r.status_code, r.text[:300])
        if r.status_code >= 400:
            assert set(r.json()["error"]) == {"code", "message", "details"}
            assert "\x00" not in r.text
            return
        for path in ("/api/v1/orgs/acme/nodes/sre/config/effective", "/api/v1/orgs/acme/nodes/sre/config/raw"):
            back = await world.cs.call("GET", path, token=world.org_token)
            assert back.status_code == 200, (path, back.text[:300])

    world.run(go())


def test_team_tokens_cannot_write_config(world):
    async def go() -> None:
        r = await world.cs.client.patch("/api/v1/orgs/acme/nodes/sre/config", content=_body({"access": {}}),
                                        headers={**world.cs.auth(world.team_token), "Content-Type": "application/json"})
        assert r.status_code == 403

    world.run(go())
