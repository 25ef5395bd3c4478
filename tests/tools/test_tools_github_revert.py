"""``github_open_revert_pr`` against a local server speaking the GitHub API subset it uses: nothing
without approval; a revert of the head is the parent's tree; a branch that moved on elsewhere still
reverts cleanly; a branch that changed the same file since is refused with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from actors.tools.base import ToolContext, ToolResult
from actors.tools.execute import execute
from actors.tools.github_revert import action_marker
from actors.tools.registry import TOOLS
from tests.answerback_kit import FakeGitHub, FakeGitRepo, rsa_pem
from tests.tools_fakes import FakeHTTP

REPO = "acme/shop"
APP_ID = "4242"
ACTION = "act_0123456789abcdef"


@pytest.fixture
def pem_pub() -> tuple[str, Any]:
    return rsa_pem()


def world(http: FakeHTTP, pub: Any) -> tuple[FakeGitHub, FakeGitRepo]:
    gh = FakeGitHub(http, public_key=pub, app_id=APP_ID, installation_id=77, repo=REPO)
    return gh, FakeGitRepo(gh)


def ctx(http: FakeHTTP, pem: str, *, installation: int | None = 77,
        repos: tuple[str, ...] = (REPO.upper(),)) -> ToolContext:
    cfg = {"app_id": APP_ID, "private_key": pem, "api_url": http.url, "installation_id": installation}
    return ToolContext(integrations={"github": cfg}, org_id="o", team_id="t", run_id="run_1",
                       clock=lambda: datetime.now(UTC), routing={"github_repos": list(repos)})


async def revert(c: ToolContext, sha: str, *, approved: bool = True) -> ToolResult:
    args = {"repo": REPO, "sha": sha, "action_id": ACTION, "rca_link": "https://fox.example/runs/run_1"}
    return await execute(TOOLS["github_open_revert_pr"], args, c, approved=approved, backoff_s=0.001)


async def test_declared_once_as_mutating_and_needs_approval(http: FakeHTTP, pem_pub) -> None:
    pem, pub = pem_pub
    _, repo = world(http, pub)
    repo.commit("init", {"app.py": "v1"})
    bad = repo.commit("Raise pool size", {"app.py": "v2"})
    spec = TOOLS["github_open_revert_pr"]
    assert spec.mutating and spec.integration == "github" and spec.retries == 0
    result = await revert(ctx(http, pem), bad, approved=False)
    assert not result.ok and result.error == "approval_required"
    assert http.requests == [] and repo.pulls == []


async def test_revert_of_the_head_is_its_parents_tree(http: FakeHTTP, pem_pub) -> None:
    pem, pub = pem_pub
    _, repo = world(http, pub)
    base = repo.commit("init", {"app.py": "v1", "README": "hi"})
    bad = repo.commit("Raise pool size\n\nlonger text", {"app.py": "v2", "new.py": "x"})
    result = await revert(ctx(http, pem, installation=None), bad[:12])   # the App's installation on the repo
    assert result.ok, result.message
    [pr] = repo.pulls
    assert pr["title"] == f"Revert {bad[:7]}: Raise pool size" and pr["base"] == "main"
    assert action_marker(pr["body"]) == ACTION and "https://fox.example/runs/run_1" in pr["body"]
    head = repo.refs[pr["head"]]
    assert repo.tree_of(head) == repo.tree_of(base) and repo.commits[head]["parents"] == [bad]
    assert repo.refs["main"] == bad                       # the default branch itself is untouched
    assert result.data["number"] == 1 and result.data["reverts"] == bad
    assert all(r.headers["Authorization"] == "Bearer ghs_installation0" for r in http.requests
               if r.path.startswith(f"/repos/{REPO}/git"))


async def test_a_branch_moved_on_elsewhere_reverts_only_the_commits_files(http: FakeHTTP, pem_pub) -> None:
    pem, pub = pem_pub
    _, repo = world(http, pub)
    repo.commit("init", {"app.py": "v1", "gone.py": "old", "docs.md": "a"})
    bad = repo.commit("Rework", {"app.py": "v2", "gone.py": None, "added.py": "new"})
    head = repo.commit("Docs", {"docs.md": "b"})
    result = await revert(ctx(http, pem), bad)
    assert result.ok, result.message
    reverted = repo.tree_of(repo.refs[repo.pulls[0]["head"]])
    before = repo.tree_of(repo.commits[bad]["parents"][0])
    assert reverted["app.py"] == before["app.py"] and reverted["gone.py"] == before["gone.py"]
    assert "added.py" not in reverted and reverted["docs.md"] == repo.tree_of(head)["docs.md"]


async def test_refused_when_the_branch_changed_the_same_file_since(http: FakeHTTP, pem_pub) -> None:
    pem, pub = pem_pub
    _, repo = world(http, pub)
    repo.commit("init", {"app.py": "v1"})
    bad = repo.commit("Raise pool size", {"app.py": "v2"})
    repo.commit("Tune pool again", {"app.py": "v3"})
    result = await revert(ctx(http, pem), bad)
    assert not result.ok and result.error == "conflict" and "app.py" in result.message
    assert repo.writes == [] and repo.pulls == []


async def test_bad_arguments_and_missing_app_are_clear_errors(http: FakeHTTP, pem_pub) -> None:
    pem, _ = pem_pub
    c = ctx(http, pem)
    bad = await execute(TOOLS["github_open_revert_pr"], {"repo": "../etc", "sha": "abc1234", "action_id": ACTION,
                                                          "rca_link": None}, c, approved=True)
    assert bad.error == "invalid_arguments"
    no_app = ToolContext(integrations={"github": {"token": "t", "api_url": http.url}})
    res = await execute(TOOLS["github_open_revert_pr"], {"repo": REPO, "sha": "abc1234", "action_id": ACTION,
                                                          "rca_link": None}, no_app, approved=True)
    assert res.error == "not_configured" and http.requests == []


async def test_a_revert_is_opened_only_in_a_repository_the_team_claims(http: FakeHTTP, pem_pub) -> None:
    """An App shared by an org's teams reaches every team's repositories: a run whose evidence (or a
    thread reply) names another team's repository opens nothing there, even approved."""
    pem, pub = pem_pub
    _, repo = world(http, pub)
    repo.commit("init", {"app.py": "v1"})
    bad = repo.commit("Raise pool size", {"app.py": "v2"})
    for claims in ((), ("acme/billing",)):
        result = await revert(ctx(http, pem, repos=claims), bad)
        assert (result.ok, result.error) == (False, "forbidden"), result
        assert "routing.github_repos" in result.message
    assert http.requests == [] and repo.pulls == []
    assert (await revert(ctx(http, pem), bad)).ok and len(repo.pulls) == 1
