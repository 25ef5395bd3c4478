"""``github_open_revert_pr``: a pull request that reverts one commit, opened through the team's GitHub App.

GitHub has no revert endpoint, so the revert is built with the Git Data API, as ``git revert`` would
when it applies cleanly, and refused (``conflict``, nothing written) when it would not:

1. ``GET /repos/{repo}`` (default branch), ``GET /repos/{repo}/git/ref/heads/{branch}`` (its head),
   ``GET /repos/{repo}/commits/{sha}`` (the commit: one parent, its tree, its changed ``files``);
2. the reverted tree: the default branch head *is* the commit → the parent's tree. Otherwise the
   commit must be an ancestor of the head (``GET /repos/{repo}/compare/{sha}...{head}``, ``ahead``)
   and no file it touched may have changed since (that would need a merge); then the head's tree with
   each touched path set back to its blob in the parent's tree (``GET …/git/trees/{tree}?recursive=1``;
   an added file is deleted, a renamed one moved back) via ``POST …/git/trees`` with ``base_tree``;
3. ``POST …/git/commits`` (``Revert "<subject>"``, parent = the head), ``POST …/git/refs`` (branch
   ``incidentfox/revert-<sha7>-<action>``), ``POST …/pulls`` titled ``Revert <sha7>: <subject>``, its
   body carrying the RCA link and the marker ``incidentfox-action: <action id>`` (which is how the PR's
   merge is recognised as the human approval of the revert itself, :mod:`actors.engine.revert_merge`).

Only in a repository the team claims (``routing.github_repos``, :attr:`ToolContext.routing`):
anything else is ``forbidden`` before any request, since an org's teams may share one App.

Config (``integrations.github``): ``app_id``, ``private_key``, ``installation_id`` (unset: the App's
installation on the repository, ``GET /repos/{repo}/installation``), ``api_url``. Every request goes
through the egress check and typed error mapping of :mod:`actors.tools.httpcall` (429/5xx are
retryable with ``Retry-After``; the tool itself is not retried: a write may have happened).
Mutating: runs only after a human approves it (:mod:`actors.tools.execute`).
"""

from __future__ import annotations

import re
from typing import Any

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, spec_builder
from actors.tools.httpcall import request_json
from incidentfox import github_app
from incidentfox.evidence import EvidenceBundle

TOOL = "github_open_revert_pr"
TIMEOUT_S = 60.0
DEFAULT_API = "https://api.github.com"
MAX_FILES = 300          # GitHub lists at most 300 files of a commit or comparison
MARKER = "incidentfox-action: "
_REPO = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_ACTION = re.compile(r"^act_[0-9a-f]{1,64}$")


def marker(action_id: str) -> str:
    return f"{MARKER}{action_id}"


def action_marker(body: str) -> str | None:
    """The action id of the marker line in a pull request's body, or None."""
    m = re.search(r"(?m)^incidentfox-action: (act_[0-9a-f]{1,64})\s*$", body or "")
    return m.group(1) if m else None


