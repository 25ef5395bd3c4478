"""The config service: its HTTP face (:func:`create_app`) and its library face (this package).

Other packages use the config service ONLY through the names below (``from config_service import
TeamConfigReader``), never its ``db``, ``services``, ``api`` or ``core`` modules. Names load
lazily, so importing the package costs nothing until a name is used (Ray actors import it):

* reading a team's config: :class:`TeamConfigReader` (store; cached, time-bounded),
  :class:`StaticTeamConfigReader` (fixed documents), :func:`team_config_loader` (the engine's
  ``async (org, team) -> doc``), :class:`TeamConfig` (the typed view) and its sections
  (:class:`EffectiveConfig`, :class:`LLMConfig`, :class:`AgentSettings`, ...),
  :func:`max_concurrent_runs`, its JSON Schema (:func:`team_config_schema`), the typed errors (:class:`TeamConfigError`,
  :class:`InvalidTeamConfig`, :class:`ConfigReadTimeout`) and the defaults (:data:`DEFAULT_CONFIG`);
* authenticating requests in another FastAPI app: :func:`install_auth_state`, :data:`PrincipalDep`,
  :data:`SessionDep`, :func:`bearer_token`, :func:`authenticate` (see ``config_service.api.deps``);
* inside the caller's transaction (:mod:`config_service.records`): :func:`record_audit`,
  :func:`effective_config_in_session`, :func:`foreign_claim_owners` (who else holds a routing claim),
  :func:`team_has_channel` (may the team post in a Slack channel); the rule's pure parts:
  :func:`team_channels`, :func:`schedule_channel` (where a schedule posts) and :data:`CHANNEL_RULE`;
* operating it: :func:`create_app`, :func:`rotate_secrets`, and :data:`NODE_KINDS` (the kinds an org's
  tree node may have, for the CLI's ``--kind``);
* JSON documents: :func:`merge_patch` (RFC 7396; the one implementation, also used by ``cluster``'s
  kustomize subset).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # typed team config
    **dict.fromkeys(("TeamConfig", "AgentSettings", "TeamConfigError", "InvalidTeamConfig", "ConfigReadTimeout",
                     "max_concurrent_runs", "parse_effective", "config_errors", "DEFAULT_MAX_CONCURRENT_RUNS",
                     "DEFAULT_CORRELATION_WINDOW_S", "team_config_schema"), "config_service.team_config"),
    **dict.fromkeys(("EffectiveConfig", "LLMConfig", "AgentOverride", "AccessSection", "SandboxSection",
                     "InvestigationSection", "KnowledgeSection", "AGENTS", "PROVIDERS"), "config_service.config_sections"),
    # reading it
    **dict.fromkeys(("TeamConfigReader", "StaticTeamConfigReader", "TeamConfigSource", "team_config_loader",
                     "ConfigLoader", "DEFAULT_READ_TIMEOUT_S"), "config_service.reader"),
    **dict.fromkeys(("MetricSchema", "MetricsSection"), "config_service.metrics_schema"),
    **dict.fromkeys(("GitHubBlock", "PagerDutyBlock", "IncidentIoBlock", "integration_block_schemas"),
                    "config_service.integration_blocks"),
    "DEFAULT_CONFIG": "config_service.core.defaults",
    "ENGINE_DEFAULT_MODEL": "config_service.core.defaults",
    # auth for other FastAPI apps
    **dict.fromkeys(("PrincipalDep", "SessionDep", "SettingsDep", "install_auth_state", "bearer_token"),
                    "config_service.api.deps"),
    "authenticate": "config_service.services.auth",
    # operations
    "create_app": "config_service.app",
    **dict.fromkeys(("record_audit", "effective_config_in_session", "foreign_claim_owners", "team_has_channel"),
                    "config_service.records"),
    **dict.fromkeys(("CHANNEL_RULE", "team_channels", "schedule_channel"), "config_service.services.channels"),
    "rotate_secrets": "config_service.services.rotation",
    "NODE_KINDS": "config_service.services.nodes",
    # JSON documents
    "merge_patch": "config_service.core.merge",
}

# Spelled out for linters and readers; a test checks it is exactly _EXPORTS' keys.
__all__ = [
    "AGENTS",
    "CHANNEL_RULE",
    "DEFAULT_CONFIG",
    "DEFAULT_CORRELATION_WINDOW_S",
    "DEFAULT_MAX_CONCURRENT_RUNS",
    "DEFAULT_READ_TIMEOUT_S",
    "ENGINE_DEFAULT_MODEL",
    "NODE_KINDS",
    "PROVIDERS",
    "AccessSection",
    "AgentOverride",
    "AgentSettings",
    "ConfigLoader",
    "ConfigReadTimeout",
    "EffectiveConfig",
    "GitHubBlock",
    "IncidentIoBlock",
    "InvalidTeamConfig",
    "InvestigationSection",
    "KnowledgeSection",
    "LLMConfig",
    "MetricSchema",
    "MetricsSection",
    "PagerDutyBlock",
    "PrincipalDep",
    "SandboxSection",
    "SessionDep",
    "SettingsDep",
    "StaticTeamConfigReader",
    "TeamConfig",
    "TeamConfigError",
    "TeamConfigReader",
    "TeamConfigSource",
    "authenticate",
    "bearer_token",
    "config_errors",
    "create_app",
    "effective_config_in_session",
    "foreign_claim_owners",
    "install_auth_state",
    "integration_block_schemas",
    "max_concurrent_runs",
    "merge_patch",
    "parse_effective",
    "record_audit",
    "rotate_secrets",
    "schedule_channel",
    "team_channels",
    "team_config_loader",
    "team_config_schema",
    "team_has_channel",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'config_service' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
