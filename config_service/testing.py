"""In-process harness for tests (ours and other components'): the config app behind an
``httpx.AsyncClient`` over ``ASGITransport``, on a migrated database, with helpers to build a tree.

    async with config_harness(db_url=db_url, home=tmp_path) as cs:
        await cs.create_org("acme")
        await cs.create_node("acme", "payments", kind="team")
        token = await cs.team_token("acme", "payments")
        r = await cs.client.get("/api/v1/team/config", headers=cs.auth(token))
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import SecretStr

from config_service.app import create_app
from incidentfox.integration_probe import IntegrationProber
from incidentfox.settings import Settings


def make_settings(*, db_url: str, home: Path, admin_token: str | None = None, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home, "database_url": db_url,
        "admin_token": SecretStr(admin_token or "admin-" + secrets.token_hex(16)),
        "token_pepper": SecretStr(secrets.token_hex(32)),
        "secret_key": SecretStr(Fernet.generate_key().decode()),
    }
    return Settings(**{**values, **extra})


@dataclass
class ConfigHarness:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    @property
    def admin_token(self) -> str:
        return self.settings.admin_token.get_secret_value()

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}

    async def call(self, method: str, path: str, *, token: str | None = None, **kw: Any) -> httpx.Response:
        return await self.client.request(method, path, headers=self.auth(token), **kw)

    async def _ok(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        r = await self.call(method, path, **kw)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    async def create_org(self, org_id: str, name: str | None = None) -> dict[str, Any]:
        return await self._ok("POST", "/api/v1/orgs", json={"org_id": org_id, "name": name or org_id})

    async def create_node(self, org_id: str, node_id: str, *, kind: str = "team",
                          parent_id: str | None = None) -> dict[str, Any]:
        return await self._ok("POST", f"/api/v1/orgs/{org_id}/nodes",
                              json={"node_id": node_id, "kind": kind, "parent_id": parent_id})

    async def patch(self, org_id: str, node_id: str, patch: dict[str, Any], *,
                    token: str | None = None) -> httpx.Response:
        return await self.call("PATCH", f"/api/v1/orgs/{org_id}/nodes/{node_id}/config", json=patch, token=token)

    async def effective(self, org_id: str, node_id: str, *, token: str | None = None) -> dict[str, Any]:
        return (await self._ok("GET", f"/api/v1/orgs/{org_id}/nodes/{node_id}/config/effective",
                               token=token))["config"]

    async def org_token(self, org_id: str, **body: Any) -> str:
        return (await self._ok("POST", f"/api/v1/orgs/{org_id}/tokens", json=body))["token"]

    async def team_token(self, org_id: str, team_id: str, **body: Any) -> str:
        return (await self._ok("POST", f"/api/v1/orgs/{org_id}/teams/{team_id}/tokens", json=body))["token"]

    async def impersonation_token(self, org_id: str, team_id: str, **body: Any) -> str:
        return (await self._ok("POST", f"/api/v1/orgs/{org_id}/teams/{team_id}/impersonation-token",
                               json=body))["token"]


@asynccontextmanager
async def config_harness(*, db_url: str | None = None, home: Path | None = None, settings: Settings | None = None,
                         integration_prober: IntegrationProber | None = None,
                         **settings_extra: Any) -> AsyncIterator[ConfigHarness]:
    """The app on ``db_url`` (already migrated, e.g. the ``db_url`` pytest fixture), or on explicit
    ``settings`` (e.g. a second "replica" sharing another harness's database and keys)."""
    if settings is None:
        assert db_url is not None and home is not None, "pass db_url and home, or settings"
        settings = make_settings(db_url=db_url, home=home, **settings_extra)
    app = create_app(settings, integration_prober=integration_prober)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://config") as client:
            yield ConfigHarness(app=app, client=client, settings=settings)
    finally:
        await app.state.engine.dispose()
