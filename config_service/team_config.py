"""The typed team config: the part of a team's effective config the platform reads.

The config service merges defaults → org → units → team (:mod:`config_service.services.config`);
:class:`EffectiveConfig` is the typed shape of that document and :class:`TeamConfig` the view every
component reads it through. Every key is optional; the defaults are those of
:data:`config_service.core.defaults.DEFAULT_CONFIG` (shown below), never restated here:

```yaml
deployment: {mode: shared, resources: {}}   # or dedicated → Ray resource team_<org>_<team>
slack: {default_channel: null}              # where to post when the trigger has no thread
integrations:
  slack: {bot_token: xoxb-…}                # secret; never leaves the Slack client
  demo: {enabled: true}                     # investigate the seeded demo world
  <integration>: {…}                        # tool backends, see actors/tools/
investigation:
  deadline_s: 300                           # the run ends with what it has (> 0)
  correlation_window_s: 600                 # alerts on a running incident's service/fingerprint this
                                            #   recent join it (the gateway's alert-storm window); 0: off
  max_turns: 20                             # default agent turns (>= 1)
  planner: auto                             # auto | offline | llm (auto: llm when a provider is set)
llm:                                        # ONE model: the engine's agents and the sandbox agent
  provider: null                            # openai | openai_compatible | anthropic; null → offline
  model: null                               # engine default gpt-4.1; the sandbox requires one
  base_url: null                            # openai_compatible / anthropic (or a local test server)
  api_key: …                                # secret (SecretStr: never in a repr or a log line)
  request_timeout_s: 60                     # per model request (engine)
  max_turns: null                           # overrides investigation.max_turns for every agent
  max_tokens: 4096                          # sandbox agent, per model call
  system_prompt: null                       # sandbox agent, appended to its system prompt
subagents: {kubernetes: true, …}            # enabled sub-agents (absent → enabled); names from
                                            #   incidentfox.contracts.SUBAGENTS
agents:                                     # per-agent overrides: planner or a sub-agent
  <agent>: {enabled: true, instructions: null, max_turns: null, model: null,
            playbook: [{tool: …, args: {…}}]}  # the offline planner's calls (absent → built-in)
tools: {<tool name>: true|false}            # the team's tool allow-list (absent → catalogue default)
quotas: {max_concurrent_runs: 5}            # runs of this team dispatched at once (pool, scheduler)
sandbox: {ttl_s: null, mcp_servers: [], network: false}  # ttl null → INCIDENTFOX_SANDBOX_TTL_S
schedules: []                               # scheduled reports/investigations (actors/scheduler)
access:                                     # Slack user (U…/W…) or user-group (S…) ids
  approvers: []                             # may approve a run's gated tool calls
  sandbox_users: []                         # may open sandbox sessions from Slack
  responders: []                            # are the team's on-call responders
```

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

from config_service.core.defaults import DEFAULT_CONFIG, ENGINE_DEFAULT_MODEL
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


def _from_defaults(*path: str) -> Any:
    """A field default read from DEFAULT_CONFIG (a fresh copy for lists and dicts)."""
    return Field(default_factory=lambda: _default(*path))


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


class DeploymentSection(_Section):
    mode: Literal["shared", "dedicated"] = _from_defaults("deployment", "mode")
    resources: dict[str, Any] = _from_defaults("deployment", "resources")


class SlackSection(_Section):
    default_channel: NonEmpty | None = None


class InvestigationSection(_Section):
    deadline_s: float = Field(gt=0, default_factory=lambda: _default("investigation", "deadline_s"))
    correlation_window_s: float = Field(ge=0, default_factory=lambda: _default("investigation",
                                                                               "correlation_window_s"))
    max_turns: int = Field(ge=1, default_factory=lambda: _default("investigation", "max_turns"))
    planner: Literal["auto", "offline", "llm"] = _from_defaults("investigation", "planner")


class LLMConfig(_Section):
    """A team's ``llm`` section: the one model config of the engine's agents and the sandbox agent.
    ``api_key`` is a :class:`~pydantic.SecretStr`; :meth:`reveal_api_key` is for the client only."""

    provider: Literal["openai", "openai_compatible", "anthropic"] | None = None
    model: NonEmpty | None = None
    base_url: NonEmpty | None = None
    api_key: SecretStr | None = None
    request_timeout_s: float = Field(gt=0, le=3600,
                                     default_factory=lambda: _default("llm", "request_timeout_s"))
    max_turns: int | None = Field(default=None, ge=1)
    max_tokens: int = Field(gt=0, le=64_000, default_factory=lambda: _default("llm", "max_tokens"))
    system_prompt: str | None = Field(default=None, max_length=100_000)

    def reveal_api_key(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None


class PlaybookStep(_Section):
    tool: NonEmpty
    args: dict[str, Any] = Field(default_factory=dict)


class AgentOverride(_Section):
    enabled: bool = True
    instructions: str | None = Field(default=None, max_length=100_000)
    max_turns: int | None = Field(default=None, ge=1)
    model: NonEmpty | None = None
    playbook: list[PlaybookStep] | None = None


class QuotasSection(_Section):
    max_concurrent_runs: int = Field(ge=1, default_factory=lambda: _default("quotas", "max_concurrent_runs"))


class SandboxSection(_Section):
    ttl_s: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    mcp_servers: list[McpName] = _from_defaults("sandbox", "mcp_servers")
    network: bool = _from_defaults("sandbox", "network")
    # Open sessions a team may hold at once (the sandbox API answers 429 past it).
    max_open_sessions: int = Field(ge=1, le=1000, default_factory=lambda: _default("sandbox", "max_open_sessions"))
    # MCP tools the team declares read-only ("<server>/<tool>" or "<server>/*"): only for tools whose
    # server gives no readOnlyHint; anything else unknown needs an approval (actors/sandbox/approvals.py).
    mcp_read_only: list[str] = Field(max_length=500, default_factory=lambda: _default("sandbox", "mcp_read_only"))


class AccessSection(_Section):
    """Who, in Slack, may act for the team. Empty lists: nobody beyond the platform's defaults."""

    approvers: list[SlackPrincipal] = Field(max_length=MAX_ACCESS_IDS,
                                            default_factory=lambda: _default("access", "approvers"))
    sandbox_users: list[SlackPrincipal] = Field(max_length=MAX_ACCESS_IDS,
                                                default_factory=lambda: _default("access", "sandbox_users"))
    responders: list[SlackPrincipal] = Field(max_length=MAX_ACCESS_IDS,
                                             default_factory=lambda: _default("access", "responders"))
    # Team and impersonation tokens may approve or deny tool calls over the API only when this is
    # true (admins always may): actors/engine/approvals.py, docs/security.md.
    api_approvals: bool = Field(default_factory=lambda: _default("access", "api_approvals"))


