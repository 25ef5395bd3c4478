"""Test helpers for the gateway, router, agent API and `up` tests: test secrets, signed fixture
requests per source, a static routing table, a recording runner, and a gateway app over ASGI."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from incidentfox.contracts import ROUTING_KEYS, Trigger
from incidentfox.db import make_async_engine, session_factory
from serve_apps.deliveries import Route
from serve_apps.gateway import GatewayCore, create_gateway_app
from serve_apps.webhook_secrets import SecretLoader, WebhookSecrets
from serve_apps.webhooks import alertmanager, github, grafana, incidentio, pagerduty, slack

SECRETS = {
    "SLACK_SIGNING_SECRET": "slack-test-signing-secret",
    "GITHUB_WEBHOOK_SECRET": "github-test-secret",
    "PAGERDUTY_WEBHOOK_SECRET": "pagerduty-test-secret",
    "INCIDENTIO_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "ALERTMANAGER_WEBHOOK_TOKEN": "alertmanager-test-token",
    "GRAFANA_WEBHOOK_SECRET": "grafana-test-secret",
}


class StaticRoutes:
    """A routing table in memory: ``{(kind, value): (org, team)}``, first ROUTING_KEYS match wins."""

    def __init__(self, table: Mapping[tuple[str, str], tuple[str, str]] | None = None) -> None:
        self.table = dict(table or {})
        self.calls: list[dict[str, str]] = []

    async def __call__(self, identifiers: Mapping[str, str]) -> Route:
        self.calls.append(dict(identifiers))
        for key in ROUTING_KEYS:
            value = identifiers.get(key)
            if value and (key, value) in self.table:
                org, team = self.table[(key, value)]
                return Route(found=True, org_id=org, team_id=team, matched_by=key, matched_value=value)
        return Route(found=False)


class RecordingRunner:
    """Records what it is asked to do; ``fail`` makes submit raise (a dead executor)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.submitted: list[str] = []
        self.attached: list[tuple[str, str]] = []
        self.cancelled: list[str] = []
        self.event = asyncio.Event()

    async def submit(self, *, run_id: str, org_id: str, team_id: str) -> None:
        if self.fail:
            raise RuntimeError("executor unavailable")
        self.submitted.append(run_id)
        self.event.set()

    async def cancel(self, *, run_id: str) -> None:
        self.cancelled.append(run_id)

    async def attach(self, *, run_id: str, trigger: Trigger) -> None:
        self.attached.append((run_id, trigger.delivery_id))


DEFAULT_ROUTES = {
    ("slack_channel_id", "C111"): ("acme", "payments"),
    ("slack_channel_id", "G8PSS9T3V"): ("acme", "payments"),
    ("github_repo", "codertocat/hello-world"): ("acme", "payments"),
    ("pagerduty_service_id", "PA2P440"): ("acme", "payments"),
    ("alertmanager_receiver", "ops-zulip"): ("acme", "payments"),
    ("alertmanager_receiver", "debug webhook"): ("acme", "payments"),
    ("alertmanager_receiver", "Debug webhook"): ("acme", "payments"),
}


def make_core(db_url: str, *, routes: StaticRoutes | None = None, runner: Any = None,
              env: Mapping[str, str] | None = None, load: SecretLoader | None = None,
              clock: Any = None, sandbox: Any = None) -> GatewayCore:
    """A gateway over ``db_url``; ``load`` serves per-org/per-team secrets (None: those URLs 404)."""
    engine = make_async_engine(db_url)
    sessions = session_factory(engine)
    routes = routes if routes is not None else StaticRoutes(DEFAULT_ROUTES)
    core = GatewayCore(sessions=sessions, runner=runner if runner is not None else RecordingRunner(),
                       resolve=routes,
                       secrets=WebhookSecrets(load=load, env=SECRETS if env is None else env),
                       clock=clock or time.time, sandbox=sandbox)
    core.engine = engine  # type: ignore[attr-defined]  (tests dispose it)
    return core


def client_for(core: GatewayCore) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_gateway_app(core)),
                             base_url="http://gateway")


def load(fixtures: Path, rel: str) -> bytes:
    return (fixtures / rel).read_bytes()


def slack_event(fixtures: Path, *, event_id: str | None = None, channel: str | None = None) -> bytes:
    data = json.loads(load(fixtures, "slack/event_callback.app_mention.json"))
    if event_id:
        # A distinct message: its own event id and its own ts (a mention's ts roots its thread).
        data["event_id"] = event_id
        ts = f"{1595926230 + (int(uuid.uuid5(uuid.NAMESPACE_URL, event_id)) % 10**6)}.000100"
        data["event"]["ts"] = data["event"]["event_ts"] = ts
    if channel:
        data["event"]["channel"] = channel
    return json.dumps(data).encode()


