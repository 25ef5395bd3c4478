"""The agent API's lists on the one envelope: ``GET /runs`` and ``GET /deliveries`` answer
``{items, next_cursor}`` beside their older keys (``runs``, ``deliveries``), walk over several
pages with ``?limit=&cursor=`` (ties on ``created_at`` included) without repeating or losing an
item, refuse a bad cursor with 422 ``invalid_cursor``, and keep ``offset``. ``POST /runs`` is the
canonical start path; ``POST /run`` answers the same."""

from __future__ import annotations

import httpx
import pytest
from gateway_kit import ADMIN_TOKEN, RecordingRunner, seed_tenants, settings_for
from sqlalchemy import update

from incidentfox.db import utcnow
from incidentfox.runs.models import Run
from serve_apps.agent_api import create_agent_app


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    toks = await seed_tenants(db_url, settings)
    app = create_agent_app(settings=settings, runner=RecordingRunner())   # runs stay queued
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        yield app, client, toks
    await app.state.dispatch_tasks.drain(10)
    await app.state.engine.dispose()


async def walk(client, path: str, token: str, *, limit: int, legacy_key: str, **params) -> list[dict]:
    items, cursor, pages = [], None, 0
    while True:
        r = await client.get(path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})},
                             headers=auth(token))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body[legacy_key] == body["items"] and len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert pages < 50


async def test_runs_and_deliveries_page_through_everything_once(api):
    app, client, toks = api
    started = []
    for i in range(7):
        path = "/runs" if i % 2 else "/run"          # the canonical path and its older alias
        r = await client.post(path, json={"text": f"question {i}"}, headers=auth(toks["acme/payments"]))
        assert r.status_code == 202 and set(r.json()) == {"run_id"}, r.text
        started.append(r.json()["run_id"])
    async with app.state.session_factory() as s:       # ties on created_at: the id must order them
        await s.execute(update(Run).where(Run.id.in_(started[:4])).values(created_at=utcnow()))
        await s.commit()

    whole = (await client.get("/runs", params={"limit": 500}, headers=auth(toks["acme/payments"]))).json()
    assert whole["next_cursor"] is None and {r["run_id"] for r in whole["runs"]} == set(started)
    for limit in (1, 2, 3):
        paged = await walk(client, "/runs", toks["acme/payments"], limit=limit, legacy_key="runs")
        assert [r["run_id"] for r in paged] == [r["run_id"] for r in whole["items"]]
    # a team token's cursor never widens its view
    assert await walk(client, "/runs", toks["acme/search"], limit=2, legacy_key="runs") == []
    offset = (await client.get("/runs", params={"limit": 2, "offset": 3}, headers=auth(toks["acme"]))).json()
    assert [r["run_id"] for r in offset["runs"]] == [r["run_id"] for r in whole["items"][3:5]]

    deliveries = await walk(client, "/deliveries", ADMIN_TOKEN, limit=3, legacy_key="deliveries")
    assert sorted(d["run_id"] for d in deliveries) == sorted(started)
    assert len({d["id"] for d in deliveries}) == 7
    ids = [d["id"] for d in deliveries]
    assert ids == sorted(ids, reverse=True)  # newest first


@pytest.mark.parametrize("path", ["/runs", "/deliveries"])
async def test_a_bad_cursor_is_named(api, path):
    _, client, _ = api
    for bad in ("not-a-cursor!", "e30", "WyJ4Il0"):      # junk, {}, ["x"]
        r = await client.get(path, params={"cursor": bad}, headers=auth(ADMIN_TOKEN))
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_cursor", (bad, r.text)
    assert (await client.get(path, params={"limit": 0}, headers=auth(ADMIN_TOKEN))).status_code == 422


async def test_refused_and_empty_answers_keep_the_envelope(api):
    _, client, toks = api
    sneaky = (await client.get("/runs", params={"org": "globex"}, headers=auth(toks["acme/payments"]))).json()
    assert sneaky == {"items": [], "next_cursor": None, "runs": []}
    assert (await client.get("/runs", params={"cursor": "e30"})).status_code == 401   # token before cursor