class _GitHub:
    """The App's installation token and JSON calls for one tool call."""

    def __init__(self, ctx: ToolContext, repo: str) -> None:
        cfg = ctx.integration("github")
        self.ctx, self.repo = ctx, repo
        self.api = str(cfg.get("api_url") or DEFAULT_API).rstrip("/")
        self.app_id, self.key = cfg.get("app_id"), cfg.get("private_key")
        self.installation = cfg.get("installation_id")
        if not self.app_id or not self.key:
            raise ToolError("not_configured", "opening a revert pull request needs the team's GitHub App "
                                              "(integrations.github.app_id and private_key)")
        self.token: str | None = None

    def _now(self) -> float:
        return self.ctx.clock().timestamp()

    async def _post_token(self, url: str, headers: dict[str, str]) -> Any:
        return await request_json(self.ctx, "POST", url, service="github", timeout=TIMEOUT_S, headers=headers)

    async def _auth(self) -> dict[str, str]:
        try:
            if self.installation is None:
                jwt = github_app.app_jwt(app_id=self.app_id, private_key=self.key, now=self._now())
                found = await request_json(self.ctx, "GET", f"{self.api}/repos/{self.repo}/installation",
                                           service="github", timeout=TIMEOUT_S, headers=github_app.headers(jwt))
                self.installation = int((found or {}).get("id") or 0) or None
                if self.installation is None:
                    raise ToolError("not_configured", f"the GitHub App is not installed on {self.repo}")
            token = await github_app.installation_token(
                self._post_token, self.ctx.cache, now=self._now(), api_url=self.api, app_id=self.app_id,
                private_key=self.key, installation_id=int(self.installation))
        except github_app.GitHubAppError as exc:
            raise ToolError(exc.reason, exc.message) from None
        return github_app.headers(token)

    async def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        return await request_json(self.ctx, method, f"{self.api}/repos/{self.repo}{path}", service="github",
                                  timeout=TIMEOUT_S, headers=await self._auth(), json_body=body, params=params)


def _files(commit: dict[str, Any]) -> list[dict[str, Any]]:
    files = [f for f in commit.get("files") or [] if isinstance(f, dict) and f.get("filename")]
    if len(files) >= MAX_FILES:
        raise ToolError("conflict", f"the commit touches {len(files)}+ files; revert it by hand")
    return files


def touched_paths(files: list[dict[str, Any]]) -> set[str]:
    out = set()
    for f in files:
        out.add(str(f["filename"]))
        if f.get("previous_filename"):
            out.add(str(f["previous_filename"]))
    return out


