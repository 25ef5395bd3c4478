"""The sections of the typed team config (:class:`EffectiveConfig` and its parts), one model per
top-level key; :mod:`config_service.team_config` is the reader every component uses and re-exports
these. Defaults are read from :data:`config_service.core.defaults.DEFAULT_CONFIG`, never restated."""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
)

from config_service.core.defaults import DEFAULT_CONFIG, ENGINE_DEFAULT_MODEL
from config_service.metrics_schema import MetricsSection
from incidentfox.contracts import SUBAGENTS

# The agents a team may override: the planner, the evidence specialists, and the LLM planner's
# knowledge-base specialist (docs/knowledge.md).
AGENTS: tuple[str, ...] = ("planner", *SUBAGENTS, "knowledge")
PROVIDERS: tuple[str, ...] = ("openai", "openai_compatible", "anthropic")
MAX_ACCESS_IDS = 1000


def _default(*path: str) -> Any:
    node: Any = DEFAULT_CONFIG
    for key in path:
        node = node[key]
    return copy.deepcopy(node)


def _from_defaults(*path: str, **field: Any) -> Any:
    """A field whose default is read from DEFAULT_CONFIG (a fresh copy for lists and dicts);
    ``field`` are the other :func:`~pydantic.Field` arguments (constraints, ``description``)."""
    return Field(default_factory=lambda: _default(*path), **field)