def _known_names(value: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValueError(f"unknown agent name(s) {unknown}; known: {list(allowed)}")
    return value


class EffectiveConfig(_Section):
    """The typed effective config. Unknown keys are ignored here (and kept in the document)."""

    deployment: DeploymentSection = Field(default_factory=DeploymentSection)
    slack: SlackSection = Field(default_factory=SlackSection)
    routing: dict[str, Any] = _from_defaults("routing")
    # Free-form per-integration blocks that hold secrets (tokens, keys): never in a repr.
    integrations: dict[str, dict[str, Any]] = Field(default_factory=lambda: _default("integrations"), repr=False)
    investigation: InvestigationSection = Field(default_factory=InvestigationSection)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    subagents: dict[str, bool] = _from_defaults("subagents")
    agents: dict[str, AgentOverride] = _from_defaults("agents")
    tools: dict[str, bool] = _from_defaults("tools")
    quotas: QuotasSection = Field(default_factory=QuotasSection)
    sandbox: SandboxSection = Field(default_factory=SandboxSection)
    schedules: list[dict[str, Any]] = _from_defaults("schedules")
    access: AccessSection = Field(default_factory=AccessSection)

    @field_validator("subagents")
    @classmethod
    def _subagent_names(cls, value: dict[str, bool]) -> dict[str, bool]:
        return _known_names(value, SUBAGENTS)

    @field_validator("agents")
    @classmethod
    def _agent_names(cls, value: dict[str, AgentOverride]) -> dict[str, AgentOverride]:
        return _known_names(value, AGENTS)


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
