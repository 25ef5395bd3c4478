"""The typed team config: the part of a team's effective config the platform reads.

The config service merges defaults → org → units → team (:mod:`config_service.services.config`);
:class:`EffectiveConfig` is the typed shape of that document and :class:`TeamConfig` the view every
component reads it through. Every key is optional; the defaults are those of
:data:`config_service.core.defaults.DEFAULT_CONFIG`, never restated here. Each field's
``description`` documents it: the config service publishes :func:`team_config_schema` (JSON Schema,
defaults included) at ``GET /api/v1/config/schema``, and ``docs/configuration.md`` is generated from
the same schema (``incidentfox docs config``).

Parsing is strict (no coercion: ``"5"`` is not an integer) and the config service runs the same
model on every write (:func:`config_service.core.validation.validate_config`), so a stored config
always parses. A value of ``null`` means "absent" (RFC 7396). Anything else raises
:class:`InvalidTeamConfig` listing ``{"path", "message"}`` per problem, never the values.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic.json_schema import GenerateJsonSchema

from config_service.core.defaults import DEFAULT_CONFIG, ENGINE_DEFAULT_MODEL
from config_service.metrics_schema import MetricSchema, MetricsSection
from incidentfox.contracts import SUBAGENTS
from incidentfox.errors import IncidentFoxError

AGENTS: tuple[str, ...] = ("planner", *SUBAGENTS)
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


class TeamConfigError(IncidentFoxError):
    """Base of the reader's typed errors."""


class InvalidTeamConfig(TeamConfigError):
    """The document does not fit :class:`EffectiveConfig`; ``details.errors`` names each path."""

    status, code = 422, "invalid_team_config"


class ConfigReadTimeout(TeamConfigError):
    """The config store did not answer in time (the reader bounds every read)."""

    status, code = 503, "config_timeout"


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
        "Per-agent overrides by name (planner or a sub-agent)."))
    tools: dict[str, bool] = _from_defaults("tools", description=(
        "The team's tool allow-list overrides, by tool name (absent: the catalogue's default)."))
    quotas: QuotasSection = Field(default_factory=QuotasSection, description="Limits on the team's runs.")
    sandbox: SandboxSection = Field(default_factory=SandboxSection, description="Sandbox sessions.")
    schedules: list[dict[str, Any]] = _from_defaults("schedules", description=(
        "Scheduled reports and investigations: {id, cron, timezone, kind, destination, prompt} "
        "(actors/scheduler)."))
    access: AccessSection = Field(default_factory=AccessSection, description="Who, in Slack, may act for the team.")

    @field_validator("subagents")
    @classmethod
    def _subagent_names(cls, value: dict[str, bool]) -> dict[str, bool]:
        return _known_names(value, SUBAGENTS)

    @field_validator("agents")
    @classmethod
    def _agent_names(cls, value: dict[str, AgentOverride]) -> dict[str, AgentOverride]:
        return _known_names(value, AGENTS)


class _WithFactoryDefaults(GenerateJsonSchema):
    """JSON Schema with the defaults a ``default_factory`` gives (pydantic leaves those out)."""

    def get_default_value(self, schema: Any) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()
        return super().get_default_value(schema)


def team_config_schema() -> dict[str, Any]:
    """The team config's JSON Schema (validation mode, every default filled in): what
    ``GET /api/v1/config/schema`` serves and ``docs/configuration.md`` documents."""
    schema = EffectiveConfig.model_json_schema(schema_generator=_WithFactoryDefaults)
    schema["title"] = "IncidentFox team config"
    schema["description"] = ("One layer (org, unit or team) of a team's config, and the merged effective "
                             "config. Every key is optional; unknown keys are kept. `null` removes a "
                             "key (RFC 7396 merge patch).")
    return schema


def _drop_nulls(value: Any) -> Any:
    """RFC 7396: a null member is an absent member (lists are values and kept as they are)."""
    if isinstance(value, Mapping):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return value


