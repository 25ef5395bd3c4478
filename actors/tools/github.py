"""GitHub REST tools: recent commits, deployments, pull requests and workflow runs.

``integrations.github``: ``token`` (required), ``api_url`` (default ``https://api.github.com``; GitHub
Enterprise: ``https://host/api/v3``), ``repos`` (list of ``owner/name`` used when a call names none)
and optional ``repo_services`` (``{"owner/name": "service"}``; default service = the repo name).
Everything found becomes :class:`ChangeEvent` evidence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, spec_builder
from actors.tools.convert import changes_result, iso, parse_time
from actors.tools.httpcall import base_url, request_json
from incidentfox.evidence import ChangeEvent, EvidenceBundle

TIMEOUT_S = 20.0
MAX_REPOS = 5


def _repos(config: dict[str, Any], repo: str | None) -> list[str]:
    if repo:
        return [repo]
    repos = config.get("repos") or ([config["repo"]] if config.get("repo") else [])
    if not repos:
        raise ToolError("invalid_arguments", "name a repo (owner/name); integrations.github.repos is empty")
    return list(repos)[:MAX_REPOS]


def _service(config: dict[str, Any], repo: str) -> str:
    return (config.get("repo_services") or {}).get(repo) or repo.split("/")[-1]


async def _get(ctx: ToolContext, config: dict[str, Any], path: str, params: dict[str, Any]) -> Any:
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if config.get("token"):
        headers["Authorization"] = f"Bearer {config['token']}"
    url = f"{base_url(config, service='github', key='api_url', default='https://api.github.com')}{path}"
    return await request_json(
        ctx,
        "GET",
        url,
        service="github",
        timeout=TIMEOUT_S,
        headers=headers,
        params={k: v for k, v in params.items() if v is not None},
    )


async def _per_repo(
    ctx: ToolContext, config: dict[str, Any], repo: str | None, endpoint: str, params: dict[str, Any]
) -> AsyncIterator[tuple[str, Any]]:
    """For each repo to look at (``repo``, else the configured ones; see :func:`_repos`), GET
    ``/repos/<owner/name>/<endpoint>`` and yield ``(repo, body)``, one repo at a time."""
    for name in _repos(config, repo):
        yield name, await _get(ctx, config, f"/repos/{name}/{endpoint}", params)


def commit_change(repo_service: str, c: dict[str, Any], repo: str = "") -> ChangeEvent:
    info = c.get("commit") or {}
    author = (c.get("author") or {}).get("login") or (info.get("author") or {}).get("name", "")
    at = (info.get("committer") or {}).get("date") or (info.get("author") or {}).get("date")
    return ChangeEvent(
        entity=repo_service,
        kind="commit",
        description=(info.get("message") or "").split("\n")[0][:300],
        at=parse_time(at),
        author=author,
        ref=str(c.get("sha", ""))[:12],
        repo=repo,
        sha=str(c.get("sha", "")),
    )


async def recent_commits(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    config = ctx.integration("github")
    since, _ = ctx.window(args["since_minutes"], default=24 * 60)
    changes: list[ChangeEvent] = []
    params = {"sha": args["branch"], "since": iso(since), "per_page": args["limit"] or 30}
    async for repo, items in _per_repo(ctx, config, args["repo"], "commits", params):
        changes += [commit_change(_service(config, repo), c, repo) for c in items]
    return _changes_result(changes, "commits")


async def deployments(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    config = ctx.integration("github")
    since, _ = ctx.window(args["since_minutes"], default=24 * 60)
    changes: list[ChangeEvent] = []
    params = {"environment": args["environment"], "per_page": args["limit"] or 30}
    async for repo, items in _per_repo(ctx, config, args["repo"], "deployments", params):
        for i, d in enumerate(items):
            at = parse_time(d.get("created_at"))
            if at and at < since:
                continue
            state = ""
            if i < 5:  # the newest few get their latest status; older ones are context only
                statuses = await _get(
                    ctx, config, f"/repos/{repo}/deployments/{d['id']}/statuses", {"per_page": 1}
                )
                state = statuses[0].get("state", "") if statuses else ""
            desc = f"deploy {d.get('ref', '')} to {d.get('environment', '')}"
            if d.get("description"):
                desc += f": {d['description']}"
            changes.append(
                ChangeEvent(
                    entity=_service(config, repo),
                    kind="deploy",
                    description=desc + (f" [{state}]" if state else ""),
                    at=at,
                    author=(d.get("creator") or {}).get("login", ""),
                    ref=str(d.get("sha", ""))[:12],
                )
            )
    return _changes_result(changes, "deployments")


async def pull_requests(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    config = ctx.integration("github")
    since, _ = ctx.window(args["since_minutes"], default=24 * 60)
    changes: list[ChangeEvent] = []
    params = {
        "state": args["state"] or "closed",
        "sort": "updated",
        "direction": "desc",
        "per_page": args["limit"] or 30,
    }
    async for repo, items in _per_repo(ctx, config, args["repo"], "pulls", params):
        for pr in items:
            at = parse_time(pr.get("merged_at") or pr.get("updated_at"))
            if at and at < since:
                continue
            merged = " (merged)" if pr.get("merged_at") else ""
            changes.append(
                ChangeEvent(
                    entity=_service(config, repo),
                    kind="pull_request",
                    description=f"#{pr.get('number')} {pr.get('title', '')[:200]}{merged}",
                    at=at,
                    author=(pr.get("user") or {}).get("login", ""),
                    ref=pr.get("html_url", ""),
                    repo=repo,
                    sha=str(pr.get("merge_commit_sha") or "") if pr.get("merged_at") else "",
                )
            )
    return _changes_result(changes, "pull requests")


async def workflow_runs(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    config = ctx.integration("github")
    since, _ = ctx.window(args["since_minutes"], default=24 * 60)
    data: list[dict[str, Any]] = []
    changes: list[ChangeEvent] = []
    notes: list[str] = []
    params = {"branch": args["branch"], "status": args["status"], "per_page": args["limit"] or 30}
    async for repo, body in _per_repo(ctx, config, args["repo"], "actions/runs", params):
        for run in body.get("workflow_runs") or []:
            at = parse_time(run.get("updated_at") or run.get("created_at"))
            if at and at < since:
                continue
            name, conclusion = run.get("name") or "", run.get("conclusion") or run.get("status") or ""
            data.append(
                {
                    "repo": repo,
                    "name": name,
                    "status": run.get("status"),
                    "conclusion": conclusion,
                    "branch": run.get("head_branch"),
                    "sha": str(run.get("head_sha", ""))[:12],
                    "at": iso(at),
                    "url": run.get("html_url"),
                }
            )
            if "deploy" in name.lower() and conclusion == "success":
                changes.append(
                    ChangeEvent(
                        entity=_service(config, repo),
                        kind="deploy",
                        description=f"workflow {name!r} succeeded on {run.get('head_branch')}",
                        at=at,
                        author=(run.get("actor") or {}).get("login", ""),
                        ref=str(run.get("head_sha", ""))[:12],
                    )
                )
            elif conclusion == "failure":
                notes.append(f"{repo}: workflow {name!r} failed on {run.get('head_branch')} at {iso(at)}")
    return ToolResult.success(
        data,
        evidence=EvidenceBundle(changes=changes, notes=notes),
        summary=f"{len(data)} workflow runs, {len(notes)} failed, {len(changes)} deploys",
    )


def _changes_result(changes: list[ChangeEvent], what: str) -> ToolResult:
    """:func:`changes_result`, newest first."""
    changes.sort(key=lambda c: c.at.timestamp() if c.at else 0.0, reverse=True)
    return changes_result(changes, what)


_REPO = s.string(
    "Repository as owner/name (null: the team's configured repos).", nullable=True, max_length=200
)
_SINCE = s.integer(
    "How far back to look, in minutes (null: 1440 = one day).", nullable=True, minimum=1, maximum=30 * 24 * 60
)


_spec = spec_builder(category="changes", integration="github", timeout_s=TIMEOUT_S)


SPECS: list[ToolSpec] = [
    _spec(
        "github_recent_commits",
        recent_commits,
        "List recent commits on a repository branch (message, author, time), newest first.",
        s.obj(
            repo=_REPO,
            branch=s.string("Branch (null: default branch).", nullable=True, max_length=200),
            since_minutes=_SINCE,
            limit=s.LIMIT,
        ),
    ),
    _spec(
        "github_deployments",
        deployments,
        "List recent GitHub deployments (ref, environment, creator, latest status), newest first. A "
        "deploy shortly before an alert is a prime suspect.",
        s.obj(
            repo=_REPO,
            environment=s.string("Environment, e.g. production (null: all).", nullable=True, max_length=100),
            since_minutes=_SINCE,
            limit=s.LIMIT,
        ),
    ),
    _spec(
        "github_pull_requests",
        pull_requests,
        "List recently updated pull requests (default: closed/merged ones), newest first.",
        s.obj(
            repo=_REPO,
            state=s.string(
                "open, closed or all (null: closed).", nullable=True, enum=["open", "closed", "all"]
            ),
            since_minutes=_SINCE,
            limit=s.LIMIT,
        ),
    ),
    _spec(
        "github_workflow_runs",
        workflow_runs,
        "List recent GitHub Actions workflow runs with their conclusion; successful deploy workflows "
        "count as deploys, failures are reported.",
        s.obj(
            repo=_REPO,
            branch=s.string("Branch (null: all).", nullable=True, max_length=200),
            status=s.string(
                "Filter by status/conclusion, e.g. failure, success (null: all).",
                nullable=True,
                max_length=40,
            ),
            since_minutes=_SINCE,
            limit=s.LIMIT,
        ),
    ),
]
