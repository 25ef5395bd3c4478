"""The platform's /health (the config app at "/") says whether sandbox Bash can be isolated, and why not."""

from __future__ import annotations

import httpx

from config_service.app import create_app
from incidentfox.settings import Settings
from serve_apps import builder


async def test_platform_health_reports_sandbox_isolation(sqlite_url, tmp_path):
    app = create_app(Settings(database_url=sqlite_url, home=tmp_path),
                     health_checks={"sandbox": builder._sandbox_health})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        body = (await client.get("/health")).json()
    await app.state.engine.dispose()
    assert body["status"] == "ok" and body["database"] == "ok"
    sandbox = body["sandbox"]
    assert set(sandbox) == {"available", "mode", "reason"}
    assert sandbox["mode"] in ("bwrap", "rlimit_only", "unavailable")
    if not sandbox["available"]:
        assert sandbox["reason"], "an unavailable sandbox must say why"


async def test_failing_check_is_reported_not_raised(sqlite_url, tmp_path):
    async def broken() -> dict:
        raise OSError("probe failed")

    app = create_app(Settings(database_url=sqlite_url, home=tmp_path), health_checks={"sandbox": broken})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.get("/health")
    await app.state.engine.dispose()
    assert r.status_code == 200 and r.json()["sandbox"] == {"available": False,
                                                            "reason": "health check failed: OSError"}
