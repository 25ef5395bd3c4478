"""Recorded GitHub deliveries as change evidence: parsed from the real octokit payloads, recorded
through the gateway's parse + intake path, read back per team only, de-duplicated against the
same change found by the GitHub tools, and ranked with the same weight."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from actors.ranking.changes import change_findings, dedupe_changes
from actors.tools import github as github_tools
from actors.tools.base import ToolContext
from actors.tools.execute import execute
from actors.tools.github_events import changes_from_payload
from actors.tools.registry import TOOLS, tools_for
from incidentfox.db import make_async_engine, session_factory
from serve_apps import deliveries
from serve_apps.deliveries.model import Route
from serve_apps.webhooks import github as github_hook

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def _load(fixtures_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((fixtures_dir / "github" / name).read_text())


def _push(fixtures_dir: Path, *, at: datetime) -> dict[str, Any]:
    """The octokit push example (a tag deletion) turned into a branch push with two commits."""
    body = _load(fixtures_dir, "push.json")
    body.update(ref="refs/heads/main", deleted=False, created=False,
                before="6113728f27ae82c7b1a177c8d03f9e96e0adf246",
                after="a10867b14bb761a232cd80139fbd4c0d33264240")
    commits = [{"id": "a10867b14bb761a232cd80139fbd4c0d33264240", "message": "Raise pool size\n\nbody",
                "timestamp": (at - timedelta(minutes=1)).isoformat(),
                "author": {"name": "Mona", "email": "m@example.com", "username": "octocat"}},
               {"id": "b20867b14bb761a232cd80139fbd4c0d33264240", "message": "Tune timeouts",
                "timestamp": at.isoformat(),
                "author": {"name": "Mona", "email": "m@example.com", "username": "octocat"}}]
    body.update(commits=commits, head_commit=commits[-1])
    return body


def _merged_pr(fixtures_dir: Path, *, at: datetime) -> dict[str, Any]:
    body = _load(fixtures_dir, "pull_request.opened.json")
    body["action"] = "closed"
    body["pull_request"].update(merged=True, state="closed", merged_at=at.isoformat(), closed_at=at.isoformat())
    return body


def _deployment(fixtures_dir: Path, *, at: datetime, state: str | None) -> dict[str, Any]:
    """A deployment (and optionally its status) for the fixture's repository, in GitHub's documented
    shape (octokit has no deployment example among the shared fixtures)."""
    base = _load(fixtures_dir, "pull_request.opened.json")
    body: dict[str, Any] = {
        "action": "created", "repository": base["repository"], "sender": base["sender"],
        "deployment": {"id": 145988746, "sha": "a10867b14bb761a232cd80139fbd4c0d33264240", "ref": "main",
                       "environment": "production", "description": "v2.3.1", "created_at": at.isoformat(),
                       "creator": {"login": "deploy-bot", "type": "User"},
                       "url": "https://api.github.com/repos/Codertocat/Hello-World/deployments/145988746"}}
    if state:
        body["deployment_status"] = {"state": state, "created_at": (at + timedelta(minutes=2)).isoformat(),
                                     "target_url": "https://ci.example.com/deploy/1"}
    return body


def test_parsers_on_the_real_payloads(fixtures_dir: Path) -> None:
    # The octokit push example deletes a tag: no change. A push to a branch: one commit each.
    assert changes_from_payload("push", _load(fixtures_dir, "push.json")) == []
    commits = changes_from_payload("push", _push(fixtures_dir, at=NOW))
    assert [(c.kind, c.entity, c.ref, c.description, c.author) for c in commits] == [
        ("commit", "Hello-World", "a10867b14bb7", "Raise pool size", "octocat"),
        ("commit", "Hello-World", "b20867b14bb7", "Tune timeouts", "octocat")]
    # An opened PR is not a change; the same PR merged is.
    assert changes_from_payload("pull_request.opened", _load(fixtures_dir, "pull_request.opened.json")) == []
    [pr] = changes_from_payload("pull_request.merged", _merged_pr(fixtures_dir, at=NOW),
                                {"Codertocat/Hello-World": "hello"})
    assert (pr.kind, pr.entity, pr.at, pr.ref) == ("pull_request", "hello", NOW,
                                                    "https://github.com/Codertocat/Hello-World/pull/2")
    assert pr.description == "#2 Update the README with new information. (merged)"
    [dep] = changes_from_payload("deployment_status.success", _deployment(fixtures_dir, at=NOW, state="success"))
    assert (dep.kind, dep.ref, dep.at, dep.description) == ("deploy", "a10867b14bb7", NOW,
                                                           "deploy main to production: v2.3.1 [success]")
    # Malformed bodies carry nothing, never raise.
    assert changes_from_payload("push", {"repository": "x"}) == []
    assert changes_from_payload("deployment", {"repository": {"full_name": "a/b"}, "deployment": []}) == []


def test_gateway_records_deployment_events(fixtures_dir: Path) -> None:
    body = json.dumps(_deployment(fixtures_dir, at=NOW, state="failure")).encode()
    result = github_hook.parse(headers={"X-GitHub-Event": "deployment_status"}, body=body, now=0)
    assert not result.ignored and result.trigger.action.value == "record"
    assert result.trigger.event_kind == "deployment_status.failure"
    assert result.trigger.identifiers["github_repo"] == "codertocat/hello-world"


def test_same_change_found_twice_counts_once() -> None:
    """A deploy from the GitHub deployments tool and the same deploy from the recorded status."""
    tool_item = {"id": 1, "sha": "a10867b14bb761a232cd80139fbd4c0d33264240", "ref": "main",
                 "environment": "production", "description": "v2.3.1", "created_at": NOW.isoformat(),
                 "creator": {"login": "deploy-bot"}}
    recorded = changes_from_payload("deployment_status.success", {
        "repository": {"full_name": "Codertocat/Hello-World"}, "deployment": tool_item,
        "deployment_status": {"state": "success"}})
    from_tool = github_tools.commit_change("Hello-World", {
        "sha": "a10867b14bb761a232cd80139fbd4c0d33264240",
        "commit": {"message": "Raise pool size", "committer": {"date": NOW.isoformat()}}})
    from_push = changes_from_payload("push", {"ref": "refs/heads/main", "repository": {
        "full_name": "Codertocat/Hello-World"}, "commits": [{"id": "a10867b14bb761a232cd80139fbd4c0d33264240",
                                                             "message": "Raise pool size", "timestamp": NOW.isoformat()}]})
    deploy_without_state = recorded[0].model_copy(update={"description": "deploy main to production: v2.3.1"})
    merged = dedupe_changes([deploy_without_state, from_tool, *recorded, *from_push])
    assert [(c.kind, c.ref) for c in merged] == [("deploy", "a10867b14bb7"), ("commit", "a10867b14bb7")]
    assert merged[0].description.endswith("[success]")   # the status says more
    # Same weight as a tool-found deploy of the same age: one finding each, equal scores.
    onset = NOW + timedelta(minutes=10)
    [a] = change_findings([deploy_without_state], onset)
    [b] = change_findings(recorded, onset)
    assert a.score == b.score


async def _record(sessions: Any, payload: dict[str, Any], event: str, *, org: str, team: str | None,
                  received: datetime) -> None:
    body = json.dumps(payload).encode()
    parsed = github_hook.parse(headers={"X-GitHub-Event": event}, body=body, now=0)
    route = Route(found=team is not None, org_id=org if team else None, team_id=team)
    result = await deliveries.intake(sessions, trigger=parsed.trigger, route=route, payload=body.decode(),
                                     now=received)
    assert result.outcome.value == "recorded"


async def test_tool_reads_only_the_teams_recorded_changes(fixtures_dir: Path, db_url: str) -> None:
    engine = make_async_engine(db_url)
    sessions = session_factory(engine)
    try:
        at = NOW - timedelta(minutes=30)
        await _record(sessions, _deployment(fixtures_dir, at=at, state="success"), "deployment_status",
                      org="o1", team="t1", received=at + timedelta(minutes=2))
        await _record(sessions, _merged_pr(fixtures_dir, at=at), "pull_request", org="o1", team="t1",
                      received=at)
        await _record(sessions, _push(fixtures_dir, at=at), "push", org="o1", team="t1", received=at)
        # Another team of the same org, another org, and an unrouted delivery: never read by t1.
        other = _deployment(fixtures_dir, at=at, state="failure")
        other["deployment"]["sha"] = "ffff0000ffff0000"
        await _record(sessions, other, "deployment_status", org="o1", team="t2", received=at)
        await _record(sessions, copy.deepcopy(other), "deployment", org="o2", team="t1", received=at)
        await _record(sessions, _deployment(fixtures_dir, at=at + timedelta(seconds=1), state=None),
                      "deployment", org="o1", team=None, received=at)
        # Old news, outside the window.
        old = NOW - timedelta(days=2)
        await _record(sessions, _deployment(fixtures_dir, at=old, state="success") | {"x": 1}, "deployment",
                      org="o1", team="t1", received=old)

        ctx = ToolContext(org_id="o1", team_id="t1", run_id="r1", sessions=sessions, clock=lambda: NOW)
        spec = TOOLS["github_recorded_changes"]
        res = await execute(spec, {"repo": None, "since_minutes": 180, "limit": None}, ctx)
        assert res.ok, res.message
        kinds = sorted((c.kind, c.ref) for c in res.evidence.changes)
        assert kinds == [("commit", "a10867b14bb7"), ("commit", "b20867b14bb7"), ("deploy", "a10867b14bb7"),
                         ("pull_request", "https://github.com/Codertocat/Hello-World/pull/2")]
        assert all("ffff0000" not in c.ref for c in res.evidence.changes)
        # t2 sees only its own failed deploy; an unknown team sees nothing.
        res2 = await execute(spec, {"repo": None, "since_minutes": 180, "limit": None},
                             ToolContext(org_id="o1", team_id="t2", sessions=sessions, clock=lambda: NOW))
        assert [c.ref for c in res2.evidence.changes] == ["ffff0000ffff"]
        res3 = await execute(spec, {"repo": None, "since_minutes": 180, "limit": None},
                             ToolContext(org_id="o3", team_id="t1", sessions=sessions, clock=lambda: NOW))
        assert res3.ok and res3.evidence.changes == []
    finally:
        await engine.dispose()


async def test_tool_without_database_is_not_configured() -> None:
    res = await execute(TOOLS["github_recorded_changes"], {"repo": None, "since_minutes": None, "limit": None},
                        ToolContext(org_id="o", team_id="t"))
    assert not res.ok and res.error == "not_configured"


def test_teams_with_repositories_have_the_builtin_tool() -> None:
    """Every team that has repositories (routing claims or a GitHub integration), with no token needed."""
    def names(config: dict[str, Any]) -> list[str]:
        return [t.name for t in tools_for(config)]

    assert "github_recorded_changes" in names({"routing": {"github_repos": ["acme/shop"]}})
    assert "github_recorded_changes" in names({"integrations": {"github": {"token": "x"}}})
    assert "github_recorded_changes" not in names({"integrations": {}})
    assert "github_recorded_changes" not in names({"routing": {"github_repos": ["acme/shop"]},
                                                   "tools": {"github_recorded_changes": False}})


async def test_retention_is_that_of_every_delivery(fixtures_dir: Path, db_url: str) -> None:
    """`incidentfox gc` blanks raw bodies past retention; a blanked body carries no change."""
    from incidentfox.runs.gc import purge

    engine = make_async_engine(db_url)
    sessions = session_factory(engine)
    try:
        at = NOW - timedelta(minutes=30)
        await _record(sessions, _deployment(fixtures_dir, at=at, state="success"), "deployment_status",
                      org="o1", team="t1", received=at)
        ctx = ToolContext(org_id="o1", team_id="t1", sessions=sessions, clock=lambda: NOW)
        args = {"repo": None, "since_minutes": 180, "limit": None}
        assert len((await execute(TOOLS["github_recorded_changes"], args, ctx)).evidence.changes) == 1
        counts = await purge(sessions, older_than=timedelta(minutes=10), now=NOW)
        assert counts["delivery_payloads"] == 1
        assert (await execute(TOOLS["github_recorded_changes"], args, ctx)).evidence.changes == []
    finally:
        await engine.dispose()
