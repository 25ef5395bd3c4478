"""Cheap rejection (issue 12, point 8): the APIs refuse a request without a well-formed bearer token
(401) or with a body over their cap (413) before reading its body, and every route that is not
declared public really needs a token.

Bodies are async generators that record whether they were consumed (httpx's ASGI transport pulls
the body only when the app calls ``receive``), so "never read" is observed, not assumed.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from gateway_kit import ADMIN_TOKEN, seed_tenants, settings_for

from config_service.api.deps import principal_dependency
from incidentfox.http_limits import (
    AGENT_MAX_BODY,
    REPORTS_MAX_BODY,
    RequestLimits,
    bearer_shape_error,
)
from incidentfox.runs.runner import NullRunner


class Body:
    """A streamed request body of ``chunks`` × ``size`` bytes that records how much was pulled."""

    def __init__(self, chunks: int = 4, size: int = 1024) -> None:
        self.chunks, self.size = chunks, size
        self.pulled = 0

    async def __aiter__(self):
        for _ in range(self.chunks):
            self.pulled += 1
            yield b"x" * self.size


@pytest.fixture
async def apps(sqlite_url, tmp_path):
    from config_service.app import create_app
    from serve_apps.agent_api import create_agent_app
    from serve_apps.reports_api import create_reports_app

    settings = settings_for(sqlite_url, tmp_path)
    toks = await seed_tenants(sqlite_url, settings)
    built = {"agent": create_agent_app(settings=settings, runner=NullRunner()),
             "reports": create_reports_app(settings),
             "config": create_app(settings)}
    clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
               for name, app in built.items()}
    yield clients, toks, built
    for name, app in built.items():
        await clients[name].aclose()
        await app.state.engine.dispose()


# (app, method, path): a route of each app that takes a body.
BODY_ROUTES = [("agent", "POST", "/run"), ("reports", "GET", "/rep_1"),
               ("config", "PATCH", "/api/v1/orgs/acme/nodes/payments/config")]
CAPS = {"agent": AGENT_MAX_BODY, "reports": REPORTS_MAX_BODY, "config": 1024 * 1024}


@pytest.mark.parametrize(("app", "method", "path"), BODY_ROUTES)
@pytest.mark.parametrize(("header", "reason"), [(None, "missing_token"), ("Token abc", "invalid_token"),
                                                ("Bearer ", "invalid_token"), ("Bearer a b", "invalid_token")])
async def test_no_well_formed_token_is_401_and_the_body_is_never_read(apps, app, method, path, header, reason):
    clients, _, _ = apps
    body = Body()
    headers = {"Authorization": header} if header is not None else {}
    r = await clients[app].request(method, path, content=body, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == reason and r.headers["www-authenticate"] == "Bearer"
    assert body.pulled == 0


@pytest.mark.parametrize(("app", "method", "path"), BODY_ROUTES)
async def test_declared_length_over_the_cap_is_413_naming_the_limit_unread(apps, app, method, path):
    clients, toks, _ = apps
    cap = CAPS[app]
    body = Body(chunks=1, size=cap + 1)
    r = await clients[app].request(method, path, content=body, headers={
        "Authorization": f"Bearer {toks['acme/payments']}", "Content-Length": str(cap + 1)})
    assert r.status_code == 413
    err = r.json()["error"]
    assert err["code"] == "payload_too_large" and err["details"] == {"max_bytes": cap}
    assert str(cap) in err["message"]
    assert body.pulled == 0


@pytest.mark.parametrize(("app", "method", "path"), BODY_ROUTES[::2])
async def test_streamed_body_over_the_cap_is_413_and_reading_stops_at_the_cap(apps, app, method, path):
    clients, _, _ = apps
    cap = CAPS[app]
    chunk = max(1, cap // 4)
    body = Body(chunks=40, size=chunk)            # 10× the cap, chunked: no Content-Length
    r = await clients[app].request(method, path, content=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 413
    assert r.json()["error"]["details"] == {"max_bytes": cap}
    assert body.pulled <= 5                       # refused on the chunk that crossed the cap


async def test_malformed_content_length_is_400(apps):
    clients, toks, _ = apps
    r = await clients["agent"].post("/run", content=b"{}", headers={
        "Authorization": f"Bearer {toks['acme/payments']}", "Content-Length": "12abc"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_request"


async def test_within_limits_the_app_still_authenticates_and_answers(apps):
    clients, toks, _ = apps
    r = await clients["agent"].post("/run", json={"text": "x"}, headers={"Authorization": "Bearer acme.payments.nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"   # the app's own check
    r = await clients["config"].get("/health")                                      # public: no token needed
    assert r.status_code == 200
    r = await clients["config"].get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {toks['acme']}"})
    assert r.status_code == 200


def _needs_principal(dependant) -> bool:
    stack = [dependant]
    while stack:
        dep = stack.pop()
        if dep.call is principal_dependency:
            return True
        stack.extend(dep.dependencies)
    return False


def _limits(app) -> RequestLimits:
    limits = [m for m in app.user_middleware if m.cls is RequestLimits]
    assert len(limits) == 1, "the app must install RequestLimits exactly once"
    return RequestLimits(app=None, **limits[0].kwargs)


@pytest.mark.parametrize("name", ["agent", "reports", "config"])
async def test_every_non_public_route_authenticates_and_every_public_one_does_not(apps, name):
    """The pre-check's public list and the routes' own authentication agree: a route that forgot
    ``PrincipalDep`` would be refused here (fail closed) but must also be caught by this test."""
    _, _, built = apps
    app = built[name]
    limits = _limits(app)
    assert limits.require_bearer
    routes = list(iter_route_contexts(app.routes))
    assert any(isinstance(r.original_route, APIRoute) for r in routes)
    for route in routes:
        public = route.path in limits.public_paths
        if not isinstance(route.original_route, APIRoute):   # FastAPI's own docs pages
            assert public, f"{name} {route.path} is a framework page outside the public list"
            continue
        assert public != _needs_principal(route.dependant), f"{name} {route.path}: public={public}"


async def test_a_route_that_reads_no_body_never_pulls_one(apps):
    clients, toks, _ = apps
    body = Body(chunks=40, size=REPORTS_MAX_BODY)
    r = await clients["reports"].request("GET", "/rep_1", content=body,
                                         headers={"Authorization": f"Bearer {toks['acme/payments']}"})
    assert r.status_code == 404 and body.pulled == 0


def test_bearer_shape_is_pure_and_strict():
    assert bearer_shape_error([(b"authorization", b"Bearer abc.def")]) is None
    assert bearer_shape_error([(b"Authorization", b"bearer abc")]) is None
    assert bearer_shape_error([]) == "missing_token"
    assert bearer_shape_error([(b"authorization", b"Bearer " + b"a" * 1025)]) == "invalid_token"
    assert bearer_shape_error([(b"authorization", b"Bearer \xff\xfe")]) == "invalid_token"
    assert bearer_shape_error([(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")]) == "invalid_token"