def config_errors(doc: Any) -> list[dict[str, str]]:
    """``[{"path", "message"}]`` for every place ``doc`` does not fit :class:`EffectiveConfig`."""
    if not isinstance(doc, Mapping):
        return [{"path": "", "message": "a config must be an object"}]
    try:
        EffectiveConfig.model_validate(_drop_nulls(doc))
    except ValidationError as exc:
        return [{"path": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
    except (RecursionError, TypeError, ValueError) as exc:   # pathological input (depth, odd keys)
        return [{"path": "", "message": f"unreadable config ({type(exc).__name__})"}]
    return []


def parse_effective(doc: Any) -> EffectiveConfig:
    """``doc`` as :class:`EffectiveConfig`, or :class:`InvalidTeamConfig` (values never echoed)."""
    if isinstance(doc, Mapping):
        try:
            return EffectiveConfig.model_validate(_drop_nulls(doc))
        except (ValidationError, RecursionError, TypeError, ValueError):
            pass
    raise InvalidTeamConfig("the team's config does not fit the expected shape",
                            details={"errors": config_errors(doc)})


@dataclass(frozen=True)
class AgentSettings:
    """One agent's resolved settings (its ``agents.<name>`` override over the team's defaults)."""

    name: str
    enabled: bool
    instructions: str | None
    max_turns: int
    model: str | None
    playbook: list[tuple[str, dict[str, Any]]] | None = None


class TeamConfig:
    """One team's effective config: the document (``doc``, secrets included: platform-internal) and
    its typed form (``effective``), with the accessors components read. Raises
    :class:`InvalidTeamConfig` when ``doc`` does not parse. Never shows secrets in ``repr``."""

    __slots__ = ("doc", "effective", "org_id", "team_id")

    def __init__(self, doc: Mapping[str, Any] | TeamConfig | None = None, *, org_id: str = "",
                 team_id: str = "") -> None:
        if isinstance(doc, TeamConfig):
            self.doc, self.effective = doc.doc, doc.effective
            self.org_id, self.team_id = org_id or doc.org_id, team_id or doc.team_id
            return
        if doc is not None and not isinstance(doc, Mapping):
            raise InvalidTeamConfig("a team's config must be an object",
                                    details={"errors": config_errors(doc)})
        self.doc: dict[str, Any] = dict(doc or {})
        self.effective: EffectiveConfig = parse_effective(self.doc)
        self.org_id = org_id
        self.team_id = team_id

    def __repr__(self) -> str:
        return f"TeamConfig(org={self.org_id!r}, team={self.team_id!r}, keys={sorted(map(str, self.doc))!r})"

    # placement ------------------------------------------------------------
    @property
    def deployment_mode(self) -> str:
        return self.effective.deployment.mode

    @property
    def max_concurrent_runs(self) -> int:
        return self.effective.quotas.max_concurrent_runs

    # slack ----------------------------------------------------------------
    @property
    def slack_bot_token(self) -> str | None:
        tok = self.effective.integrations.get("slack", {}).get("bot_token")
        return tok if isinstance(tok, str) and tok else None

    @property
    def slack_default_channel(self) -> str | None:
        return self.effective.slack.default_channel

    # investigation --------------------------------------------------------
    @property
    def deadline_s(self) -> float:
        return self.effective.investigation.deadline_s

    @property
    def correlation_window_s(self) -> float:
        """The alert-storm window in seconds; 0 turns correlation off for this team."""
        return self.effective.investigation.correlation_window_s

    @property
    def integrations(self) -> dict[str, Any]:
        return copy.deepcopy(self.effective.integrations)

    @property
    def llm(self) -> LLMConfig | None:
        """The engine's provider config (model defaulted), or None (→ the offline planner)."""
        llm = self.effective.llm
        if llm.provider is None:
            return None
        return llm if llm.model else llm.model_copy(update={"model": ENGINE_DEFAULT_MODEL})

    @property
    def planner_mode(self) -> str:
        """``offline`` or ``llm``: ``investigation.planner`` (auto → llm iff a provider is set)."""
        if self.effective.investigation.planner == "offline" or self.llm is None:
            return "offline"
        return "llm"

    @property
    def metrics(self) -> MetricSchema:
        """The team's metric names and labels, presets resolved (``investigation.metrics``)."""
        return self.effective.investigation.metrics.schema()

    def agent(self, name: str) -> AgentSettings:
        node = self.effective.agents.get(name) or AgentOverride()
        turns = node.max_turns or self.effective.llm.max_turns or self.effective.investigation.max_turns
        playbook = [(s.tool, dict(s.args)) for s in node.playbook] if node.playbook else None
        return AgentSettings(name=name, enabled=self.effective.subagents.get(name, True) and node.enabled,
                             instructions=node.instructions or None, max_turns=turns, model=node.model,
                             playbook=playbook)

    @property
    def enabled_subagents(self) -> list[str]:
        return [n for n in SUBAGENTS if self.agent(n).enabled]

    @property
    def tool_switches(self) -> dict[str, bool]:
        """The team's ``tools: {id: bool}`` allow-list overrides."""
        return dict(self.effective.tools)

    # other sections -------------------------------------------------------
    @property
    def access(self) -> AccessSection:
        return self.effective.access

    @property
    def sandbox(self) -> SandboxSection:
        return self.effective.sandbox


DEFAULT_MAX_CONCURRENT_RUNS: int = _default("quotas", "max_concurrent_runs")
DEFAULT_CORRELATION_WINDOW_S: float = float(_default("investigation", "correlation_window_s"))


def max_concurrent_runs(doc: Mapping[str, Any] | TeamConfig | None, default: int | None = None) -> int:
    """The team's ``quotas.max_concurrent_runs``: the one reader of the quota (the pool's dispatcher
    and the scheduler's batches). ``default`` applies only when ``doc`` sets no quota."""
    cfg = TeamConfig(doc)
    if default is not None and "max_concurrent_runs" not in (cfg.doc.get("quotas") or {}):
        return default
    return cfg.max_concurrent_runs