def reverse_entries(files: list[dict[str, Any]], parent_tree: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Tree entries that put every path the commit touched back as it was in its parent. Pure."""
    out = []
    for path in sorted(touched_paths(files)):
        before = parent_tree.get(path)
        if before is None:          # added by the commit (or the new name of a rename): delete
            out.append({"path": path, "mode": "100644", "type": "blob", "sha": None})
        else:
            out.append({"path": path, "mode": before["mode"], "type": "blob", "sha": before["sha"]})
    return out


async def _reverted_tree(gh: _GitHub, commit: dict[str, Any], head: str, head_tree: str) -> str:
    sha, parent = commit["sha"], commit["parents"][0]["sha"]
    parent_commit = await gh.call("GET", f"/git/commits/{parent}")
    parent_tree = parent_commit["tree"]["sha"]
    if head == sha:
        return str(parent_tree)
    since = await gh.call("GET", f"/compare/{sha}...{head}")
    if since.get("status") != "ahead":
        raise ToolError("conflict", f"{sha[:7]} is not an ancestor of the default branch head {head[:7]} "
                                    f"({since.get('status')}); nothing was changed")
    files = _files(commit)
    later = [f for f in since.get("files") or [] if isinstance(f, dict)]
    moved = sorted(touched_paths(files) & touched_paths(later)) if len(later) < MAX_FILES else ["(300+ files)"]
    if moved:
        raise ToolError("conflict", f"the default branch has moved on: {', '.join(moved[:5])} changed since "
                                    f"{sha[:7]}, so a clean revert needs a merge; nothing was changed")
    tree = await gh.call("GET", f"/git/trees/{parent_tree}", params={"recursive": "1"})
    if tree.get("truncated"):
        raise ToolError("conflict", "the repository tree is too large to build the revert; revert it by hand")
    blobs = {str(e["path"]): e for e in tree.get("tree") or [] if isinstance(e, dict) and e.get("type") == "blob"}
    made = await gh.call("POST", "/git/trees", {"base_tree": head_tree, "tree": reverse_entries(files, blobs)})
    return str(made["sha"])


def pr_body(*, sha: str, subject: str, action_id: str, rca_link: str | None, run_id: str | None) -> str:
    rca = f"[the root-cause analysis]({rca_link})" if rca_link else f"IncidentFox run `{run_id or 'unknown'}`"
    return (f"This reverts commit {sha}, the top cause in {rca}.\n\n"
            f"> {subject}\n\n"
            "Opened by IncidentFox after an approver approved the proposed fix. Merging it is the human "
            "approval of the revert itself; IncidentFox records who merged it.\n\n"
            f"{marker(action_id)}\n")


async def open_revert_pr(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    repo, ref, action_id = args["repo"], args["sha"].lower(), args["action_id"]
    if not _REPO.fullmatch(repo) or ".." in repo:
        raise ToolError("invalid_arguments", "repo must be owner/name")
    if not _SHA.fullmatch(ref):
        raise ToolError("invalid_arguments", "sha must be a hex commit id (7 to 40 characters)")
    if not _ACTION.fullmatch(action_id):
        raise ToolError("invalid_arguments", "action_id must be a proposed action's id (act_…)")
    gh = _GitHub(ctx, repo)
    claimed = ctx.routing.get("github_repos")
    if repo.lower() not in {str(r).strip().lower() for r in (claimed if isinstance(claimed, list) else [])}:
        # An App shared by an org's teams reaches every team's repositories; a team reverts in its own.
        raise ToolError("forbidden", f"{repo} is not a repository this team claims (routing.github_repos); "
                                     "no pull request is opened there")
    base = str((await gh.call("GET", ""))["default_branch"])
    head = str((await gh.call("GET", f"/git/ref/heads/{base}"))["object"]["sha"])
    commit = await gh.call("GET", f"/commits/{ref}")
    sha = str(commit["sha"])
    if len(commit.get("parents") or []) != 1:
        raise ToolError("conflict", f"{sha[:7]} is a merge or root commit; revert it by hand")
    head_tree = str((await gh.call("GET", f"/git/commits/{head}"))["tree"]["sha"])
    tree = await _reverted_tree(gh, commit, head, head_tree)
    subject = str((commit.get("commit") or {}).get("message") or "").split("\n")[0][:200]
    made = await gh.call("POST", "/git/commits", {
        "message": f'Revert "{subject}"\n\nThis reverts commit {sha}.\n\n{marker(action_id)}\n',
        "tree": tree, "parents": [head]})
    branch = f"incidentfox/revert-{sha[:7]}-{action_id[4:16]}"
    await gh.call("POST", "/git/refs", {"ref": f"refs/heads/{branch}", "sha": made["sha"]})
    pr = await gh.call("POST", "/pulls", {
        "title": f"Revert {sha[:7]}: {subject}", "head": branch, "base": base,
        "body": pr_body(sha=sha, subject=subject, action_id=action_id, rca_link=args.get("rca_link"),
                        run_id=ctx.run_id)})
    data = {"repo": repo, "number": pr.get("number"), "url": pr.get("html_url", ""), "branch": branch,
            "commit": made["sha"], "reverts": sha, "base": base}
    line = f"opened revert pull request {repo}#{data['number']} ({data['url']}) reverting {sha[:7]} on {base}"
    return ToolResult.success(data, evidence=EvidenceBundle(notes=[line]), summary=line)


_spec = spec_builder(category="changes", integration="github", timeout_s=TIMEOUT_S)

SPECS: list[ToolSpec] = [
    _spec(
        TOOL,
        open_revert_pr,
        "Open a pull request that reverts one commit on the repository's default branch (the revert is "
        "refused when it would need a merge). Changes the repository: runs only after a human approves it.",
        s.obj(
            repo=s.string("Repository, owner/name.", max_length=201),
            sha=s.string("The commit to revert (hex, 7-40 characters).", max_length=40),
            action_id=s.string("The proposed action's id (act_…), written into the pull request.", max_length=68),
            rca_link=s.string("Link to the RCA for the pull request's body (null: none).", nullable=True,
                              max_length=2000),
        ),
        mutating=True,
        retries=0,
    ),
]
