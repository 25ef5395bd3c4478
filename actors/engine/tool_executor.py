"""ToolExecutor: async Ray actors that run tool calls, many at once, and record each one.

Sub-agents never start one Ray task per tool call (a probe found that chokes a 2-core node); they
call ``ToolExecutor.call`` on a small pool of these actors (``num_cpus=0``, high
``max_concurrency``), so hundreds of I/O-bound calls share a few event loops.

Each call:

* is refused (``not_allowed``) unless the tool is in the team's allow-list computed from the run's
  config snapshot, whatever a prompt asked for;
* goes through :func:`actors.tools.execute.execute` (validation, approval gate for mutating tools,
  per-attempt timeout, bounded retry, size bounds, masking);
* is recorded as a ``tool_calls`` row (arguments masked, start, end, status, result size), also when
  it is cancelled mid-flight; rows are written in batches by :class:`actors.engine.run_writer.RunWriter`.

One :class:`~actors.tools.base.ToolContext` is kept per run (bounded LRU), so the demo world a run
investigates is the same world for all its calls.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ray

from actors.tools import aws_client
from actors.tools.base import ToolContext, ToolResult, ToolSpec
from actors.tools.execute import execute, mask_arguments
from incidentfox import metrics
from incidentfox.db import make_async_engine, session_factory
from incidentfox.egress import use_database
from incidentfox.egress.guard import PolicyLike

MAX_CONTEXTS = 4096
RECORD_TIMEOUT_S = 30.0


@dataclass
class ToolCallRequest:
    run_id: str
    org_id: str
    team_id: str
    agent: str
    tool: str
    args: dict[str, Any]
    integrations: dict[str, Any] = field(repr=False)
    allowed: frozenset[str] = frozenset()
    approved: bool = False
    approval_timeout_s: float = 0.0     # how long a mutating call may wait for a human's approval
    want_data: bool = True              # False: return evidence and summary only (the offline planner)
    mcp: Any = None                     # an actors.tools.mcp.McpTool: the call is to an MCP server's tool
    routing: dict[str, Any] = field(default_factory=dict)   # the team's routing claims (ToolContext.routing)
    knowledge: Any = field(default=None, repr=False)   # actors.tools.knowledge_bases.TeamKnowledge of the run


@dataclass
class ToolOutcome:
    result: ToolResult
    started_at: float     # unix seconds
    finished_at: float

    @property
    def duration_s(self) -> float:
        return self.finished_at - self.started_at


def _specs() -> dict[str, ToolSpec]:
    from actors.tools.registry import TOOLS

    if isinstance(TOOLS, dict):
        return dict(TOOLS)
    return {spec.name: spec for spec in TOOLS}


def _ts(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, tz=UTC)


class ToolExecutorCore:
    """The actor's logic, usable without Ray (unit tests, benchmarks of the logic alone)."""

    def __init__(self, database_url: str | None, *, slack_api_url: str = "", egress: PolicyLike | None = None,
                 knowledge_store: Any = None) -> None:
        self._slack_api_url = slack_api_url
        self._knowledge_store = knowledge_store   # ObjectStoreConfig of the knowledge base (None: settings')
        if egress is None and database_url:
            use_database(database_url)   # the global admin's allow-list lives in this database
        self._egress = egress           # None: the process's egress policy
        self._sessions = None
        self._contexts: OrderedDict[str, ToolContext] = OrderedDict()
        self._specs: dict[str, ToolSpec] | None = None
        self._writer = None
        if database_url:
            from actors.engine.run_writer import RunWriter

            self._engine = make_async_engine(database_url)
            self._sessions = session_factory(self._engine)
            self._writer = RunWriter(self._sessions)
        from actors.engine.mcp_attach import AllowlistCache

        self._mcp_allowlist = AllowlistCache(self._sessions)
        self._knowledge_bases: Any = None    # the process's KnowledgeBases, built on the first knowledge call
        self.active = 0

    def knowledge_bases(self) -> Any:
        if self._knowledge_bases is None:
            from actors.engine.knowledge_use import process_knowledge_bases

            self._knowledge_bases = process_knowledge_bases(self._knowledge_store)
        return self._knowledge_bases

    def specs(self) -> dict[str, ToolSpec]:
        if self._specs is None:
            self._specs = _specs()
        return self._specs

    def _context(self, req: ToolCallRequest) -> ToolContext:
        ctx = self._contexts.get(req.run_id)
        if ctx is None:
            ctx = ToolContext(integrations=req.integrations, org_id=req.org_id, team_id=req.team_id,
                              run_id=req.run_id, egress=self._egress, sessions=self._sessions,
                              routing=req.routing,
                              knowledge=req.knowledge,
                              knowledge_bases=self.knowledge_bases() if req.knowledge is not None else None)
            self._contexts[req.run_id] = ctx
            while len(self._contexts) > MAX_CONTEXTS:
                self._contexts.popitem(last=False)
        else:
            self._contexts.move_to_end(req.run_id)
        return ctx

    async def call(self, req: ToolCallRequest) -> ToolOutcome:
        started = time.time()
        self.active += 1
        spec = self.specs().get(req.tool)
        ctx = self._context(req)
        status, result = "cancelled", None
        recorded: asyncio.Future[None] | None = None
        try:
            if req.mcp is not None and req.mcp.name == req.tool and spec is None:
                from actors.engine.mcp_attach import spec_for_call

                spec = await spec_for_call(self._mcp_allowlist, req.mcp)
            if spec is None:
                result = ToolResult.failure("unknown_tool", f"no tool named {req.tool!r}")
            elif req.tool not in req.allowed:
                result = ToolResult.failure("not_allowed",
                                            f"{req.tool} is not in this team's tool allow-list")
            else:
                result = await execute(spec, req.args, ctx, approved=req.approved)
                if result.error == "approval_required" and self._sessions is not None:
                    result = await self._with_approval(spec, req, ctx)
            status = result.status
            finished = time.time()
            recorded = self._record(req, ctx, started, status, result)
            if recorded is not None:
                # The result goes back only once its record is durable (group commit, bounded).
                async with asyncio.timeout(RECORD_TIMEOUT_S):
                    await asyncio.shield(recorded)
            if not req.want_data:   # the raw data is for a model; don't ship it between processes
                result = result.model_copy(update={"data": None})
            return ToolOutcome(result=result, started_at=started, finished_at=finished)
        finally:
            self.active -= 1
            if recorded is None:   # cancelled (or failed) before recording: record it anyway
                self._record(req, ctx, started, status, result)
            # A model may name any tool: label unknown names as one bounded value.
            metrics.TOOL_CALL_SECONDS.observe(time.time() - started,
                                             tool=req.tool if spec is not None else "unknown", status=status)

    def _record(self, req: ToolCallRequest, ctx: ToolContext, started: float, status: str,
                result: ToolResult | None) -> asyncio.Future[None] | None:
        if self._writer is None:
            return None
        return self._writer.tool_call({
            "run_id": req.run_id, "agent": req.agent, "tool": req.tool,
            "arguments": mask_arguments(req.args, secrets=ctx.secret_values()),
            "started_at": _ts(started), "finished_at": _ts(time.time()), "status": status,
            "result_size": result.result_size if result else 0,
            "result": ({"summary": result.summary, "error": result.error, "truncated": result.truncated,
                        "attempts": result.attempts} if result else None),
            "error": (result.message or result.error) if result and not result.ok else
                     ("cancelled" if result is None else None),
        })

    async def _with_approval(self, spec: ToolSpec, req: ToolCallRequest, ctx: ToolContext) -> ToolResult:
        """Wait for a human's decision on a mutating call (actors.engine.approvals); run it only if approved."""
        from actors.engine.approvals import await_approval

        masked = mask_arguments(req.args, secrets=ctx.secret_values())
        decision = await await_approval(self._sessions, run_id=req.run_id, tool=req.tool, arguments=masked,
                                        timeout_s=req.approval_timeout_s,
                                        post=lambda approval_id: self._post_approval(req, approval_id, masked))
        if decision == "approved":
            return await execute(spec, req.args, ctx, approved=True)
        return ToolResult.failure(f"approval_{decision}",
                                  f"{req.tool} was not run: approval {decision} (nothing was changed)")

    async def _post_approval(self, req: ToolCallRequest, approval_id: str, masked: dict[str, Any]) -> None:
        from actors.slack.client import slack_client
        from actors.slack.reporter import approval_blocks
        from incidentfox.runs import store

        token = ((req.integrations.get("slack") or {}) if isinstance(req.integrations.get("slack"), dict)
                 else {}).get("bot_token")
        async with self._sessions() as s:
            run = await store.get_run(s, req.run_id)
        msg = (run.slack_message or {}) if run else {}
        channel = msg.get("channel") or (run.thread_channel if run else None)
        if not token or not channel or not self._slack_api_url:
            return
        async with slack_client(token=token, base_url=self._slack_api_url) as client:
            await client.chat_postMessage(channel=channel, thread_ts=msg.get("ts") or (run.thread_ts if run else None),
                                          text=f"Approval needed: {req.tool}",
                                          blocks=approval_blocks(run_id=req.run_id, approval_id=approval_id,
                                                                 tool=req.tool, arguments=masked))

    async def list_mcp(self, req: ToolCallRequest, attachments: list[dict[str, Any]]) -> Any:
        """The tools of the run's attached MCP servers (:func:`actors.engine.mcp_attach.list_attached`),
        reached with this run's context (egress policy)."""
        from actors.engine.mcp_attach import list_attached

        return await list_attached(self._mcp_allowlist, attachments, self._context(req))

    def forget(self, run_id: str) -> None:
        """Drop the run's context and with it the run's decrypted integrations (called at run end),
        including the AWS clients and assumed-role keys built for it."""
        self._contexts.pop(run_id, None)
        aws_client.forget_run(run_id)

    def held_runs(self) -> list[str]:
        """The runs whose context (credentials) this executor holds now."""
        return list(self._contexts)

    async def flush(self) -> None:
        if self._writer is not None:
            await self._writer.flush()


