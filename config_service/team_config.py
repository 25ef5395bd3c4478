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
from typing import Any

from pydantic import (
    ValidationError,
)
from pydantic.json_schema import GenerateJsonSchema

from config_service.config_sections import (
    AccessSection,
    AgentOverride,
    EffectiveConfig,
    KnowledgeSection,
    LLMConfig,
    SandboxSection,
    _default,
)
from config_service.core.defaults import ENGINE_DEFAULT_MODEL
from config_service.metrics_schema import MetricSchema
from incidentfox.contracts import SUBAGENTS
from incidentfox.errors import IncidentFoxError


class TeamConfigError(IncidentFoxError):
    """Base of the reader's typed errors."""


class InvalidTeamConfig(TeamConfigError):
    """The document does not fit :class:`EffectiveConfig`; ``details.errors`` names each path."""

    status, code = 422, "invalid_team_config"


class ConfigReadTimeout(TeamConfigError):
    """The config store did not answer in time (the reader bounds every read)."""

    status, code = 503, "config_timeout"


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

    @property
    def knowledge(self) -> KnowledgeSection:
        return self.effective.knowledge


DEFAULT_MAX_CONCURRENT_RUNS: int = _default("quotas", "max_concurrent_runs")
DEFAULT_CORRELATION_WINDOW_S: float = float(_default("investigation", "correlation_window_s"))


def max_concurrent_runs(doc: Mapping[str, Any] | TeamConfig | None, default: int | None = None) -> int:
    """The team's ``quotas.max_concurrent_runs``: the one reader of the quota (the pool's dispatcher
    and the scheduler's batches). ``default`` applies only when ``doc`` sets no quota."""
    cfg = TeamConfig(doc)
    if default is not None and "max_concurrent_runs" not in (cfg.doc.get("quotas") or {}):
        return default
    return cfg.max_concurrent_runs
