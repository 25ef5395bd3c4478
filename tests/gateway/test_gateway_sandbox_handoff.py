"""Sandbox traffic through the gateway's intake: recorded once, decided in the intake transaction and
handed to a SandboxRunner after the commit, like runs to their Runner; a lost or failed hand-off is
swept and re-driven. A recording sandbox runner stands in for the sandbox side (no sandbox needed
here: tests/sandbox/test_sandbox_slack.py drives the real one). SQLite (group commit) and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlencode

import pytest
from gateway_kit import DEFAULT_ROUTES, StaticRoutes, client_for, make_core, signed
from sqlalchemy import select

from actors.sandbox.store import SandboxStore
from incidentfox.runs.models import Delivery, Run
from serve_apps import deliveries

ROUTES = {**DEFAULT_ROUTES, ("slack_channel_id", "CGLOBEX"): ("globex", "ops")}
THREAD = "1700000000.000001"


class RecordingSandbox:
    """Records the delivery ids handed off; ``fail`` makes submit raise (the sandbox side is down)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.submitted: list[int] = []

    async def submit(self, *, delivery_pk: int) -> None:
        if self.fail:
            raise ConnectionError("sandbox-slack actor unreachable")
        self.submitted.append(delivery_pk)


@pytest.fixture
async def gw(db_url):
    sandbox = RecordingSandbox()
    core = make_core(db_url, routes=StaticRoutes(ROUTES), sandbox=sandbox)
    async with client_for(core) as client:
        yield core, client, sandbox
    await core.drain()
    await core.engine.dispose()


def command(text: str, *, trigger_id: str, channel: str = "C111") -> bytes:
    return urlencode({"token": "x", "team_id": "T111", "channel_id": channel, "user_id": "W111",
                      "command": "/incidentfox", "text": text, "trigger_id": trigger_id,
                      "response_url": "https://hooks.slack.com/commands/T111/1/x"}).encode()


def in_thread(text: str, *, event_id: str, channel: str = "C111", mention: bool = False) -> bytes:
    return json.dumps({
        "type": "event_callback", "event_id": event_id, "team_id": "T111", "api_app_id": "A111",
        "event_time": int(time.time()), "authorizations": [{"user_id": "UBOT", "is_bot": True}],
        "event": {"type": "app_mention" if mention else "message", "channel": channel, "user": "W111",
                  "text": ("<@UBOT> " if mention else "") + text, "ts": f"{time.time():.6f}",
                  "thread_ts": THREAD},
    }).encode()


async def _rows(core, model):
    async with core.sessions() as s:
        return list((await s.scalars(select(model).order_by(model.id if model is Delivery else model.created_at)))
                    .all())


async def _open_session(db_url: str, *, org: str = "acme", team: str = "payments", channel: str = "C111") -> str:
    store = SandboxStore(db_url)
    try:
        row = await store.create_session(session_id="sbx_thread0001", org_id=org, team_id=team, workspace="/tmp/x",
                                         ttl_s=600, uid_base=400_000, uid_count=1000,
                                         slack_channel=channel, slack_thread_ts=THREAD)
        return row.id
    finally:
        await store.close()


async def test_sandbox_command_is_recorded_once_and_handed_off_after_the_commit(gw):
    core, c, sandbox = gw
    body = command("sandbox what is in the workspace?", trigger_id="1.2.sbx")
    r = await c.post("/slack/commands", content=body, headers=signed("slack", body))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["response_type"] == "ephemeral" and "Sandbox session opened for: what is in the workspace?" \
        in data["text"]
    assert (data["ok"], data["run_id"], data["outcome"]) == (True, None, "sandbox_opened")
    retry = await c.post("/slack/commands", content=body, headers=signed("slack", body))
    assert retry.json()["duplicate"] is True and retry.json()["outcome"] == "sandbox_opened"
    await core.drain()
    (row,) = await _rows(core, Delivery)
    assert sandbox.submitted == [row.id]   # once: the retry started nothing
    assert (row.outcome, row.org_id, row.team_id, row.run_id) == ("sandbox_opened", "acme", "payments", None)
    assert row.dispatched_at is not None and row.dispatch_attempts == 1
    assert await _rows(core, Run) == [] and core.runner.submitted == []


async def test_unrouted_sandbox_command_is_recorded_unrouted_and_not_handed_off(gw):
    core, c, sandbox = gw
    body = command("sandbox hi", trigger_id="1.3.nobody", channel="CNOBODY")
    r = await c.post("/slack/commands", content=body, headers=signed("slack", body))
    assert r.json()["outcome"] == "unrouted" and "No team" in r.json()["text"]
    await core.drain()
    assert sandbox.submitted == []


