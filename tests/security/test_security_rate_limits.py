"""Inbound rate limits on every /api and /webhooks app (issue 15): past a limit the caller gets 429
with Retry-After before the app runs, a throttled webhook is refused without being recorded (the
sender's retry is the delivery), and the default limits let a busy client through.

Limits here are tiny with a negligible refill (1 request per 1,000 s), so nothing depends on time.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gateway_kit import (
    ADMIN_TOKEN,
    RecordingRunner,
    make_core,
    seed_tenants,
    settings_for,
    signed,
    slack_event,
)
from sqlalchemy import func, select

from actors.sandbox.isolation import IsolationStatus
from actors.sandbox.store import SandboxStore
from incidentfox.runs.models import Delivery, Run
from incidentfox.runs.runner import NullRunner
from serve_apps.gateway import create_gateway_app

TIGHT = {"rate_limit_api_ip_per_s": 0.001, "rate_limit_api_ip_burst": 2,
         "rate_limit_webhooks_ip_per_s": 0.001, "rate_limit_webhooks_ip_burst": 2}


def client(app: Any, ip: str = "198.51.100.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url="http://t")


class NoBackend:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the sandbox backend was reached: {name}")


@pytest.fixture
async def tight_apps(sqlite_url, tmp_path, monkeypatch):
    from config_service.app import create_app
    from serve_apps.agent_api import create_agent_app
    from serve_apps.builder import _tools_asgi_app
    from serve_apps.reports_api import create_reports_app
    from serve_apps.sandbox.api import create_sandbox_app

    settings = settings_for(sqlite_url, tmp_path).model_copy(update=TIGHT)
    toks = await seed_tenants(sqlite_url, settings)
    for name, value in TIGHT.items():     # the tools catalogue reads the environment
        monkeypatch.setenv("INCIDENTFOX_" + name.upper(), str(value))
    sandbox_store = SandboxStore(sqlite_url)
    apps = {
        "config": create_app(settings),
        "agent": create_agent_app(settings=settings, runner=NullRunner()),
        "reports": create_reports_app(settings),
        "sandbox": create_sandbox_app(backend=NoBackend(), settings=settings, store=sandbox_store,
                                      scheduling_for=lambda cfg, org, team: {},
                                      isolation=lambda: IsolationStatus(mode="unavailable", reason="test")),
        "tools": _tools_asgi_app(),
    }
    yield apps, toks
    for app in apps.values():
        if hasattr(app.state, "engine"):
            await app.state.engine.dispose()
    await sandbox_store.close()


# app → (path, token key or None): a GET each answers without the limit (whatever its status).
PROBES = {"config": ("/api/v1/orgs", "admin"), "agent": ("/runs", "acme/payments"),
          "reports": ("/rep_missing", "acme/payments"), "sandbox": ("/sessions/sbx_missing", "acme/payments"),
          "tools": ("/catalog", None)}


@pytest.mark.parametrize("name", sorted(PROBES))
async def test_every_api_app_answers_429_past_its_limit(tight_apps, name):
    apps, toks = tight_apps
    path, who = PROBES[name]
    token = ADMIN_TOKEN if who == "admin" else toks.get(who or "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with client(apps[name]) as c, client(apps[name], "203.0.113.77") as other:
        first = [await c.get(path, headers=headers) for _ in range(2)]
        assert all(r.status_code != 429 for r in first), [r.text for r in first]
        refused = await c.get(path, headers=headers)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "rate_limited"
        assert refused.json()["error"]["details"]["scope"] == "ip"
        assert (await other.get(path, headers=headers)).status_code != 429


async def test_config_service_limits_api_paths_not_health(tight_apps):
    apps, _ = tight_apps
    async with client(apps["config"]) as c:
        assert [(await c.get("/health")).status_code for _ in range(5)] == [200] * 5
        assert (await c.get("/api/v1/orgs")).status_code == 401       # no token: counted, then refused
        assert (await c.get("/api/v1/orgs")).status_code == 401
        assert (await c.get("/api/v1/orgs")).status_code == 429       # a flood without tokens stops here


async def test_one_token_over_its_limit_leaves_other_tokens_alone(sqlite_url, tmp_path):
    from serve_apps.agent_api import create_agent_app

    settings = settings_for(sqlite_url, tmp_path).model_copy(update={
        "rate_limit_api_token_per_s": 0.001, "rate_limit_api_token_burst": 3})
    toks = await seed_tenants(sqlite_url, settings)
    app = create_agent_app(settings=settings, runner=NullRunner())
    a = {"Authorization": f"Bearer {toks['acme/payments']}"}
    b = {"Authorization": f"Bearer {toks['acme/search']}"}
    try:
        async with client(app) as c, client(app, "203.0.113.9") as elsewhere:
            assert [(await c.get("/runs", headers=a)).status_code for _ in range(4)] == [200, 200, 200, 429]
            assert (await elsewhere.get("/runs", headers=a)).status_code == 429     # the token, anywhere
            assert (await c.get("/runs", headers=b)).status_code == 200
            r = await c.get("/runs", headers=a)
            assert r.json()["error"]["details"]["scope"] == "token"
            assert toks["acme/payments"] not in r.text
    finally:
        await app.state.engine.dispose()


async def test_hundreds_of_calls_from_one_client_pass_under_the_defaults(sqlite_url, tmp_path):
    from config_service.app import create_app
    from serve_apps.agent_api import create_agent_app

    settings = settings_for(sqlite_url, tmp_path)
    toks = await seed_tenants(sqlite_url, settings)
    agent, config = create_agent_app(settings=settings, runner=NullRunner()), create_app(settings)
    team = {"Authorization": f"Bearer {toks['acme/payments']}"}
    admin = {"Authorization": f"Bearer {toks['acme']}"}
    try:
        async with client(agent) as a, client(config) as cfg:
            codes = [(await a.get("/runs", headers=team)).status_code for _ in range(300)]
            codes += [(await cfg.get("/api/v1/orgs/acme/nodes", headers=admin)).status_code for _ in range(300)]
        assert codes == [200] * 600
    finally:
        await agent.state.engine.dispose()
        await config.state.engine.dispose()


async def _count(core, model, *where):
    async with core.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model).where(*where))


async def test_a_throttled_webhook_is_refused_unrecorded_and_its_retry_is_the_delivery(
        sqlite_url, tmp_path, fixtures_dir):
    settings = settings_for(sqlite_url, tmp_path).model_copy(update=TIGHT)
    core = make_core(sqlite_url, runner=RecordingRunner())
    bodies = [slack_event(fixtures_dir, event_id=f"EvRATE{i}") for i in range(3)]
    try:
        async with client(create_gateway_app(core, settings=settings)) as gw:
            answers = [await gw.post("/slack/events", content=b, headers=signed("slack", b)) for b in bodies]
        assert [r.status_code for r in answers] == [200, 200, 429]
        assert int(answers[2].headers["retry-after"]) >= 1
        assert answers[2].json()["error"]["code"] == "rate_limited"
        await core.drain()
        # Nothing of the third was written or handed off.
        assert await _count(core, Delivery) == 2 and await _count(core, Run) == 2
        assert await _count(core, Delivery, Delivery.delivery_id.like("%EvRATE2%")) == 0
        assert len(core.runner.submitted) == 2
        assert core.counters.get("slack:rejected", 0) == 0
        # Slack retries it (here: a replica with room); that copy is the delivery, recorded once.
        retry = {**signed("slack", bodies[2]), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
        async with client(create_gateway_app(core, settings=settings)) as other_replica:
            r = await other_replica.post("/slack/events", content=bodies[2], headers=retry)
        assert r.status_code == 200 and "duplicate" not in r.json() and r.json()["run_id"]
        await core.drain()
        assert await _count(core, Delivery, Delivery.delivery_id.like("%EvRATE2%")) == 1
        assert len(core.runner.submitted) == 3
    finally:
        await core.drain()
        await core.engine.dispose()
