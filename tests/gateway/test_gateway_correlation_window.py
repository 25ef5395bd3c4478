"""The alert-storm window is each team's ``investigation.correlation_window_s``, read through the
config service's reader: a team with 0 never correlates, another with a window absorbs the storm,
and a team whose config cannot be read still gets every alert recorded (with the default window)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway_kit import StaticRoutes, client_for, load, make_core, signed
from sqlalchemy import func, select

from config_service import ConfigReadTimeout, StaticTeamConfigReader, TeamConfig
from incidentfox.runs.models import Run

ROUTES = {("alertmanager_receiver", "storm-on"): ("acme", "payments"),
          ("alertmanager_receiver", "storm-off"): ("acme", "search"),
          ("alertmanager_receiver", "storm-unreadable"): ("acme", "broken")}


class Configs(StaticTeamConfigReader):
    """Per-team windows; ``acme/broken``'s read times out like a stuck config store."""

    def __init__(self) -> None:
        super().__init__(per_team={"acme/payments": {"investigation": {"correlation_window_s": 600}},
                                   "acme/search": {"investigation": {"correlation_window_s": 0}}})
        self.reads: list[str] = []

    async def read(self, org_id: str, team_id: str) -> TeamConfig:
        self.reads.append(f"{org_id}/{team_id}")
        if team_id == "broken":
            raise ConfigReadTimeout("reading the config took too long")
        return await super().read(org_id, team_id)


@pytest.fixture
async def gw(db_url):
    core = make_core(db_url, routes=StaticRoutes(ROUTES))
    core.team_configs = Configs()
    async with client_for(core) as client:
        yield core, client
    await core.drain()
    await core.engine.dispose()


async def _storm(client: Any, fixtures_dir: Any, receiver: str, n: int = 3) -> list[tuple[str, str]]:
    """``n`` distinct alerts on one service for ``receiver``; their (outcome, run_id)."""
    out = []
    for i in range(n):
        data = json.loads(load(fixtures_dir, "alertmanager/webhook.v4.firing.json"))
        data["receiver"] = receiver
        data["groupKey"] = f"{{}}/{{}}:{{alertname=\"{receiver}-{i}\"}}"
        data["commonLabels"]["service"] = "checkout"
        for a in data["alerts"]:
            a["labels"]["service"] = "checkout"
            a["fingerprint"] = f"{receiver}-fp{i}"
        body = json.dumps(data).encode()
        r = await client.post("/alertmanager", content=body, headers=signed("alertmanager", body))
        assert r.status_code == 200, r.text
        out.append((r.json()["outcome"], r.json()["run_id"]))
    return out


async def _runs(core: Any, team_id: str) -> int:
    async with core.sessions() as s:
        return await s.scalar(select(func.count()).select_from(Run).where(Run.team_id == team_id))


async def test_each_team_gets_its_own_storm_window(gw, fixtures_dir):
    core, client = gw
    on = await _storm(client, fixtures_dir, "storm-on")
    off = await _storm(client, fixtures_dir, "storm-off")
    assert [o for o, _ in on] == ["accepted", "correlated", "correlated"] and len({r for _, r in on}) == 1
    assert [o for o, _ in off] == ["accepted"] * 3 and len({r for _, r in off}) == 3   # window 0: off
    assert await _runs(core, "payments") == 1 and await _runs(core, "search") == 3
    assert set(core.team_configs.reads) == {"acme/payments", "acme/search"}


async def test_an_unreadable_team_config_never_loses_an_alert(gw, fixtures_dir):
    core, client = gw
    outcomes = await _storm(client, fixtures_dir, "storm-unreadable", n=2)
    # Recorded either way; the default window (600 s) decides the second one.
    assert [o for o, _ in outcomes] == ["accepted", "correlated"]
    assert await _runs(core, "broken") == 1


async def test_unrouted_alerts_read_no_config(gw, fixtures_dir):
    core, client = gw
    core.team_configs.reads.clear()
    body = json.loads(load(fixtures_dir, "alertmanager/webhook.v4.firing.json"))
    body["receiver"] = "nobody-claims-this"
    raw = json.dumps(body).encode()
    r = await client.post("/alertmanager", content=raw, headers=signed("alertmanager", raw))
    assert r.json()["outcome"] == "unrouted" and core.team_configs.reads == []