class _Section(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore", allow_inf_nan=False)


NonEmpty = Annotated[str, StringConstraints(pattern=r"\S", max_length=4096)]
McpName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# Slack users are U…/W… (Enterprise Grid), user groups S…
SlackPrincipal = Annotated[str, StringConstraints(pattern=r"^[UWS][A-Z0-9]{2,30}$")]
GitHubLogin = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")]


class DeploymentSection(_Section):
    mode: Literal["shared", "dedicated"] = _from_defaults("deployment", "mode", description=(
        "`shared`: the team's runs use the platform's shared actors; `dedicated`: they run only on "
        "its own worker group (Ray resource `team_<org>_<team>`, `incidentfox cluster provision`)."))
    resources: dict[str, Any] = _from_defaults("deployment", "resources", description=(
        "A dedicated team's worker size and group bounds (cluster/placement.py); needed when "
        "`mode` is `dedicated`."))


class SlackSection(_Section):
    default_channel: NonEmpty | None = Field(default=None, description=(
        "Channel to post to when the trigger has no Slack thread (e.g. an alert or a schedule)."))


class McpAttachment(_Section):
    """One MCP server from the platform allow-list, attached to a team's sub-agents."""

    name: McpName = Field(description="A server name from the platform's MCP allow-list (checked at write).")
    subagents: list[Literal[SUBAGENTS]] = Field(default_factory=list, description=(  # type: ignore[valid-type]
        "Sub-agents that get its tools; empty: every sub-agent."))
    tools: dict[str, Literal["read_only", "mutating"]] = Field(default_factory=dict, max_length=500, description=(
        "The team's word per tool; a server's readOnlyHint/destructiveHint wins, an unmarked tool without "
        "hints is mutating (a mutating call waits for an approver)."))


class InvestigationSection(_Section):
    deadline_s: float = _from_defaults("investigation", "deadline_s", gt=0, description=(
        "A run ends with what it has after this many seconds."))
    correlation_window_s: float = _from_defaults("investigation", "correlation_window_s", ge=0, description=(
        "Alerts on a running incident's service or fingerprint this recent join it (the gateway's "
        "alert-storm window), in seconds; 0 turns correlation off."))
    max_turns: int = _from_defaults("investigation", "max_turns", ge=1, description=(
        "Default agent turns (each agent's `max_turns` or `llm.max_turns` overrides it)."))
    planner: Literal["auto", "offline", "llm"] = _from_defaults("investigation", "planner", description=(
        "`offline`: the scripted planner; `llm`: the model; `auto`: `llm` when `llm.provider` is set."))
    followup_rounds: int = _from_defaults("investigation", "followup_rounds", ge=0, description=(
        "Offline planner: rounds of follow-up calls after the playbooks (hypotheses from the evidence so "
        "far, e.g. a crash-looping pod's previous logs); 0 turns follow-ups off."))
    max_tool_calls: int = _from_defaults("investigation", "max_tool_calls", ge=0, description=(
        "Offline planner: the most tool calls of one run, playbooks included; follow-ups stop there."))
    time_budget_s: float = _from_defaults("investigation", "time_budget_s", gt=0, description=(
        "Offline planner: no follow-up round starts once the run has taken this many seconds; the run "
        "ranks what it has and the RCA says the budget ended the follow-ups (`deadline_s` is the hard cut)."))
    mcp_servers: list[McpAttachment] = Field(default_factory=list, max_length=20, description=(
        "MCP servers (from the platform allow-list) whose tools the LLM sub-agents may call."))
    metrics: MetricsSection = Field(default_factory=MetricsSection, description=(
        "Metric names and labels of the team's exporters (presets and overrides; the offline "
        "planner's PromQL and call-graph query are built from them)."))


class LLMConfig(_Section):
    """A team's ``llm`` section: the one model config of the engine's agents and the sandbox agent.
    ``api_key`` is a :class:`~pydantic.SecretStr`; :meth:`reveal_api_key` is for the client only."""

    provider: Literal["openai", "openai_compatible", "anthropic"] | None = Field(default=None, description=(
        "The model provider; unset: no model (the offline planner)."))
    model: NonEmpty | None = Field(default=None, description=(
        f"Model name; unset: {ENGINE_DEFAULT_MODEL} for the engine (the sandbox agent needs one)."))
    base_url: NonEmpty | None = Field(default=None, description=(
        "Provider endpoint (openai_compatible, anthropic or a local server); checked by the egress policy."))
    api_key: SecretStr | None = Field(default=None, description=(
        "The provider's key: a secret (stored encrypted, masked in every read)."))
    request_timeout_s: float = _from_defaults("llm", "request_timeout_s", gt=0, le=3600, description=(
        "Bound of one model request of the engine, in seconds."))
    max_turns: int | None = Field(default=None, ge=1, description=(
        "Overrides `investigation.max_turns` for every agent."))
    max_tokens: int = _from_defaults("llm", "max_tokens", gt=0, le=64_000, description=(
        "The sandbox agent's output tokens per model call."))
    system_prompt: str | None = Field(default=None, max_length=100_000, description=(
        "Appended to the sandbox agent's system prompt."))

    def reveal_api_key(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None


class PlaybookStep(_Section):
    tool: NonEmpty = Field(description="Tool name (docs/tools.md).")
    args: dict[str, Any] = Field(default_factory=dict, description="The tool's arguments.")


class AgentOverride(_Section):
    enabled: bool = Field(default=True, description="False turns the agent off.")
    instructions: str | None = Field(default=None, max_length=100_000, description=(
        "Replaces the agent's built-in instructions."))
    max_turns: int | None = Field(default=None, ge=1, description="The agent's turns.")
    model: NonEmpty | None = Field(default=None, description="The agent's model (same provider).")
    playbook: list[PlaybookStep] | None = Field(default=None, description=(
        "The offline planner's tool calls for this agent; unset: the built-in ones."))


class QuotasSection(_Section):
    max_concurrent_runs: int = _from_defaults("quotas", "max_concurrent_runs", ge=1, description=(
        "Runs of this team dispatched at once (pool and scheduler); more wait in the queue."))


class SandboxSection(_Section):
    ttl_s: float | None = Field(default=None, gt=0, le=7 * 24 * 3600, description=(
        "Idle lifetime of a session, in seconds; unset: INCIDENTFOX_SANDBOX_TTL_S."))
    mcp_servers: list[McpName] = _from_defaults("sandbox", "mcp_servers", description=(
        "Names of the team's MCP servers sessions may use."))
    network: bool = _from_defaults("sandbox", "network", description=(
        "Whether session commands get network access (through the egress policy)."))
    max_open_sessions: int = _from_defaults("sandbox", "max_open_sessions", ge=1, le=1000, description=(
        "Open sessions the team may hold at once (the sandbox API answers 429 past it)."))
    mcp_read_only: list[str] = _from_defaults("sandbox", "mcp_read_only", max_length=500, description=(
        "MCP tools the team declares read-only (`<server>/<tool>` or `<server>/*`), for tools whose "
        "server gives no readOnlyHint; any other unknown tool needs an approval."))


class AccessSection(_Section):
    """Who, in Slack, may act for the team. Empty lists: nobody beyond the platform's defaults."""

    approvers: list[SlackPrincipal] = _from_defaults("access", "approvers", max_length=MAX_ACCESS_IDS,
                                                     description=(
        "Slack users (U…/W…) or user groups (S…) who may approve a run's gated tool calls."))
    sandbox_users: list[SlackPrincipal] = _from_defaults("access", "sandbox_users", max_length=MAX_ACCESS_IDS,
                                                         description=(
        "Slack users or user groups who may open sandbox sessions from Slack."))
    responders: list[SlackPrincipal] = _from_defaults("access", "responders", max_length=MAX_ACCESS_IDS,
                                                      description=(
        "Slack users or user groups on call for the team: a reply of theirs in an investigation's "
        "thread is a turn of it (docs/slack.md). Empty: anyone in the team's channel."))
    non_responder_replies: Literal["refuse", "ignore"] = _from_defaults(
        "access", "non_responder_replies", description=(
            "What a thread reply from someone not in `responders` gets: `refuse` (a polite ephemeral "
            "note) or `ignore`. Either way it is recorded and changes nothing."))
    api_approvals: bool = _from_defaults("access", "api_approvals", description=(
        "Whether team and impersonation tokens may approve or deny tool calls over the API (admins "
        "always may; docs/security.md)."))
    github_approvers: list[GitHubLogin] = _from_defaults("access", "github_approvers", max_length=MAX_ACCESS_IDS,
                                                         description=(
        "GitHub logins whose merge of a revert pull request IncidentFox opened counts as an approved "
        "revert (docs/engine.md). A merge by anyone else is recorded as by a non-approver."))


class KnowledgeEmbeddings(_Section):
    """An OpenAI-compatible embeddings endpoint (``POST {base_url}/embeddings``)."""

    base_url: NonEmpty = Field(description="The endpoint's base URL (checked by the egress policy).")
    model: NonEmpty = Field(description="The embedding model's name.")
    api_key: SecretStr | None = Field(default=None, description=(
        "The endpoint's key: a secret (stored encrypted, masked in every read)."))


class KnowledgeSection(_Section):
    """The team's knowledge base: runbooks, postmortems and past incidents (docs/knowledge.md)."""

    enabled: bool = _from_defaults("knowledge", "enabled", description=(
        "Whether investigations consult the knowledge base (tools `search_runbooks`, "
        "`similar_incidents`, the `knowledge` sub-agent) and cite what they used."))
    top_k: int = _from_defaults("knowledge", "top_k", ge=1, le=20, description=(
        "Results a knowledge search returns at most."))
    past_incidents: bool = _from_defaults("knowledge", "past_incidents", description=(
        "Whether every finished investigation becomes a past-incident document of the team."))
    summaries: Literal["auto", "extractive"] = _from_defaults("knowledge", "summaries", description=(
        "RAPTOR cluster summaries: `auto` uses the team's `llm` when one is configured, else the "
        "offline extractive summariser; `extractive` always the offline one."))
    rebuild_interval_s: float = _from_defaults("knowledge", "rebuild_interval_s", ge=0, le=86_400, description=(
        "The knowledge app's sweep rebuilds a changed index at most once per this many seconds, and "
        "only once it has settled (a burst of finished runs costs one rebuild after it; runs never "
        "rebuild); 0: at every sweep that finds it settled."))
    embeddings: KnowledgeEmbeddings | None = Field(default=None, description=(
        "An OpenAI-compatible embeddings endpoint; unset: the offline embedder that ships with "
        "IncidentFox. After changing it, rebuild the team's index (`POST /api/v1/knowledge/rebuild`)."))

    def reveal_api_key(self) -> str | None:
        emb = self.embeddings
        return emb.api_key.get_secret_value() if emb is not None and emb.api_key is not None else None


def _known_names(value: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValueError(f"unknown agent name(s) {unknown}; known: {list(allowed)}")
    return value


class EffectiveConfig(_Section):
    """The typed effective config. Unknown keys are ignored here (and kept in the document)."""

    deployment: DeploymentSection = Field(default_factory=DeploymentSection, description=(
        "Where the team's runs execute."))
    slack: SlackSection = Field(default_factory=SlackSection, description="Slack delivery.")
    routing: dict[str, Any] = _from_defaults("routing", description=(
        "Identifiers that route a trigger to this team (team nodes only), each a list: "
        "slack_channel_ids, github_repos, pagerduty_service_ids, incidentio_team_ids, "
        "alertmanager_receivers, services. An identifier belongs to one team."))
    # Free-form per-integration blocks that hold secrets (tokens, keys): never in a repr.
    integrations: dict[str, dict[str, Any]] = _from_defaults("integrations", repr=False, description=(
        "Per-integration blocks: the tool backends' credentials and endpoints (docs/tools.md), e.g. "
        "`slack.bot_token`, `demo.enabled`, `aws.role_arn`. Secret values are stored encrypted."))
    investigation: InvestigationSection = Field(default_factory=InvestigationSection, description=(
        "How runs investigate."))
    llm: LLMConfig = Field(default_factory=LLMConfig, description=(
        "The one model of the engine's agents and the sandbox agent."))
    subagents: dict[str, bool] = _from_defaults("subagents", description=(
        f"Sub-agents switched on or off by name ({', '.join(SUBAGENTS)}); absent: on."))
    agents: dict[str, AgentOverride] = _from_defaults("agents", description=(
        "Per-agent overrides by name (planner, a sub-agent, or `knowledge`: the LLM planner's knowledge specialist)."))
    tools: dict[str, bool] = _from_defaults("tools", description=(
        "The team's tool allow-list overrides, by tool name (absent: the catalogue's default)."))
    quotas: QuotasSection = Field(default_factory=QuotasSection, description="Limits on the team's runs.")
    sandbox: SandboxSection = Field(default_factory=SandboxSection, description="Sandbox sessions.")
    schedules: list[dict[str, Any]] = _from_defaults("schedules", description=(
        "Scheduled reports and investigations: {id, cron, timezone, kind, destination, prompt} "
        "(actors/scheduler); destination.slack_channel (default: slack.default_channel) must be a channel "
        "the team claims in routing.slack_channel_ids, or its default channel while no other team claims it."))
    access: AccessSection = Field(default_factory=AccessSection, description="Who, in Slack, may act for the team.")
    knowledge: KnowledgeSection = Field(default_factory=KnowledgeSection, description=(
        "The knowledge base investigations consult and write past incidents to."))

    @field_validator("subagents")
    @classmethod
    def _subagent_names(cls, value: dict[str, bool]) -> dict[str, bool]:
        return _known_names(value, SUBAGENTS)

    @field_validator("agents")
    @classmethod
    def _agent_names(cls, value: dict[str, AgentOverride]) -> dict[str, AgentOverride]:
        return _known_names(value, AGENTS)
