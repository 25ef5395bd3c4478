"""The config service's reader (config_service.TeamConfigReader): typed, cached under the org epoch,
time-bounded with a typed error, secrets revealed in-process only; the static variant; the write
path refusing what the reader could not parse (the ``access`` lists)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any

import pytest

from config_service import (
    ConfigReadTimeout,
    StaticTeamConfigReader,
    TeamConfig,
    TeamConfigReader,
    team_config_loader,
)
from config_service.services.cache import EFFECTIVE_CACHE
from config_service.testing import config_harness
from incidentfox.errors import NotFound


@pytest.fixture
async def cs(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as harness:
        await harness.create_org("acme")
        await harness.create_node("acme", "payments", kind="team")
        await harness.create_node("acme", "search", kind="team")
        yield harness


def _reader(cs: Any, **kw: Any) -> TeamConfigReader:
    return TeamConfigReader(cs.app.state.session_factory, settings=cs.settings, **kw)


async def test_read_is_typed_revealed_and_sees_every_write(cs):
    assert (await cs.patch("acme", "payments", {
        "llm": {"provider": "anthropic", "model": "claude", "api_key": "sk-ant-SECRET"},
        "investigation": {"correlation_window_s": 0},
        "integrations": {"slack": {"bot_token": "xoxb-SECRET"}},
        "access": {"approvers": ["U012AB3CD"], "sandbox_users": ["S0614TZR7"]}})).status_code == 200
    reader = _reader(cs)
    cfg = await reader.read("acme", "payments")
    assert isinstance(cfg, TeamConfig) and (cfg.org_id, cfg.team_id) == ("acme", "payments")
    assert cfg.correlation_window_s == 0 and cfg.access.approvers == ["U012AB3CD"]
    assert cfg.llm.reveal_api_key() == "sk-ant-SECRET" and cfg.slack_bot_token == "xoxb-SECRET"
    assert "SECRET" not in repr(cfg) and "SECRET" not in repr(cfg.effective)
    # The HTTP face masks what the library face reveals.
    assert (await cs.effective("acme", "payments"))["llm"]["api_key"] == "***"

    hits = EFFECTIVE_CACHE.hits
    await reader.read("acme", "payments")
    assert EFFECTIVE_CACHE.hits == hits + 1            # served from the epoch-keyed cache
    assert (await cs.patch("acme", "payments", {"investigation": {"correlation_window_s": 120}})).status_code == 200
    assert (await reader.read("acme", "payments")).correlation_window_s == 120   # a write is seen at once
    doc = await reader.read_doc("acme", "payments")
    doc["investigation"]["correlation_window_s"] = 1   # callers own what they get
    assert (await reader.read("acme", "payments")).correlation_window_s == 120


async def test_team_ids_and_unknown_team(cs):
    reader = _reader(cs)
    assert await reader.team_ids() == [("acme", "payments"), ("acme", "search")]
    with pytest.raises(NotFound) as exc:
        await reader.read("acme", "nope")
    assert exc.value.code == "node_not_found"


async def test_a_read_that_hangs_is_the_typed_timeout():
    entered = asyncio.Event()

    @asynccontextmanager
    async def stuck_sessions():
        entered.set()
        await asyncio.Event().wait()   # a pool that never hands out a connection
        yield None

    reader = TeamConfigReader(stuck_sessions, timeout_s=0.05)
    with pytest.raises(ConfigReadTimeout) as exc:
        async with asyncio.timeout(60):   # a safety net only: were the read unbounded, fail, don't hang
            await reader.read("acme", "payments")
    assert entered.is_set() and exc.value.status == 503 and exc.value.code == "config_timeout"
    with pytest.raises(ValueError):
        TeamConfigReader(stuck_sessions, timeout_s=0)


async def test_access_lists_are_validated_at_write(cs):
    for bad, path in (({"access": {"approvers": ["not-an-id"]}}, "access.approvers.0"),
                      ({"access": {"responders": "U012AB3CD"}}, "access.responders"),
                      ({"access": "everyone"}, "access"),
                      ({"agents": {"k8s": {"max_turns": 3}}}, "agents"),
                      ({"llm": {"request_timeout_s": "60"}}, "llm.request_timeout_s")):
        r = await cs.patch("acme", "payments", bad)
        assert r.status_code == 422, (bad, r.text)
        body = r.json()["error"]
        assert body["code"] == "invalid_config" and path in [e["path"] for e in body["details"]["errors"]], body
        assert "not-an-id" not in r.text
    # An org can set the lists for every team below it; the effective config carries them.
    assert (await cs.patch("acme", "acme", {"access": {"responders": ["S0614TZR7"]}})).status_code == 200
    cfg = await _reader(cs).read("acme", "search")
    assert cfg.access.responders == ["S0614TZR7"] and cfg.access.approvers == []


async def test_static_reader_and_loader():
    static = StaticTeamConfigReader({"quotas": {"max_concurrent_runs": 2}},
                                    {"acme/b": {"deployment": {"mode": "dedicated"}}})
    a, b = await static.read("acme", "a"), await static.read("acme", "b")
    assert (a.max_concurrent_runs, a.deployment_mode) == (2, "shared")
    assert (b.max_concurrent_runs, b.deployment_mode) == (2, "dedicated")
    assert await static.team_ids() == [("acme", "b")]
    load = team_config_loader(sessions=None, static_team_configs={"acme/b": {"slack": {"default_channel": "C"}}})
    assert await load("acme", "b") == {"slack": {"default_channel": "C"}} and await load("acme", "a") == {}
    doc = await load("acme", "b")
    doc["slack"]["default_channel"] = "X"              # a caller's change never reaches the next read
    assert (await load("acme", "b"))["slack"]["default_channel"] == "C"


async def test_loader_reads_the_store(cs):
    assert (await cs.patch("acme", "search", {"quotas": {"max_concurrent_runs": 3}})).status_code == 200
    load = team_config_loader(sessions=cs.app.state.session_factory, settings=cs.settings, timeout_s=5)
    assert (await load("acme", "search"))["quotas"] == {"max_concurrent_runs": 3}


async def test_scheduler_skips_a_team_it_cannot_read(cs, monkeypatch):
    from actors.scheduler.teams import team_config_provider

    for team in ("payments", "search"):   # each posts in a channel of its own
        sched = [{"kind": "health_report", "cron": "0 9 * * 1", "channel": f"C-{team}"}]
        patch = {"routing": {"slack_channel_ids": [f"C-{team}"]}, "schedules": sched}
        assert (await cs.patch("acme", team, patch)).status_code == 200
    real = TeamConfigReader.read_doc

    async def flaky(self, org_id, team_id):
        if team_id == "payments":
            raise ConfigReadTimeout("stuck")
        return await real(self, org_id, team_id)

    monkeypatch.setattr(TeamConfigReader, "read_doc", flaky)
    provider = team_config_provider(cs.app.state.session_factory, cs.settings)
    assert [(o, t) for o, t, _ in await provider()] == [("acme", "search")]


def test_the_face_exports_what_it_lists():
    import config_service

    assert sorted(config_service.__all__) == sorted(config_service._EXPORTS)
    for name in config_service.__all__:
        assert getattr(config_service, name) is not None, name
    with pytest.raises(AttributeError):
        _ = config_service.get_effective_config   # internals are not part of the face
