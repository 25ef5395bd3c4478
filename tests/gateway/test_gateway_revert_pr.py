"""The revert proposed fix end to end through the gateway: the revert pull request is opened (against a
local GitHub) only after an allowed approver's Slack click; its merge, GitHub's signed
``pull_request`` closed+merged delivery carrying the action marker, is recorded once with who merged
it (an ``access.github_approvers`` login or not) and posted into the run's thread."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gateway_kit import client_for, load, make_core, seed_team_config, signed, slack_event
from sqlalchemy import select

from actors.engine import actions
from actors.engine.actions import ActionRunner
from actors.engine.offline_planner import rca_from_evidence
from actors.slack.reporter import ACTION_APPROVE, rca_blocks
from actors.tools.base import ToolContext, ToolResult
from actors.tools.execute import execute
from actors.tools.registry import TOOLS
from incidentfox.evidence import Alert, ChangeEvent, EvidenceBundle
from incidentfox.runs import store
from incidentfox.runs.models import Run, ToolApproval
from tests.answerback_kit import FakeGitHub, FakeGitRepo, rsa_pem
from tests.engine.test_proposed_actions import ALL, T
from tests.gateway.test_gateway_action_buttons import _click
from tests.tools_fakes import FakeHTTP

REPO = "Codertocat/Hello-World"      # the repository of ../shared/fixtures/github/pull_request.*.json
REVERT = "github_open_revert_pr"


class RevertActions(ActionRunner):
    """The gateway's ActionRunner with the tool call made straight against the local GitHub and the
    Slack post recorded."""

    def __init__(self, sessions: Any, http: FakeHTTP, pem: str) -> None:
        super().__init__(sessions, database_url="sqlite+aiosqlite://")
        self.http, self.pem, self.posted, self.calls = http, pem, [], []

    async def call_tool(self, run: Run, action: Any) -> ToolResult:
        self.calls.append(action.arguments)
        ctx = ToolContext(integrations={"github": {"app_id": "4242", "private_key": self.pem, "installation_id": 77,
                                                   "api_url": self.http.url}},
                          org_id=run.org_id, team_id=run.team_id, run_id=run.id, clock=lambda: datetime.now(UTC),
                          routing={"github_repos": [REPO]})
        return await execute(TOOLS[action.tool], action.arguments, ctx, approved=True)

    async def post_text(self, run: Run, text: str) -> None:
        self.posted.append(text)


@pytest.fixture
async def world(db_url, tmp_path):
    pem, pub = rsa_pem()
    http = FakeHTTP()
    await http.start()
    repo = FakeGitRepo(FakeGitHub(http, public_key=pub, app_id="4242", installation_id=77, repo=REPO))
    core = make_core(db_url)
    core.actions = RevertActions(core.sessions, http, pem)
    await seed_team_config(db_url, tmp_path, org="acme", team="payments",
                           patch={"access": {"approvers": ["W111"], "github_approvers": ["OctoCat"]}})
    async with client_for(core) as client:
        yield core, client, repo
    await core.drain()
    await core.engine.dispose()
    await http.close()


async def _run_with_revert(core: Any, client: Any, fixtures_dir: Any, sha: str) -> tuple[str, Any, Any]:
    body = slack_event(fixtures_dir, event_id="EvRevert1")
    run_id = (await client.post("/slack/events", content=body, headers=signed("slack", body))).json()["run_id"]
    bundle = EvidenceBundle(alert=Alert(title="hello-world errors", entity="hello-world", started_at=T),
                            changes=[ChangeEvent(entity="hello-world", kind="commit", at=T - timedelta(minutes=3),
                                                 description="Raise pool size", ref=sha[:12], repo=REPO, sha=sha)])
    rca = rca_from_evidence(bundle, now=T + timedelta(minutes=5), allowed=ALL | {REVERT})
    [proposal] = rca.proposed_actions
    assert (proposal.kind, proposal.tool) == ("revert", REVERT)
    assert proposal.arguments == {"repo": REPO, "sha": sha, "action_id": proposal.id, "rca_link": None}
    async with core.sessions() as s:
        run = await store.get_run(s, run_id)
        run.status, run.result = "succeeded", rca.model_dump(mode="json")
        await actions.add_proposals(s, run_id=run_id, rca=rca)
        await s.commit()
    [button] = [e for b in rca_blocks(rca, run_id=run_id) if b.get("block_id") == f"action:{proposal.id}"
                for e in b["elements"] if e["action_id"] == ACTION_APPROVE]
    return run_id, proposal, button


def _merged(fixtures_dir: Any, pr: dict[str, Any], *, merger: str, updated: str = "2026-05-04T10:30:00Z") -> bytes:
    data = json.loads(load(fixtures_dir, "github/pull_request.opened.json"))
    data["action"] = "closed"
    data["pull_request"].update(merged=True, state="closed", body=pr["body"], html_url=pr["html_url"],
                                number=pr["number"], merged_at="2026-05-04T10:30:00Z", updated_at=updated,
                                merged_by={"login": merger, "type": "User"})
    return json.dumps(data).encode()


@pytest.mark.parametrize("merger,approved", [("octocat", True), ("mallory", False)])
async def test_revert_pr_opens_after_approval_and_its_merge_is_recorded_once(world, fixtures_dir, merger, approved):
    core, client, repo = world
    repo.commit("init", {"app.py": "v1"})
    bad = repo.commit("Raise pool size", {"app.py": "v2"})
    run_id, proposal, button = await _run_with_revert(core, client, fixtures_dir, bad)

    async def press(user: str, tid: str) -> dict[str, Any]:
        b = _click(fixtures_dir, button, user=user, trigger_id=tid)
        r = await client.post("/slack/interactions", content=b, headers=signed("slack", b))
        assert r.status_code == 200, r.text
        await core.drain()
        return r.json()

    assert repo.pulls == []                                   # proposed is not opened
    assert (await press("W999", "t1"))["outcome"] == "rejected"   # not in access.approvers
    assert repo.pulls == [] and repo.writes == []
    assert (await press("W111", "t2"))["outcome"] == "interaction"
    [pr] = repo.pulls
    assert f"incidentfox-action: {proposal.id}" in pr["body"] and pr["title"] == f"Revert {bad[:7]}: Raise pool size"
    assert "✅" in core.actions.posted[0] and "approved by slack:W111" in core.actions.posted[0]

    # Another PR in the repository carrying a copy of the marker is not the revert.
    copy = _merged(fixtures_dir, {**pr, "html_url": f"https://github.com/{REPO}/pull/99", "number": 99},
                   merger="octocat")
    r = await client.post("/github", content=copy, headers=signed("github", copy, event="pull_request"))
    assert r.json()["outcome"] == "recorded"
    async with core.sessions() as s:
        assert (await s.get(ToolApproval, proposal.id)).status == "executed"

    body = _merged(fixtures_dir, pr, merger=merger)
    r = await client.post("/github", content=body, headers=signed("github", body, event="pull_request"))
    assert r.status_code == 200 and r.json()["outcome"] == "recorded", r.text
    await core.drain()
    async with core.sessions() as s:
        row = await s.get(ToolApproval, proposal.id, populate_existing=True)
        assert (row.status, row.decided_by) == ("merged", "slack:W111")
        notes = [e.data for e in await store.list_events(s, run_id=run_id) if e.kind == "note"
                 and e.data.get("status") == "merged"]
        assert notes == [{"action": proposal.id, "status": "merged", "tool": REVERT, "merged_by": f"github:{merger}",
                          "by_approver": approved, "pull_request": pr["html_url"],
                          "approved_by": f"github:{merger}" if approved else None}]
    assert len(core.actions.posted) == 2
    assert ("an allowed approver" in core.actions.posted[1]) is approved
    assert ("non-approver" in core.actions.posted[1]) is not approved

    # GitHub's redelivery (the same body) and a later delivery of the same merge change nothing.
    again = await client.post("/github", content=body, headers=signed("github", body, event="pull_request"))
    assert again.json().get("duplicate") is True or again.json()["outcome"] == "recorded"
    later = _merged(fixtures_dir, pr, merger="someone-else", updated="2026-05-04T11:00:00Z")
    r = await client.post("/github", content=later, headers=signed("github", later, event="pull_request"))
    assert r.json()["outcome"] == "recorded"
    await core.drain()
    async with core.sessions() as s:
        notes = [e for e in await store.list_events(s, run_id=run_id) if e.data.get("status") == "merged"]
        assert len(notes) == 1
    assert len(core.actions.posted) == 2 and len(core.actions.calls) == 1


async def test_a_marker_on_another_repo_or_a_pending_action_records_nothing(world, fixtures_dir):
    core, client, repo = world
    repo.commit("init", {"app.py": "v1"})
    bad = repo.commit("Raise pool size", {"app.py": "v2"})
    _, proposal, _ = await _run_with_revert(core, client, fixtures_dir, bad)
    # Someone writes the marker into their own PR before anyone approved: no PR was opened, nothing recorded.
    forged = {"body": f"innocent\n\nincidentfox-action: {proposal.id}\n", "html_url": "https://x/pull/9", "number": 9}
    body = _merged(fixtures_dir, forged, merger="octocat")
    r = await client.post("/github", content=body, headers=signed("github", body, event="pull_request"))
    assert r.json()["outcome"] == "recorded"
    await core.drain()
    async with core.sessions() as s:
        assert (await s.get(ToolApproval, proposal.id, populate_existing=True)).status == "pending"
        assert (await s.scalars(select(ToolApproval).where(ToolApproval.status == "merged"))).all() == []
    assert repo.pulls == [] and core.actions.posted == []
