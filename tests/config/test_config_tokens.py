"""Tokens and auth: the scope matrix (every token type × every endpoint class), lifecycle,
impersonation, and authorisation before body validation (403, not 422)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from config_service.db.models import ApiToken
from config_service.services.auth import authenticate
from config_service.testing import config_harness
from incidentfox.db import utcnow
from incidentfox.errors import Unauthorized


@pytest.fixture
async def cs(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as harness:
        await harness.create_org("acme")
        await harness.create_org("beta")
        await harness.create_node("acme", "eng", kind="unit")
        await harness.create_node("acme", "sre", kind="team", parent_id="eng")
        await harness.create_node("acme", "web", kind="team")
        yield harness


async def _tokens(cs) -> dict[str, str | None]:
    expired = (await cs.call("POST", "/api/v1/orgs/acme/teams/sre/tokens", json={"expires_in_s": 3600})).json()
    revoked = (await cs.call("POST", "/api/v1/orgs/acme/tokens", json={})).json()
    async with cs.app.state.session_factory() as s:  # age one token past its expiry (no sleeping)
        await s.execute(update(ApiToken).where(ApiToken.id == expired["token_id"])
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
        await s.commit()
    await cs.call("POST", f"/api/v1/orgs/acme/tokens/{revoked['token_id']}/revoke")
    expired, revoked = expired["token"], revoked["token"]
    return {
        "none": None,
        "garbage": "acme.sre.not-a-real-token",
        "expired": expired,
        "revoked": revoked,
        "global_admin": cs.admin_token,
        "org_admin": await cs.org_token("acme"),
        "other_org_admin": await cs.org_token("beta"),
        "team": await cs.team_token("acme", "sre"),
        "other_team": await cs.team_token("acme", "web"),
        "impersonation": await cs.impersonation_token("acme", "sre"),
    }


_ids = itertools.count()


def _requests(dummy_token_id: str) -> dict[str, list]:
    """Endpoint class → [(method, path, json body factory)]; bodies are valid so allowed calls are 2xx."""
    n = lambda: next(_ids)
    return {
        "admin_only": [
            ("POST", "/api/v1/orgs", lambda: {"org_id": f"org-{n()}", "name": "x"}),
            ("POST", "/api/v1/routing/lookup", lambda: {"identifiers": {"service": "checkout"}}),
            ("GET", "/api/v1/routing/epoch", None),
            ("GET", "/api/v1/routing/table", None),
            ("GET", "/api/v1/orgs", None),
            ("POST", "/api/v1/orgs/acme/teams/sre/impersonation-token", dict),
        ],
        "org_manage": [
            ("GET", "/api/v1/orgs/acme", None),
            ("POST", "/api/v1/orgs/acme/nodes", lambda: {"node_id": f"n-{n()}", "kind": "team"}),
            ("GET", "/api/v1/orgs/acme/nodes", None),
            ("PATCH", "/api/v1/orgs/acme/nodes/eng", lambda: {"name": f"Eng {n()}"}),
            ("PATCH", "/api/v1/orgs/acme/nodes/sre/config", lambda: {"tools": {f"t{n()}": True}}),
            ("GET", "/api/v1/orgs/acme/nodes/sre/config/raw", None),
            ("GET", "/api/v1/orgs/acme/nodes/sre/config/history", None),
            ("POST", "/api/v1/orgs/acme/nodes/sre/config/rollback", lambda: {"version": 0}),
            ("POST", "/api/v1/orgs/acme/tokens", dict),
            ("POST", "/api/v1/orgs/acme/teams/sre/tokens", dict),
            ("GET", "/api/v1/orgs/acme/tokens", None),
            ("POST", f"/api/v1/orgs/acme/tokens/{dummy_token_id}/revoke", None),
            ("GET", "/api/v1/orgs/acme/audit", None),
            ("GET", "/api/v1/orgs/acme/nodes/eng/config/effective", None),
        ],
        "team_read": [
            ("GET", "/api/v1/orgs/acme/nodes/sre/config/effective", None),
            ("GET", "/api/v1/orgs/acme/nodes/sre", None),
        ],
        "team_self": [("GET", "/api/v1/team/config", None)],
        "any_token": [("GET", "/api/v1/auth/whoami", None)],
    }


ALLOWED = {  # token type → endpoint classes it may call; everything else is 403 (or 401 for bad tokens)
    "global_admin": {"admin_only", "org_manage", "team_read", "any_token"},
    "org_admin": {"org_manage", "team_read", "any_token"},
    "other_org_admin": {"any_token"},
    "team": {"team_read", "team_self", "any_token"},
    "other_team": {"team_self", "any_token"},
    "impersonation": {"team_read", "team_self", "any_token"},
}
UNAUTHENTICATED = {"none", "garbage", "expired", "revoked"}


async def test_token_scope_matrix(cs):
    tokens = await _tokens(cs)
    dummy = (await cs.call("POST", "/api/v1/orgs/acme/teams/web/tokens", json={"label": "dummy"})).json()
    failures = []
    for (kind, token), (cls, reqs) in itertools.product(tokens.items(), _requests(dummy["token_id"]).items()):
        for method, path, body in reqs:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            r = await cs.client.request(method, path, headers=headers, json=body() if body else None)
            if kind in UNAUTHENTICATED:
                ok = r.status_code == 401 and r.json()["error"]["code"] in (
                    "missing_token", "invalid_token", "token_expired", "token_revoked")
            elif cls in ALLOWED[kind]:
                ok = 200 <= r.status_code < 300
            else:
                ok = r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
            if not ok:
                failures.append(f"{kind} × {cls}: {method} {path} → {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)


async def test_whoami_per_token_type(cs):
    tokens = await _tokens(cs)
    expect = {
        "global_admin": ("global_admin", None, None),
        "org_admin": ("org_admin", "acme", None),
        "team": ("team", "acme", "sre"),
        "impersonation": ("impersonation", "acme", "sre"),
    }
    for kind, (auth_kind, org, team) in expect.items():
        body = (await cs.call("GET", "/api/v1/auth/whoami", token=tokens[kind])).json()
        assert (body["auth_kind"], body["org_id"], body["team_node_id"]) == (auth_kind, org, team)
    codes = {}
    for kind in ("expired", "revoked"):
        r = await cs.call("GET", "/api/v1/auth/whoami", token=tokens[kind])
        codes[kind] = r.json()["error"]["code"]
    assert codes == {"expired": "token_expired", "revoked": "token_revoked"}
    for header in ("Basic abc", "Bearer", "Bearer    ", "token"):
        r = await cs.client.get("/api/v1/auth/whoami", headers={"Authorization": header})
        assert r.status_code == 401, header


async def test_issued_tokens_shape_storage_and_last_used(cs):
    r = await cs.call("POST", "/api/v1/orgs/acme/teams/sre/tokens", json={"label": "ci", "expires_in_s": 600})
    assert r.status_code == 201
    body = r.json()
    assert set(body) >= {"token", "token_id", "expires_at"} and body["expires_at"]
    org, team, random = body["token"].split(".")
    assert (org, team) == ("acme", "sre") and len(random) >= 43  # ≥ 256 bits, base64url
    org_tok = await cs.org_token("acme")
    assert org_tok.startswith("acme.") and org_tok.count(".") == 1
    for bad in ({"expires_in_s": 0}, {"expires_in_s": "10"}, {"label": 5}, {"unknown": 1}):
        r = await cs.call("POST", "/api/v1/orgs/acme/tokens", json=bad)
        assert r.status_code == 422, bad
    r = await cs.call("POST", "/api/v1/orgs/acme/teams/eng/tokens", json={})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "not_a_team")
    r = await cs.call("POST", "/api/v1/orgs/acme/teams/nope/tokens", json={})
    assert r.status_code == 404

    listing = (await cs.call("GET", "/api/v1/orgs/acme/tokens")).json()["items"]
    mine = next(t for t in listing if t["token_id"] == body["token_id"])
    assert mine["last_used_at"] is None and "token" not in mine and "token_hash" not in mine
    assert (await cs.call("GET", "/api/v1/team/config", token=body["token"])).status_code == 200
    listing = (await cs.call("GET", "/api/v1/orgs/acme/tokens")).json()["items"]
    assert next(t for t in listing if t["token_id"] == body["token_id"])["last_used_at"] is not None

    # only a keyed hash is stored: the token appears in no column
    async with cs.app.state.session_factory() as s:
        rows = (await s.execute(text("SELECT * FROM api_tokens"))).all()
    assert rows and all(body["token"] not in str(row) and random not in str(row) for row in rows)

    # a token is bound to the ids inside it: the right hash with the wrong prefix is refused
    tampered = f"beta.sre.{random}"
    assert (await cs.call("GET", "/api/v1/auth/whoami", token=tampered)).status_code == 401


async def test_authenticate_service_expiry_and_revocation(cs):
    token_body = (await cs.call("POST", "/api/v1/orgs/acme/tokens", json={"expires_in_s": 60})).json()
    async with cs.app.state.session_factory() as s:
        p = await authenticate(s, token=token_body["token"], settings=cs.settings)
        assert (p.auth_kind, p.org_id, p.token_id) == ("org_admin", "acme", token_body["token_id"])
        with pytest.raises(Unauthorized) as exc:
            await authenticate(s, token=token_body["token"], settings=cs.settings,
                               now=utcnow() + timedelta(seconds=61))
        assert exc.value.code == "token_expired"
        for bad in ("", None, "x" * 5000, "acme", "a.b.c.d", "imp_v1.x.y"):
            with pytest.raises(Unauthorized):
                await authenticate(s, token=bad, settings=cs.settings)
    await cs.call("POST", f"/api/v1/orgs/acme/tokens/{token_body['token_id']}/revoke")
    async with cs.app.state.session_factory() as s:
        with pytest.raises(Unauthorized) as exc:
            await authenticate(s, token=token_body["token"], settings=cs.settings)
        assert exc.value.code == "token_revoked"
    r = await cs.call("POST", "/api/v1/orgs/beta/tokens/" + token_body["token_id"] + "/revoke")
    assert r.status_code == 404  # another org's token id is not found, not revoked


async def test_impersonation_tokens(cs):
    r = await cs.call("POST", "/api/v1/orgs/acme/teams/sre/impersonation-token", json={"ttl_s": 120})
    assert r.status_code == 201
    body = r.json()
    assert body["token"].startswith("imp_v1.") and body["expires_at"]
    who = (await cs.call("GET", "/api/v1/auth/whoami", token=body["token"])).json()
    assert (who["auth_kind"], who["org_id"], who["team_node_id"]) == ("impersonation", "acme", "sre")
    cfg = await cs.call("GET", "/api/v1/team/config", token=body["token"])
    assert cfg.status_code == 200 and cfg.json()["node_id"] == "sre"
    # a team-scoped token cannot manage anything
    assert (await cs.patch("acme", "sre", {"tools": {"x": True}}, token=body["token"])).status_code == 403
    for bad, code in (({"ttl_s": 901}, "validation_error"), ({"ttl_s": 0}, "validation_error")):
        r = await cs.call("POST", "/api/v1/orgs/acme/teams/sre/impersonation-token", json=bad)
        assert (r.status_code, r.json()["error"]["code"]) == (422, code)
    r = await cs.call("POST", "/api/v1/orgs/acme/teams/eng/impersonation-token", json={})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "not_a_team")
    # audience is checked: a token minted for another audience is refused here
    other = (await cs.call("POST", "/api/v1/orgs/acme/teams/sre/impersonation-token",
                           json={"audience": "sandbox"})).json()["token"]
    assert (await cs.call("GET", "/api/v1/auth/whoami", token=other)).status_code == 401
    async with cs.app.state.session_factory() as s:
        p = await authenticate(s, token=other, settings=cs.settings, audience="sandbox")
        assert p.auth_kind == "impersonation"
        with pytest.raises(Unauthorized) as exc:
            await authenticate(s, token=body["token"], settings=cs.settings, now=utcnow() + timedelta(seconds=121))
        assert exc.value.code == "token_expired"
    # another deployment's pepper signs tokens this one refuses
    async with config_harness(db_url=cs.settings.database_url, home=cs.settings.home) as foreign:
        forged = await foreign.impersonation_token("acme", "sre")
    assert (await cs.call("GET", "/api/v1/auth/whoami", token=forged)).status_code == 401
    audit = (await cs.call("GET", "/api/v1/orgs/acme/audit", params={"action": "token.impersonate"})).json()
    assert len(audit["items"]) >= 3 and body["token"] not in str(audit)


async def test_forbidden_writes_are_403_before_body_validation(cs):
    team = await cs.team_token("acme", "sre")
    other_admin = await cs.org_token("beta")
    cases = [
        (team, "PATCH", "/api/v1/orgs/acme/nodes/sre/config", b"{not json"),
        (team, "PATCH", "/api/v1/orgs/acme/nodes/sre/config", b'{"llm": {"provider": 42}}'),
        (team, "POST", "/api/v1/orgs/acme/nodes", b'{"node_id": "BAD_ID", "kind": "planet"}'),
        (team, "POST", "/api/v1/orgs/acme/nodes/sre/config/rollback", b'{"version": "x"}'),
        (other_admin, "POST", "/api/v1/orgs/acme/tokens", b'{"expires_in_s": -5}'),
        (other_admin, "PATCH", "/api/v1/orgs/acme/nodes/sre/config", b"[1, 2"),
        (other_admin, "POST", "/api/v1/orgs", b'{"org_id": "UPPER"}'),
        (team, "POST", "/api/v1/routing/lookup", b'{"identifiers": 5}'),
        (team, "GET", "/api/v1/orgs/acme/nodes/sre/config/history?limit=abc", None),
        (team, "GET", "/api/v1/orgs/acme/audit?limit=-1", None),
    ]
    for token, method, path, content in cases:
        r = await cs.client.request(method, path, content=content, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden"), (method, path, r.text)
        r = await cs.client.request(method, path, content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == 401, (method, path, r.text)