def signed(source: str, body: bytes, *, secret: str | None = None, now: float | None = None,
           event: str = "", delivery: str | None = None) -> dict[str, str]:
    """Headers a real sender would attach to ``body`` (plus the content type)."""
    now = int(now if now is not None else time.time())
    delivery = delivery or uuid.uuid4().hex
    if source == "slack":
        h = slack.sign(body=body, secret=secret or SECRETS["SLACK_SIGNING_SECRET"], timestamp=now)
        ctype = "application/json" if body.lstrip().startswith(b"{") else "application/x-www-form-urlencoded"
        return {**h, "Content-Type": ctype}
    if source == "github":
        return {**github.sign(body=body, secret=secret or SECRETS["GITHUB_WEBHOOK_SECRET"]),
                "X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": "application/json"}
    if source == "pagerduty":
        return {**pagerduty.sign(body=body, secrets=[secret or SECRETS["PAGERDUTY_WEBHOOK_SECRET"]]),
                "X-Webhook-Id": delivery, "Content-Type": "application/json"}
    if source == "incidentio":
        return {**incidentio.sign(body=body, secret=secret or SECRETS["INCIDENTIO_WEBHOOK_SECRET"],
                                  msg_id=delivery, timestamp=now), "Content-Type": "application/json"}
    if source == "alertmanager":
        return {**alertmanager.sign(body=body, secret=secret or SECRETS["ALERTMANAGER_WEBHOOK_TOKEN"]),
                "Content-Type": "application/json"}
    if source == "grafana":
        return {**grafana.sign(body=body, secret=secret or SECRETS["GRAFANA_WEBHOOK_SECRET"]),
                "Content-Type": "application/json"}
    raise KeyError(source)


ADMIN_TOKEN = "admin-test-token-0123456789abcdef"


def settings_for(db_url: str, home: Path):
    """Settings for a test process: the given database, a known admin token, secrets under ``home``."""
    from pydantic import SecretStr

    from incidentfox.settings import Settings, ensure_local_secrets

    return ensure_local_secrets(Settings(database_url=db_url, home=home, admin_token=SecretStr(ADMIN_TOKEN)))


async def seed_approvers(db_url: str, home: Path, *, org: str, team: str, approvers: list[str]) -> None:
    """Create ``org``/``team`` (if absent) whose config lists ``access.approvers``."""
    await seed_team_config(db_url, home, org=org, team=team, patch={"access": {"approvers": approvers}})


async def seed_team_config(db_url: str, home: Path, *, org: str, team: str, patch: dict[str, Any]) -> None:
    """Create ``org``/``team`` (if absent) and patch its config with ``patch``."""
    from config_service.services import config as config_svc
    from config_service.services import nodes, orgs
    from incidentfox.errors import Conflict

    engine = make_async_engine(db_url)
    async with session_factory(engine)() as s:
        for create in (lambda: orgs.create_org(s, org_id=org, name=org, actor="test"),
                       lambda: nodes.create_node(s, org_id=org, node_id=team, parent_id=None, kind="team",
                                                 name=team, actor="test")):
            try:
                await create()
            except Conflict:
                await s.rollback()
        await config_svc.patch_config(s, settings=settings_for(db_url, home), org_id=org, node_id=team,
                                      actor="test", patch=patch)
        await s.commit()
    await engine.dispose()


async def seed_tenants(db_url: str, settings: Any) -> dict[str, str]:
    """Two orgs through the config service's own services: acme/{payments, search} and globex/ops,
    with routing claims; returns a token per principal."""
    from config_service.services import config as config_svc
    from config_service.services import nodes, orgs, tokens

    engine = make_async_engine(db_url)
    sessions = session_factory(engine)
    out: dict[str, str] = {}
    async with sessions() as s:
        for org_id, teams in (("acme", ("payments", "search")), ("globex", ("ops",))):
            await orgs.create_org(s, org_id=org_id, name=org_id.title(), actor="test")
            for team in teams:
                await nodes.create_node(s, org_id=org_id, node_id=team, parent_id=None, kind="team",
                                        name=team, actor="test")
                out[f"{org_id}/{team}"] = (await tokens.issue_token(
                    s, settings=settings, org_id=org_id, team_node_id=team, actor="test"))["token"]
            out[org_id] = (await tokens.issue_token(s, settings=settings, org_id=org_id, actor="test"))["token"]
        await config_svc.patch_config(s, settings=settings, org_id="acme", node_id="payments", actor="test",
                                      patch={"routing": {"slack_channel_ids": ["C111"],
                                                         "pagerduty_service_ids": ["PA2P440"]}})
        await config_svc.patch_config(s, settings=settings, org_id="globex", node_id="ops", actor="test",
                                      patch={"routing": {"slack_channel_ids": ["CGLOBEX"]}})
        await s.commit()
    await engine.dispose()
    return out
