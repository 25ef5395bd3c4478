"""Who may drive a team's sandbox from Slack (``access.sandbox_users``: nobody by default) and who
may approve its mutating MCP calls (``access.approvers``), through the real gateway intake and the
sandbox side's dispatch (the ``gw`` fixture of ``test_sandbox_slack``)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from gateway_kit import settings_for, signed

from actors.sandbox.models import SandboxSessionRow
from actors.sandbox.testing import Reply, Text, ToolUse
from incidentfox.runs.models import Delivery
from tests.sandbox import test_sandbox_slack as slack_kit
from tests.sandbox_helpers import needs_root, patch_team

pytestmark = needs_root
gw = slack_kit.gw                       # the gateway + sandbox-side fixture, shared
command, rows, user_texts, wait_for_session = (slack_kit.command, slack_kit.rows, slack_kit.user_texts,
                                               slack_kit.wait_for_session)
ROOT = Path(__file__).resolve().parents[1]


def reply_from(user: str, text: str, *, thread_ts: str, event_id: str) -> bytes:
    return json.dumps({
        "type": "event_callback", "event_id": event_id, "team_id": "T111", "api_app_id": "A111",
        "event_time": int(time.time()), "authorizations": [{"user_id": "UBOT", "is_bot": True}],
        "event": {"type": "message", "channel": "C111", "user": user, "text": text,
                  "ts": f"{time.time():.6f}", "thread_ts": thread_ts}}).encode()


def command_from(user: str, text: str, *, trigger_id: str) -> bytes:
    return command(text, trigger_id=trigger_id).replace(b"user_id=W111", f"user_id={user}".encode())


class Ephemerals:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, str]] = []

    async def __call__(self, token: str, channel: str, user: str, text: str) -> None:
        self.sent.append((token, channel, user, text))


async def post(gw: dict[str, Any], path: str, body: bytes) -> dict[str, Any]:
    r = await gw["client"].post(path, content=body, headers=signed("slack", body))
    assert r.status_code == 200, r.text
    return r.json()


async def set_access(db: str, tmp: Path, access: dict[str, Any], **extra: Any) -> None:
    await patch_team(db, settings_for(db, tmp), "acme", "payments", {"access": access, **extra})


async def test_a_user_not_listed_opens_nothing_and_is_told_alone(gw: dict[str, Any]) -> None:
    eph = gw["sandbox"].ephemeral = Ephemerals()
    await post(gw, "/slack/commands", command_from("UOUTSIDER", "sandbox drain the cluster", trigger_id="1.1.a"))
    await gw["drain"]()
    assert await rows(gw["core"], SandboxSessionRow) == []
    assert gw["slack"].calls == []                                   # nothing posted in the channel
    assert [(c, u) for _, c, u, _ in eph.sent] == [("C111", "UOUTSIDER")]
    assert "access.sandbox_users" in eph.sent[0][3] and eph.sent[0][0] == "xoxb-payments"
    delivery = (await rows(gw["core"], Delivery))[0]
    assert "not allowed" in (delivery.dispatch_error or "")


async def test_empty_list_means_nobody(gw: dict[str, Any], sqlite_url: str, tmp_path: Path) -> None:
    eph = gw["sandbox"].ephemeral = Ephemerals()
    await set_access(sqlite_url, tmp_path, {"sandbox_users": None})
    await post(gw, "/slack/commands", command_from("W111", "sandbox hello", trigger_id="1.1.b"))
    await gw["drain"]()
    assert await rows(gw["core"], SandboxSessionRow) == [] and len(eph.sent) == 1


async def test_a_reply_from_someone_else_continues_nothing(gw: dict[str, Any]) -> None:
    eph = gw["sandbox"].ephemeral = Ephemerals()
    gw["server"].add(Reply([Text("first answer")]), Reply([Text("second answer")]))
    await post(gw, "/slack/commands", command_from("W111", "sandbox look around", trigger_id="1.1.c"))
    session = await wait_for_session(gw["core"])
    await gw["drain"]()
    await post(gw, "/slack/events", reply_from("UOUTSIDER", "rm -rf everything", thread_ts=session.slack_thread_ts,
                                               event_id="EvOut1"))
    await gw["drain"]()
    transcript = await gw["store"].list_messages(session_id=session.id)
    assert user_texts(transcript) == ["look around"]
    assert [u for _, _, u, _ in eph.sent] == ["UOUTSIDER"]


async def test_user_group_members_may_drive(gw: dict[str, Any], sqlite_url: str, tmp_path: Path) -> None:
    eph = gw["sandbox"].ephemeral = Ephemerals()
    looked_up: list[tuple[str, str]] = []

    def members(token: str) -> Any:
        async def of(group: str) -> frozenset[str]:
            looked_up.append((token, group))
            return frozenset({"UMEMBER"}) if group == "SONCALL" else frozenset()
        return of

    gw["sandbox"].group_members = members
    await set_access(sqlite_url, tmp_path, {"sandbox_users": ["SONCALL"]})
    gw["server"].add(Reply([Text("hi")]))
    await post(gw, "/slack/commands", command_from("UOTHER", "sandbox x", trigger_id="1.1.d"))
    await gw["drain"]()
    assert await rows(gw["core"], SandboxSessionRow) == [] and len(eph.sent) == 1
    await post(gw, "/slack/commands", command_from("UMEMBER", "sandbox y", trigger_id="1.1.e"))
    await wait_for_session(gw["core"])
    await gw["drain"]()
    assert ("xoxb-payments", "SONCALL") in looked_up and len(eph.sent) == 1


async def test_approvers_decide_mutating_mcp_calls_by_replying(gw: dict[str, Any], sqlite_url: str, tmp_path: Path) -> None:
    eph = gw["sandbox"].ephemeral = Ephemerals()
    backend = gw["sandbox"].backend
    await backend.manager.store.replace_allowlist(entries=[
        {"name": "ops", "transport": "stdio", "command": [sys.executable, str(ROOT / "sandbox_mcp_server.py")],
         "tool_timeout_s": 20}], updated_by="admin")
    await set_access(sqlite_url, tmp_path, {"sandbox_users": ["W111"], "approvers": ["UAPPROVER"]},
                     sandbox={"mcp_servers": ["ops"]})
    gw["server"].add(Reply([ToolUse("mcp__ops__restart_service", {"service": "checkout"})]),
                     Reply([Text("restarted")]))
    await post(gw, "/slack/commands", command_from("W111", "sandbox restart checkout", trigger_id="1.1.f"))
    session = await wait_for_session(gw["core"])
    async with asyncio.timeout(30):
        while not (pending := await backend.pending_approvals(session.id)):
            await asyncio.sleep(0.02)
    approval_id = pending[0]["approval_id"]
    # The thread says what waits and how to approve it (the mirror's edits are throttled: wait for it).
    async with asyncio.timeout(30):
        while not any(f"approve {approval_id}" in call[3] for call in gw["slack"].calls):
            await asyncio.sleep(0.02)
    # A sandbox user who is not an approver cannot approve.
    await post(gw, "/slack/events", reply_from("W111", f"approve {approval_id}", thread_ts=session.slack_thread_ts,
                                               event_id="EvApr1"))
    await gw["core"].drain()   # handed off; the open's turn is still waiting, so wait for the refusal
    async with asyncio.timeout(30):
        while not eph.sent:
            await asyncio.sleep(0.02)
    assert [u for _, _, u, t in eph.sent] == ["W111"] and "not an approver" in eph.sent[0][3]
    assert await backend.pending_approvals(session.id) == pending
    await post(gw, "/slack/events", reply_from("UAPPROVER", f"approve {approval_id}",
                                               thread_ts=session.slack_thread_ts, event_id="EvApr2"))
    await gw["drain"]()
    assert await backend.pending_approvals(session.id) == []
    transcript = await gw["store"].list_messages(session_id=session.id)
    results = [b for m in transcript for b in m["content"] if b.get("type") == "tool_result"]
    assert results[0]["content"] == "checkout: restarted" and not results[0]["is_error"]
    assert user_texts(transcript) == ["restart checkout"]           # the approval was not a turn
    assert any(f"Approved `{approval_id}` by <@UAPPROVER>" in call[3] for call in gw["slack"].calls)
