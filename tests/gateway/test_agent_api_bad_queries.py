"""Query values the database cannot take are a 4xx naming the problem, never a 500, on SQLite and
PostgreSQL alike: a NUL in a path or query (400 ``malformed_request``), a cursor hiding one or an
integer over BIGINT (422 ``invalid_cursor``), offsets past any list, and dates whose window falls
outside the calendar (422 ``invalid_window``)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from gateway_kit import ADMIN_TOKEN, RecordingRunner, seed_tenants, settings_for

from serve_apps.agent_api import create_agent_app


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cursor_of(parts: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


@pytest.fixture
async def api(db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    toks = await seed_tenants(db_url, settings)
    app = create_agent_app(settings=settings, runner=RecordingRunner())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        yield client, toks
    await app.state.dispatch_tasks.drain(10)
    await app.state.engine.dispose()


NUL_PATHS = [("GET", "/runs/ab%00c"), ("POST", "/runs/ab%00c/cancel"), ("GET", "/runs?status=%00"),
             ("GET", "/runs?org=acme%00"), ("GET", "/runs/ab%00c/events")]


@pytest.mark.parametrize(("method", "path"), NUL_PATHS)
async def test_a_nul_in_the_url_is_400(api, method, path):
    client, toks = api
    r = await client.request(method, path, headers=auth(toks["acme/payments"]))
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_request", r.text


async def test_a_nul_in_an_admin_filter_is_400_and_without_a_token_still_401(api):
    client, _ = api
    r = await client.get("/deliveries?outcome=%00", headers=auth(ADMIN_TOKEN))
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_request", r.text
    assert (await client.get("/deliveries?outcome=%00")).status_code == 401


@pytest.mark.parametrize("cursor", [cursor_of(["2026-01-01T00:00:00+00:00", "a\u0000"]),
                                    cursor_of(["0001-01-01T00:00:00+05:00", "run_x"]),
                                    cursor_of([2**63])])
async def test_a_cursor_the_database_cannot_compare_is_invalid(api, cursor):
    client, toks = api
    for path, token in (("/runs", toks["acme/payments"]), ("/deliveries", ADMIN_TOKEN)):
        r = await client.get(path, params={"cursor": cursor}, headers=auth(token))
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_cursor", (path, r.text)


@pytest.mark.parametrize("path", ["/runs?offset=99999999999999999999", "/runs?offset=9223372036854775808",
                                  "/deliveries?offset=9223372036854775808", "/runs/run_x/events?after=2147483648"])
async def test_an_offset_past_any_list_is_422(api, path):
    client, _ = api
    r = await client.get(path, headers=auth(ADMIN_TOKEN))
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", r.text


async def test_the_largest_offset_is_an_empty_page(api):
    client, _ = api
    r = await client.get("/runs", params={"offset": 2**31 - 1}, headers=auth(ADMIN_TOKEN))
    assert r.status_code == 200 and r.json()["items"] == [], r.text


@pytest.mark.parametrize("query", ["/runs?since=0001-01-01T00:00:00%2B05:00",
                                   "/runs?until=9999-12-31T23:00:00-05:00",
                                   "/stats?until=0001-01-01T00:00:00%2B01:00"])
async def test_a_date_outside_the_calendar_in_utc_is_an_invalid_window(api, query):
    client, toks = api
    r = await client.get(query, headers=auth(toks["acme/payments"]))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_window", r.text


async def test_a_window_ending_in_year_one_starts_at_the_calendars_start(api):
    client, toks = api
    r = await client.get("/stats", params={"until": "0001-01-02T00:00:00Z"}, headers=auth(toks["acme/payments"]))
    assert r.status_code == 200, r.text


# ---- bodies and headers -------------------------------------------------------------------------

@pytest.mark.parametrize("body", [{"text": "x", "links": ["\udfff"]}, {"text": "x", "services": ["a\ud800"]},
                                  {"text": "x", "identifiers": {"service": "\ud800"}},
                                  {"text": "x", "links": ["https://x.example/" + "a" * 2000]}],
                         ids=["link-surrogate", "service-surrogate", "identifier-surrogate", "link-too-long"])
async def test_a_run_request_the_list_could_not_answer_is_refused(api, body):
    client, toks = api
    r = await client.post("/runs", content=json.dumps(body).encode(),   # "\\ud800" escapes, as JSON allows
                          headers={**auth(toks["acme/payments"]), "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", r.text
    listed = await client.get("/runs", headers=auth(toks["acme/payments"]))
    assert listed.status_code == 200 and listed.json()["items"] == [], listed.text


async def test_a_cursor_hiding_a_lone_surrogate_is_invalid(api):
    client, toks = api
    cursor = cursor_of(["2026-01-01T00:00:00+00:00", "x\ud800"])
    r = await client.get("/runs", params={"cursor": cursor}, headers=auth(toks["acme/payments"]))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_cursor", r.text


async def test_an_idempotency_key_with_a_control_character_is_400(api):
    client, toks = api
    r = await client.post("/runs", json={"text": "x"}, headers={**auth(toks["acme/payments"]),
                                                                 "Idempotency-Key": "a\x00b"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_idempotency_key", r.text


async def test_long_idempotency_keys_differing_at_the_end_are_two_runs(api):
    client, toks = api
    runs = []
    for last in "ab":
        key = "k" * 199 + last
        for _ in range(2):      # each retried once: the retry is the same run
            r = await client.post("/runs", json={"text": f"incident {last}"},
                                  headers={**auth(toks["acme/payments"]), "Idempotency-Key": key})
            assert r.status_code == 202, r.text
            runs.append(r.json()["run_id"])
    assert runs[0] == runs[1] and runs[2] == runs[3] and runs[0] != runs[2]


async def test_an_idempotency_key_reruns_the_run_it_was_sent_for(api):
    client, toks = api
    first, second = [(await client.post("/runs", json={"text": f"q{i}"}, headers=auth(toks["acme/payments"])))
                     .json()["run_id"] for i in range(2)]
    headers = {**auth(toks["acme/payments"]), "Idempotency-Key": "retry-1"}
    a = (await client.post(f"/runs/{first}/rerun", headers=headers)).json()
    again = (await client.post(f"/runs/{first}/rerun", headers=headers)).json()
    b = (await client.post(f"/runs/{second}/rerun", headers=headers)).json()
    assert again == {**a, "duplicate": True}
    assert b["rerun_of"] == second and b["run_id"] not in (a["run_id"], first, second) and "duplicate" not in b
