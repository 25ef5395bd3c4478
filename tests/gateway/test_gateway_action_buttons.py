"""The proposed fix's Approve button in the RCA message: a non-approver's click changes nothing; an
approver's click records the decision in the interaction's transaction and runs the action once."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from gateway_kit import client_for, load, make_core, seed_approvers, signed, slack_event

from actors.engine import actions
from actors.engine.offline_planner import rca_from_evidence
from actors.slack.reporter import ACTION_APPROVE, rca_blocks
from actors.tools.base import ToolResult
from incidentfox.runs import store
from incidentfox.runs.models import Run, ToolApproval
from tests.engine.test_proposed_actions import ALL, T, _crash_bundle


class RecordingActions:
    """The gateway's action runner with the tool call recorded instead of sent."""

    def __init__(self, sessions: Any) -> None:
        self.sessions, self.calls = sessions, []

    async def call_tool(self, run: Run, action: Any) -> ToolResult:
        self.calls.append((action.tool, action.arguments))
        return ToolResult.success({}, summary=f"restarted deployment {action.arguments['deployment']}")

    async def run(self, *, run_id: str, action_id: str) -> Any:
        return await actions.execute_approved(self.sessions, run_id=run_id, action_id=action_id,
                                              call_tool=self.call_tool)


@pytest.fixture
async def gw(db_url):
    core = make_core(db_url)
    core.actions = RecordingActions(core.sessions)
    async with client_for(core) as client:
        yield core, client
    await core.drain()
    await core.engine.dispose()


def _click(fixtures_dir, button: dict[str, Any], *, user: str, trigger_id: str) -> bytes:
    data = json.loads(load(fixtures_dir, "slack/block_actions.json"))
    data["trigger_id"] = trigger_id
    data["user"]["id"] = user
    data["actions"][0].update(action_id=button["action_id"], value=button["value"])
    return ("payload=" + quote(json.dumps(data))).encode()


async def test_only_an_approvers_click_runs_the_fix_once(gw, fixtures_dir, db_url, tmp_path):
    core, client = gw
    await seed_approvers(db_url, tmp_path, org="acme", team="payments", approvers=["W111"])
    body = slack_event(fixtures_dir, event_id="EvAct1")
    run_id = (await client.post("/slack/events", content=body, headers=signed("slack", body))).json()["run_id"]
    rca = rca_from_evidence(_crash_bundle(), now=T + timedelta(minutes=5), allowed=ALL)
    [proposal] = rca.proposed_actions
    async with core.sessions() as s:
        run = await store.get_run(s, run_id)
        run.status, run.result = "succeeded", rca.model_dump(mode="json")
        await actions.add_proposals(s, run_id=run_id, rca=rca)
        await s.commit()
    # The button the RCA message carries.
    [button] = [e for b in rca_blocks(rca, run_id=run_id) if b.get("block_id") == f"action:{proposal.id}"
                for e in b["elements"] if e["action_id"] == ACTION_APPROVE]

    async def press(user: str, tid: str) -> dict[str, Any]:
        b = _click(fixtures_dir, button, user=user, trigger_id=tid)
        r = await client.post("/slack/interactions", content=b, headers=signed("slack", b))
        assert r.status_code == 200, r.text
        await core.drain()
        return r.json()

    assert (await press("W999", "t1"))["outcome"] == "rejected"          # not in access.approvers
    assert core.actions.calls == []
    async with core.sessions() as s:
        assert (await s.get(ToolApproval, proposal.id)).status == "pending"
    assert (await press("W111", "t2"))["outcome"] == "interaction"
    assert core.actions.calls == [("kubernetes_restart_deployment", {"namespace": "shop", "deployment": "checkout"})]
    assert (await press("W111", "t3"))["outcome"] == "rejected"          # decided: never twice
    assert len(core.actions.calls) == 1
    async with core.sessions() as s:
        row = await s.get(ToolApproval, proposal.id, populate_existing=True)
        assert (row.status, row.decided_by) == ("executed", "slack:W111")