@ray.remote(num_cpus=0, max_concurrency=1000)
class ToolExecutor:
    """A named async actor hosting many concurrent tool calls (see the module docstring)."""

    def __init__(self, database_url: str | None, slack_api_url: str = "", knowledge_store: Any = None) -> None:
        from incidentfox.logs import configure_process_logging

        configure_process_logging()
        self._core = ToolExecutorCore(database_url, slack_api_url=slack_api_url, knowledge_store=knowledge_store)
        self._core.specs()   # import every backend now, not on the first call

    async def call(self, req: ToolCallRequest) -> ToolOutcome:
        return await self._core.call(req)

    async def list_mcp(self, req: ToolCallRequest, attachments: list[dict[str, Any]]) -> Any:
        return await self._core.list_mcp(req, attachments)

    async def call_many(self, reqs: list[ToolCallRequest]) -> list[ToolOutcome]:
        """Several calls at once (a playbook's or a follow-up round's), in one Ray round trip; each is
        run and recorded as by :meth:`call`. Outcomes in request order."""
        return list(await asyncio.gather(*(self._core.call(r) for r in reqs)))

    async def forget(self, run_id: str) -> None:
        self._core.forget(run_id)

    async def held_runs(self) -> list[str]:
        return self._core.held_runs()

    async def flush(self) -> None:
        await self._core.flush()

    async def load(self) -> int:
        return self._core.active

    async def ping(self) -> bool:
        await asyncio.sleep(0)
        return True
