"""Hypothesis: arbitrary bytes and headers on every endpoint never give a 500 (nor leak a secret)."""

from __future__ import annotations

import asyncio

import pytest
from gateway_kit import SECRETS, client_for, make_core, signed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serve_apps.gateway import ENDPOINTS

header_names = st.sampled_from([
    "X-Slack-Signature", "X-Slack-Request-Timestamp", "X-Hub-Signature-256", "X-GitHub-Event",
    "X-GitHub-Delivery", "X-PagerDuty-Signature", "X-Webhook-Id", "webhook-id", "webhook-timestamp",
    "webhook-signature", "Authorization", "X-Grafana-Alert-Signature", "Content-Type", "X-Anything",
])
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
bodies = st.one_of(
    st.binary(max_size=2048),
    st.just(b'{"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}}'),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                 lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                 max_leaves=20).map(lambda v: __import__("json").dumps(v).encode()),
)


@pytest.fixture(scope="module")
def fuzz_gateway(tmp_path_factory):
    from incidentfox.db import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    upgrade(url)
    core = make_core(url)
    yield core
    # Its pooled connections were opened in loops asyncio.run has closed since; closed here, not by
    # the garbage collector later, whose close would reach a closed loop from aiosqlite's thread.
    asyncio.run(core.engine.dispose())


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(endpoint=st.sampled_from(sorted(ENDPOINTS)), body=bodies,
       headers=st.dictionaries(header_names, header_values, max_size=6), sign=st.booleans())
def test_arbitrary_requests_never_500(fuzz_gateway, endpoint, body, headers, sign):
    core = fuzz_gateway
    source = ENDPOINTS[endpoint]
    if sign:
        # Signed garbage gets past verification and exercises the parsers through the HTTP layer.
        headers = {**headers, **signed(source, body, event=headers.get("X-GitHub-Event", "issues"))}

    async def go():
        async with client_for(core) as client:
            r = await client.post(endpoint, content=body, headers=headers)
        await core.drain()   # nothing of this request left running when asyncio.run closes the loop
        return r

    r = asyncio.run(go())
    assert r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/json")
    for secret in SECRETS.values():
        assert secret not in r.text
    if r.status_code >= 400:
        assert set(r.json()["error"]) == {"code", "message", "details"}
