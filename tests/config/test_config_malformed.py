"""Malformed input never yields a 500: bad JSON, wrong types, over-deep trees, 1 MiB+ bodies
(declared or chunked), NaN, NUL, lone surrogates, non-object bodies — each a clear 4xx in the
shared error shape."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config_service.testing import config_harness
from incidentfox.db import upgrade

MiB = 1024 * 1024
WRITES = [
    ("PATCH", "/api/v1/orgs/acme/nodes/sre/config"),
    ("POST", "/api/v1/orgs/acme/nodes"),
    ("POST", "/api/v1/orgs"),
    ("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback"),
    ("POST", "/api/v1/orgs/acme/tokens"),
    ("POST", "/api/v1/orgs/acme/teams/sre/impersonation-token"),
    ("POST", "/api/v1/routing/lookup"),
    ("PATCH", "/api/v1/orgs/acme/nodes/sre"),
]
BAD_BODIES: dict[str, tuple[bytes, set[int]]] = {
    "truncated": (b'{"a": ', {400}),
    "not-json": (b"hello", {400}),
    "invalid-utf8": (b'{"a": "\xff"}', {400}),
    "nan": (b'{"llm": {"temperature": NaN}}', {400}),
    "nul": (b'{"name": "a\\u0000b", "org_id": "x"}', {422}),
    "surrogate": (b'{"name": "\\udc00", "org_id": "x"}', {422}),
    "deep-dict": (b'{"a":' * 40 + b"1" + b"}" * 40, {422}),
    "deep-array": (b"[" * 100_000 + b"]" * 100_000, {413, 422}),
    "array": (b"[1, 2]", {422}),
    "string": (b'"x"', {422}),
    "null": (b"null", {422}),
    "number": (b"1e999999", {400, 422}),
    "infinite": (b'{"custom": {"x": -1e999}, "version": 1e999, "identifiers": {"service": 1e999}}', {422}),
    "huge-int": (b'{"version": ' + b"9" * 5000 + b"}", {400}),
}


async def _tree(cs) -> None:
    await cs.create_org("acme")
    await cs.create_node("acme", "sre", kind="team")


def _check(r, allowed: set[int], what: str) -> None:
    assert r.status_code in allowed, f"{what}: {r.status_code} {r.text[:200]}"
    body = r.json()
    assert set(body["error"]) == {"code", "message", "details"}, what


async def test_malformed_bodies_are_clear_4xx(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as cs:
        await _tree(cs)
        for (method, path), (name, (content, statuses)) in [(w, b) for w in WRITES for b in BAD_BODIES.items()]:
            r = await cs.client.request(method, path, content=content,
                                        headers={**cs.auth(), "Content-Type": "application/json"})
            # endpoints with optional bodies may treat some as well-formed-but-wrong (422) too
            _check(r, statuses | ({422} if name in ("nan",) else set()), f"{name} → {method} {path}")
        r = await cs.client.post("/api/v1/orgs", content=b"", headers=cs.auth())
        _check(r, {400}, "empty body")
        assert r.json()["error"]["code"] == "empty_body"


async def test_wrong_types_are_422_naming_the_field(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as cs:
        await _tree(cs)
        cases = [
            ("POST", "/api/v1/orgs", {"org_id": 5, "name": "x"}),
            ("POST", "/api/v1/orgs", {"org_id": "x"}),
            ("POST", "/api/v1/orgs/acme/nodes", {"node_id": "t", "kind": "team", "parent_id": 3}),
            ("POST", "/api/v1/orgs/acme/nodes", {"node_id": ["t"], "kind": "team"}),
            ("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback", {"version": 1.5}),
            ("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback", {"version": True}),
            ("POST", "/api/v1/orgs/acme/tokens", {"expires_in_s": "soon"}),
            ("POST", "/api/v1/routing/lookup", {"identifiers": ["slack_channel_id"]}),
            ("PATCH", "/api/v1/orgs/acme/nodes/sre/config", {"llm": "openai"}),
            ("PATCH", "/api/v1/orgs/acme/nodes/sre/config", {"investigation": {"deadline_s": "300"}}),
            ("PATCH", "/api/v1/orgs/acme/nodes/sre/config", {"tools": ["k8s"]}),
            ("PATCH", "/api/v1/orgs/acme/nodes/sre/config", {"routing": {"services": [1, 2]}}),
            ("PATCH", "/api/v1/orgs/acme/nodes/sre/config", {"routing": {"services": ["x" * 300]}}),
            ("PATCH", "/api/v1/orgs/acme/nodes/sre/config", {"integrations": {"slack": ["token"]}}),
        ]
        for method, path, body in cases:
            r = await cs.call(method, path, json=body)
            _check(r, {422}, f"{method} {path} {body}")
            assert r.json()["error"]["details"], body
        r = await cs.call("PATCH", "/api/v1/orgs/acme/nodes/sre/config", json={"llm": {"provider": 1, "model": 2}})
        assert [e["path"] for e in r.json()["error"]["details"]["errors"]] == ["llm.provider", "llm.model"]
        raw = (await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/raw")).json()
        assert raw["version"] == 0  # nothing above was stored


async def test_bodies_over_one_mib_are_413(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as cs:
        await _tree(cs)
        blob = json.dumps({"custom": {"blob": "x" * (MiB + 10)}}).encode()
        r = await cs.client.patch("/api/v1/orgs/acme/nodes/sre/config", content=blob,
                                  headers={**cs.auth(), "Content-Type": "application/json"})
        _check(r, {413}, "declared length")

        async def chunks():
            for _ in range(20):
                yield b" " * (64 * 1024)  # valid JSON whitespace, but 1.25 MiB of it, no Content-Length
            yield b"{}"

        r = await cs.client.patch("/api/v1/orgs/acme/nodes/sre/config", content=chunks(),
                                  headers={**cs.auth(), "Content-Type": "application/json"})
        assert "content-length" not in {k.lower() for k in r.request.headers}
        _check(r, {413}, "chunked")
        # just under the limit is accepted
        ok = json.dumps({"custom": {"blob": "x" * (MiB - 100)}}).encode()
        r = await cs.client.patch("/api/v1/orgs/acme/nodes/sre/config", content=ok,
                                  headers={**cs.auth(), "Content-Type": "application/json"})
        assert r.status_code == 200, r.text[:200]


async def test_bad_paths_and_queries_are_4xx(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as cs:
        await _tree(cs)
        for path in ("/api/v1/orgs/ACME/nodes/sre/config/raw", "/api/v1/orgs/acme/nodes/a.b/config/raw",
                     "/api/v1/orgs/acme/nodes/" + "x" * 300 + "/config/raw",
                     "/api/v1/orgs/acme/nodes/sre/config/history?limit=abc",
                     "/api/v1/orgs/acme/nodes/sre/config/history?before=1e9999",
                     "/api/v1/orgs/acme/audit?since=yesterday",
                     "/api/v1/orgs/acme/nodes/nope/config/effective", "/api/v1/orgs/nope/nodes/x/config/effective",
                     "/api/v1/orgs/acme/nodes/sre/config/history?before=" + "9" * 30,
                     "/api/v1/orgs/acme/audit?cursor=" + "9" * 30,
                     "/api/v1/orgs/acme/audit?cursor=" + "9" * 19):    # 19 digits, over BIGINT
            r = await cs.call("GET", path)
            _check(r, {404, 422}, path)
        # A NUL anywhere in the URL is refused before any route runs (incidentfox.http_limits).
        for method, path in (("GET", "/api/v1/orgs/acme/audit?action=%00"), ("GET", "/api/v1/orgs?after=%00"),
                             ("GET", "/api/v1/orgs/acme/nodes?parent_id=%00"),
                             ("POST", "/api/v1/orgs/acme/tokens/tok_%00/revoke")):
            r = await cs.call(method, path)
            _check(r, {400}, path)
            assert r.json()["error"]["code"] == "malformed_request", path
        r = await cs.call("DELETE", "/api/v1/orgs/acme")
        _check(r, {405}, "method")
        _check(await cs.call("POST", "/api/v1/orgs/acme/tokens/" + "x" * 500 + "/revoke"), {404}, "long token id")
        for body in ({"version": 10**30}, {"version": 2**31}):
            r = await cs.call("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback", json=body)
            _check(r, {422}, str(body))
        r = await cs.call("POST", "/api/v1/orgs/acme/tokens", json={"label": "a\u0000b"})
        _check(r, {422}, "NUL label")


# Any JSON value at all, sent as a config patch or a node, never produces a 5xx.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["llm", "provider", "routing", "services", "integrations", "slack", "tools", "quotas",
                         "max_concurrent_runs", "locked_paths", "kind", "node_id", "x", ""]) | st.text(max_size=5),
        inner, max_size=5),
    max_leaves=20)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies=st.lists(JSON_VALUES, min_size=8, max_size=8))
def test_fuzzed_bodies_never_500(bodies):
    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'fuzz.db'}"
            await asyncio.to_thread(upgrade, url)
            async with config_harness(db_url=url, home=Path(tmp)) as cs:
                await _tree(cs)
                for body in bodies:
                    for method, path in (("PATCH", "/api/v1/orgs/acme/nodes/sre/config"),
                                         ("PATCH", "/api/v1/orgs/acme/nodes/acme/config"),
                                         ("POST", "/api/v1/orgs/acme/nodes"), ("POST", "/api/v1/routing/lookup")):
                        r = await cs.call(method, path, json=body)
                        assert r.status_code < 500, (method, path, body, r.text)

    asyncio.run(run())