@pytest.mark.parametrize("mention", [False, True], ids=["reply", "mention-in-thread"])
async def test_message_in_an_active_sandbox_thread_continues_that_session(gw, db_url, mention):
    core, c, sandbox = gw
    session_id = await _open_session(db_url)   # acme/payments' session, in acme/payments' channel
    body = in_thread("and /tmp?", event_id="EvSbx1", mention=mention)
    r = await c.post("/slack/events", content=body, headers=signed("slack", body))
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "run_id": None, "outcome": "sandbox_continued", "session_id": session_id}
    retry = await c.post("/slack/events", content=body, headers=signed("slack", body))
    assert retry.json() == {"ok": True, "run_id": None, "outcome": "sandbox_continued",
                            "session_id": session_id, "duplicate": True}
    await core.drain()
    (row,) = await _rows(core, Delivery)
    assert (row.org_id, row.team_id) == ("acme", "payments") and sandbox.submitted == [row.id]
    assert await _rows(core, Run) == []


@pytest.mark.parametrize(("team", "channel"), [("payments", "CGLOBEX"), ("search", "C111")],
                         ids=["another-org", "sibling-team"])
async def test_a_thread_routed_to_another_team_never_reaches_the_session(gw, db_url, team, channel):
    """The channel is now claimed by globex/ops, or by acme/payments while the session is acme/search's
    (same org): a reply there is no turn of the session, a mention there starts nothing in its thread."""
    core, c, sandbox = gw
    await _open_session(db_url, org="acme", team=team, channel=channel)
    body = in_thread("hello?", event_id="EvOtherTeam", channel=channel)
    r = await c.post("/slack/events", content=body, headers=signed("slack", body))
    assert r.json()["outcome"] == "unmatched" and "session_id" not in r.json()
    body = in_thread("hello?", event_id="EvOtherTeamMention", channel=channel, mention=True)
    r = await c.post("/slack/events", content=body, headers=signed("slack", body))
    assert r.json()["outcome"] == "rejected" and "session_id" not in r.json() and r.json()["run_id"] is None
    await core.drain()
    assert sandbox.submitted == [] and await _rows(core, Run) == []


async def test_a_failed_hand_off_is_swept_and_redriven_only_where_the_sandbox_side_is_known(db_url):
    sandbox = RecordingSandbox(fail=True)
    core = make_core(db_url, routes=StaticRoutes(ROUTES), sandbox=sandbox)
    try:
        async with client_for(core) as c:
            for n in range(2):
                body = command(f"sandbox q{n}", trigger_id=f"1.4.{n}")
                assert (await c.post("/slack/commands", content=body, headers=signed("slack", body))).status_code == 200
        await core.drain()
        first, second = await _rows(core, Delivery)
        assert first.dispatched_at is None and "sandbox-slack actor unreachable" in first.dispatch_error
        # The agent API sweeps and re-drives without a sandbox runner: it leaves them alone.
        assert await deliveries.sweep(core.sessions, core.runner, grace_s=0) == []
        assert await deliveries.redrive(core.sessions, core.runner) == []
        # The sandbox side is back: the gateway's sweep hands the first off, an operator the second.
        sandbox.fail = False
        assert await deliveries.sweep(core.sessions, core.runner, sandbox=sandbox, grace_s=0, limit=1) == [first.id]
        assert await deliveries.redrive(core.sessions, core.runner, sandbox=sandbox,
                                        delivery_pks=[second.id]) == [second.id]
        assert sandbox.submitted == [first.id, second.id]
        async with core.sessions() as s:
            assert await deliveries.list_deliveries(s, failed=True) == []
    finally:
        await core.drain()
        await core.engine.dispose()


async def test_concurrent_copies_of_a_sandbox_command_are_handed_off_once(gw):
    core, c, sandbox = gw
    body = command("sandbox count files", trigger_id="1.5.race")
    answers = await asyncio.gather(*(c.post("/slack/commands", content=body, headers=signed("slack", body))
                                     for _ in range(6)))
    assert all(a.status_code == 200 and a.json()["outcome"] == "sandbox_opened" for a in answers)
    assert sum(1 for a in answers if not a.json().get("duplicate")) == 1
    await core.drain()
    assert len(sandbox.submitted) == 1 and len(await _rows(core, Delivery)) == 1
