"""On Ray, offline planner over the demo world: a team that enables the rollback tool gets the bad
deploy's rollback as a proposed fix, recorded as a pending approval, with Approve / Deny in Slack;
nothing runs until someone approves it."""

from __future__ import annotations

import pytest
from engine_support import Engine, demo_config

from incidentfox.runs.models import ToolApproval

pytestmark = [pytest.mark.ray, pytest.mark.slow]


async def test_bad_deploy_gets_a_pending_rollback_with_buttons(engine: Engine) -> None:
    team = await engine.add_team(demo_config(channel="CFIX", latency_ms=[20, 60],
                                             tools={"kubernetes_rollback_deployment": True}))
    run_id = await engine.start(team, channel="CFIX")
    run = await engine.wait_terminal(run_id, timeout=90)
    assert run.status == "succeeded", run.error
    [action] = run.result["proposed_actions"]
    assert action["kind"] == "rollback" and "checkout" in action["target"]
    assert action["tool"] == "kubernetes_rollback_deployment" and action["arguments"]["expected_revision"]
    async with engine.sessions() as s:
        row = await s.get(ToolApproval, action["id"])
        assert (row.status, row.tool, row.decided_by) == ("pending", "kubernetes_rollback_deployment", None)
    calls = await engine.tool_calls(run_id)
    assert "kubernetes_rollback_deployment" not in {c.tool for c in calls}   # proposed, never run
    final = await engine.slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.update"
                                                       and c.args.get("channel") == "CFIX"
                                                       and "Proposed fix" in str(c.args["blocks"])])
    assert f'action:{action["id"]}' in str(final[-1].args["blocks"])
