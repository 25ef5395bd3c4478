"""The router against a real config service (uvicorn on a free port, in a thread): epoch-keyed
caching, stale routing from the last good table while the service is down, unknown routes."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import uvicorn
from gateway_kit import ADMIN_TOKEN, seed_tenants, settings_for

from incidentfox.ports import free_port
from serve_apps.router import RoutingTable


class ConfigServer:
    def __init__(self, settings) -> None:
        from config_service.app import create_app

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "config service did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        assert not self.thread.is_alive()


@pytest.fixture
async def config_server(sqlite_url, tmp_path):
    settings = settings_for(sqlite_url, tmp_path)
    await seed_tenants(sqlite_url, settings)
    server = ConfigServer(settings)
    server.start()
    yield server, settings
    if server.thread.is_alive():
        server.stop()


# A config service on a loaded 2-core machine can take seconds to answer; the outage cases below
# get their answer from a refused connection, at once, whatever the timeout.
LOADED_MACHINE_TIMEOUT_S = 15.0


async def _claim(server, org, team, channels):
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        r = await c.patch(f"/api/v1/orgs/{org}/nodes/{team}/config",
                          json={"routing": {"slack_channel_ids": channels}})
        assert r.status_code == 200, r.text


async def test_routes_cache_on_epoch_and_follow_claim_changes(config_server):
    server, _ = config_server
    table = RoutingTable(config_url=server.url, admin_token=ADMIN_TOKEN, epoch_poll_s=0.0,
                         timeout_s=LOADED_MACHINE_TIMEOUT_S)
    r = await table.resolve({"slack_channel_id": "C111"})
    assert (r.found, r.org_id, r.team_id, r.matched_by, r.stale) == (True, "acme", "payments", "slack_channel_id",
                                                                    False)
    await table.resolve({"slack_channel_id": "C111"})
    assert table.stats.remote_lookups == 1 and table.stats.cache_hits == 1
    # Moving the claim bumps the epoch: the next answer is fetched again and follows the move.
    await _claim(server, "acme", "payments", [])
    await _claim(server, "acme", "search", ["C111"])
    r = await table.resolve({"slack_channel_id": "C111"})
    assert (r.org_id, r.team_id, r.stale) == ("acme", "search", False)
    assert table.stats.remote_lookups == 2
    await table.aclose()


async def test_stale_routing_keeps_working_when_the_config_service_is_down(config_server):
    server, _ = config_server
    table = RoutingTable(config_url=server.url, admin_token=ADMIN_TOKEN, epoch_poll_s=0.0, timeout_s=LOADED_MACHINE_TIMEOUT_S)
    fresh = await table.resolve({"slack_channel_id": "C111"})
    unknown = await table.resolve({"slack_channel_id": "CNOBODY"})
    assert fresh.found and not fresh.stale and not unknown.found and not unknown.stale
    server.stop()
    stale = await table.resolve({"slack_channel_id": "C111"})
    assert (stale.found, stale.org_id, stale.team_id, stale.stale) == (True, "acme", "payments", True)
    assert (await table.resolve({"slack_channel_id": "CNOBODY"})).stale is True
    never_seen = await table.resolve({"slack_channel_id": "CNEW"})
    assert (never_seen.found, never_seen.stale) == (False, True)
    assert table.stats.stale_answers >= 3 and table.stats.config_errors >= 1
    await table.aclose()


async def test_wrong_admin_token_counts_as_unavailable_not_unrouted(config_server):
    server, _ = config_server
    table = RoutingTable(config_url=server.url, admin_token="not-the-admin-token", epoch_poll_s=0.0,
                         timeout_s=LOADED_MACHINE_TIMEOUT_S)
    r = await table.resolve({"slack_channel_id": "C111"})
    assert (r.found, r.stale) == (False, True)
    await table.aclose()


async def test_gateway_with_real_router_records_stale_route(config_server, fixtures_dir, sqlite_url):
    """Through the gateway: routed while up, still routed (marked stale) after the service stops."""
    from gateway_kit import client_for, make_core, signed, slack_event

    from serve_apps.gateway import MemoResolver

    server, _ = config_server
    table = RoutingTable(config_url=server.url, admin_token=ADMIN_TOKEN, epoch_poll_s=0.0, timeout_s=LOADED_MACHINE_TIMEOUT_S)
    core = make_core(sqlite_url)
    core.resolve = MemoResolver(table.resolve, ttl_s=0)
    async with client_for(core) as client:
        body = slack_event(fixtures_dir, event_id="EvR1")
        r = await client.post("/slack/events", content=body, headers=signed("slack", body))
        assert r.json()["outcome"] == "accepted" and "route_stale" not in r.json()
        server.stop()
        body = slack_event(fixtures_dir, event_id="EvR2")
        r = await client.post("/slack/events", content=body, headers=signed("slack", body))
        assert r.status_code == 200 and r.json()["outcome"] == "accepted" and r.json()["route_stale"] is True
        body = slack_event(fixtures_dir, event_id="EvR3", channel="CUNSEEN")
        r = await client.post("/slack/events", content=body, headers=signed("slack", body))
        assert r.status_code == 200 and r.json()["outcome"] == "unrouted"
    await core.drain()
    from serve_apps import deliveries

    async with core.sessions() as s:
        rows = {d.delivery_id: d for d in await deliveries.list_deliveries(s)}
    assert rows["EvR2"].route_stale is True and rows["EvR2"].team_id == "payments"
    assert rows["EvR3"].outcome == "unrouted" and rows["EvR3"].route_stale is True
    await core.engine.dispose()
    await table.aclose()
    await asyncio.sleep(0)


async def test_org_secret_from_the_real_config_service(config_server, fixtures_dir, sqlite_url):
    """An org's own Slack signing secret, set over the config service API (encrypted at rest),
    verifies deliveries to the org's URL; the env secret verifies the shared URL only (issue 12)."""
    from gateway_kit import client_for, make_core, signed, slack_event

    from serve_apps.gateway import MemoResolver
    from serve_apps.webhook_secrets import WebhookSecrets, make_secret_loader

    server, settings = config_server
    own = "acme-own-slack-signing-secret"
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        r = await c.post("/api/v1/orgs/acme/webhook-secrets/slack", json={"secret": own})
        assert r.status_code == 201 and own not in r.text, r.text
    table = RoutingTable(config_url=server.url, admin_token=ADMIN_TOKEN, epoch_poll_s=0.0,
                         timeout_s=LOADED_MACHINE_TIMEOUT_S)
    core = make_core(sqlite_url)
    resolve = MemoResolver(table.resolve, ttl_s=0)
    core.resolve = resolve
    core.secrets = WebhookSecrets(load=make_secret_loader(core.sessions, settings=settings),
                                  env={"SLACK_SIGNING_SECRET": "env-secret"})
    async with client_for(core) as client:
        body = slack_event(fixtures_dir, event_id="EvO1")   # channel C111 → acme/payments
        assert (await client.post("/slack/events/o/acme", content=body,
                                  headers=signed("slack", body, secret="env-secret"))).status_code == 401
        r = await client.post("/slack/events/o/acme", content=body, headers=signed("slack", body, secret=own))
        assert r.status_code == 200 and r.json()["outcome"] == "accepted", r.text
        body = slack_event(fixtures_dir, event_id="EvO2", channel="CGLOBEX")   # shared URL, env secret
        r = await client.post("/slack/events", content=body, headers=signed("slack", body, secret="env-secret"))
        assert r.status_code == 200 and r.json()["outcome"] == "accepted", r.text
    await core.drain()
    await core.engine.dispose()
    await table.aclose()
