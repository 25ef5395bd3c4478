"""Answer on GitHub through the team's GitHub App.

* a delivery about a failed check or workflow run (``head_sha``) → a check run on that commit
  (``POST /repos/{owner}/{repo}/check-runs``, ``conclusion: neutral``, the RCA as its output, the
  run id as its ``external_id``); an earlier one is found with ``GET
  /repos/{owner}/{repo}/commits/{sha}/check-runs?check_name=…`` by that ``external_id``;
* a comment that asked (``issue_number``, an issue or a pull request) → a comment there
  (``POST /repos/{owner}/{repo}/issues/{number}/comments``); an earlier one is found by the run's
  marker line among the comments since the run started.

Config (``integrations.github``, :class:`config_service.GitHubBlock`): ``answer_back``, ``app_id``,
``private_key``, ``installation_id`` (when the delivery names none), ``api_url``, ``check_run_name``.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime
from typing import Any

from actors.answerback.github_app import app_jwt, headers, installation_token
from actors.answerback.http import AnswerError, Outbound, json_of, send
from actors.answerback.markdown import clip, marker
from actors.answerback.write import Write, require
from config_service import GitHubBlock
from incidentfox.contracts import AnswerTarget

DEFAULT_API = "https://api.github.com"
CHECK_RUN_NAME = "IncidentFox RCA"
COMMENT_MAX = 65_000        # GitHub: 65,536 characters per comment body
SUMMARY_MAX = 65_000        # check run output.summary: 65,535 characters
TITLE_MAX = 250
_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
SERVICE = "github"


def writes(target: AnswerTarget, block: GitHubBlock, *, out: Outbound, run_id: str, title: str, text: str,
           run_link: str | None, since: datetime | None, claimed: Collection[str] | None = None) -> list[Write]:
    """The writes for ``target`` (``bad_config`` when the App is not fully configured).

    ``claimed``: the team's ``routing.github_repos``. When given, the delivery's repository must be
    one of them (``bad_target`` otherwise): an App shared by an org's teams answers a team only in
    its own repositories, whatever a delivery signed with that team's secret names."""
    app_id = require(block.app_id, "integrations.github.app_id", "answering on GitHub needs a GitHub App")
    key = require(block.private_key, "integrations.github.private_key", "answering on GitHub needs a GitHub App")
    app_jwt(app_id=app_id, private_key=key, now=out.clock())   # a key that cannot sign is bad config now
    installation = target.installation_id or block.installation_id
    if installation is None:
        raise AnswerError("bad_config", "the delivery names no GitHub App installation and "
                                        "integrations.github.installation_id is not set")
    repo = target.repo or ""
    if not _REPO_RE.fullmatch(repo) or ".." in repo:
        raise AnswerError("bad_target", "the delivery names no owner/name repository")
    if claimed is not None and repo.lower() not in {str(r).strip().lower() for r in claimed}:
        raise AnswerError("bad_target", f"the delivery's repository {repo} is not one this team claims "
                                        "(routing.github_repos); nothing is written there")
    api = (block.api_url or DEFAULT_API).rstrip("/")

    async def call(method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        # One try: the dispatcher retries the whole find-then-post (a POST answered 5xx may have
        # been written, so its retry looks first).
        token = await installation_token(out, api_url=api, app_id=app_id, private_key=key,
                                         installation_id=installation)
        resp = await send(out, method, f"{api}{path}", service=SERVICE, headers=headers(token),
                          json_body=body, params=params)
        return json_of(resp, service=SERVICE)

    if target.issue_number is not None:
        return [_comment(call, repo, target.issue_number, run_id=run_id, text=text, since=since)]
    if target.head_sha:
        name = block.check_run_name or CHECK_RUN_NAME
        return [_check_run(call, repo, target.head_sha, name=name, run_id=run_id, title=title, text=text,
                           run_link=run_link)]
    return []


def _comment(call: Any, repo: str, number: int, *, run_id: str, text: str, since: datetime | None) -> Write:
    path = f"/repos/{repo}/issues/{number}/comments"

    async def post() -> str:
        return str((await call("POST", path, body={"body": clip(text, COMMENT_MAX)}) or {}).get("id", ""))

    async def find() -> str | None:
        params: dict[str, Any] = {"per_page": 100}
        if since is not None:
            params["since"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        for comment in await call("GET", path, params=params) or []:
            if isinstance(comment, dict) and marker(run_id) in str(comment.get("body") or ""):
                return str(comment.get("id", ""))
        return None

    return Write("github.comment", post=post, find=find)


def _check_run(call: Any, repo: str, sha: str, *, name: str, run_id: str, title: str, text: str,
               run_link: str | None) -> Write:
    async def post() -> str:
        body: dict[str, Any] = {
            "name": name, "head_sha": sha, "status": "completed", "conclusion": "neutral",
            "external_id": run_id,
            "output": {"title": clip(title or "Root-cause analysis", TITLE_MAX), "summary": clip(text, SUMMARY_MAX)},
        }
        if run_link and run_link.startswith("https://"):
            body["details_url"] = run_link
        return str((await call("POST", f"/repos/{repo}/check-runs", body=body) or {}).get("id", ""))

    async def find() -> str | None:
        found = await call("GET", f"/repos/{repo}/commits/{sha}/check-runs",
                           params={"check_name": name, "filter": "all", "per_page": 100})
        for run in (found or {}).get("check_runs") or []:
            if isinstance(run, dict) and run.get("external_id") == run_id:
                return str(run.get("id", ""))
        return None

    return Write("github.check_run", post=post, find=find)


__all__ = ["CHECK_RUN_NAME", "writes"]
