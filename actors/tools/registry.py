"""Every tool, declared once. The agents' tool lists, ``GET /api/v1/tools/catalog`` and
``docs/tools.md`` all read :data:`TOOLS`.

A team's tools (:func:`tools_for`) are the declared tools that (a) its allow-list enables and (b) it
has a backend for. The allow-list is ``config["tools"]``, a dict ``tool name → bool``:

* a tool named there is on or off as given;
* otherwise ``"*"`` (default ``true``) decides for read-only tools; a **mutating** tool is on only
  when named explicitly (``{"kubernetes_restart_deployment": true}``), so no default ever lets a
  prompt change a system.

The knowledge tools (``search_runbooks``, ``similar_incidents``) come with any other tool unless the
team sets ``knowledge.enabled: false`` (alone they investigate nothing). Otherwise a backend exists when ``config["integrations"][spec.integration]`` is configured, or when
``integrations.demo`` is on (the demo world serves every tool). The built-in ``incidentfox``
integration (the team's recorded GitHub deliveries) is there for a team that has repositories: routing
claims ``routing.github_repos`` or a configured ``integrations.github`` (and for demo teams).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from actors.tools import (
    argocd,
    aws,
    coralogix,
    datadog,
    datadog_traces,
    elasticsearch,
    github,
    github_revert,
    grafana,
    jaeger,
    knowledge,
    kubernetes_describe,
    kubernetes_jobs,
    kubernetes_rollback,
    kubernetes_services,
    kubernetes_tools,
    kubernetes_volumes,
    loki,
    prometheus,
    rabbitmq,
    recorded_changes,
    slack_history,
    tempo,
)
from actors.tools.base import (
    BUILTIN_INTEGRATION,
    CATEGORIES,
    INTEGRATIONS,
    KNOWLEDGE_INTEGRATION,
    ToolSpec,
    integration_enabled,
)
from actors.tools.demo import backend as demo_backend


def _index(specs: Iterable[ToolSpec]) -> dict[str, ToolSpec]:
    out: dict[str, ToolSpec] = {}
    for spec in specs:
        if spec.name in out:
            raise ValueError(f"tool {spec.name!r} is declared twice")
        if spec.category not in CATEGORIES or spec.integration not in INTEGRATIONS:
            raise ValueError(f"tool {spec.name!r} has an unknown category or integration")
        out[spec.name] = spec
    return out


# integration → the module that declares its tools (``SPECS``) and documents its config (docstring).
BACKENDS: dict[str, ModuleType] = {
    "kubernetes": kubernetes_tools,
    "prometheus": prometheus,
    "loki": loki,
    "github": github,
    "aws": aws,
    "slack": slack_history,
    "datadog": datadog,
    "grafana": grafana,
    "coralogix": coralogix,
    "tempo": tempo,
    "jaeger": jaeger,
    "elasticsearch": elasticsearch,
    "rabbitmq": rabbitmq,
    "argocd": argocd,
    "demo": demo_backend,
    "incidentfox": recorded_changes,
    "knowledge": knowledge,
}

# Further modules declaring tools of an integration above (kept apart to stay one concept each).
MORE_SPECS: tuple[ModuleType, ...] = (kubernetes_services, kubernetes_jobs, kubernetes_describe, datadog_traces,
                                       kubernetes_rollback, kubernetes_volumes, github_revert)

TOOLS: dict[str, ToolSpec] = _index(
    spec for module in (*BACKENDS.values(), *MORE_SPECS) for spec in module.SPECS
)


def catalog() -> list[dict[str, Any]]:
    """The public description of every tool (no functions), sorted by category then name."""
    return [spec.catalog_entry() for spec in sorted(TOOLS.values(), key=lambda t: (t.category, t.name))]


def allowed(spec: ToolSpec, tools_config: Mapping[str, Any] | None) -> bool:
    """Whether the allow-list enables ``spec`` (see the module docstring)."""
    tools_config = tools_config or {}
    explicit = tools_config.get(spec.name)
    if explicit is not None:
        return bool(explicit)
    return (not spec.mutating) and bool(tools_config.get("*", True))


def has_repositories(config: Mapping[str, Any]) -> bool:
    """Whether GitHub deliveries can be recorded for this team: it claims repositories
    (``routing.github_repos``) or configured ``integrations.github``."""
    routing = config.get("routing") if isinstance(config.get("routing"), Mapping) else {}
    return bool(routing.get("github_repos")) or integration_enabled(config.get("integrations") or {}, "github")


def knowledge_enabled(config: Mapping[str, Any]) -> bool:
    """The team's ``knowledge.enabled`` (default on)."""
    section = config.get("knowledge")
    return not isinstance(section, Mapping) or section.get("enabled", True) is not False


def tools_for(config: Mapping[str, Any]) -> list[ToolSpec]:
    """The tools a team with this effective config may call, in catalog order."""
    integrations = config.get("integrations") or {}
    demo = integration_enabled(integrations, "demo")
    out: list[ToolSpec] = []
    knowledge: list[ToolSpec] = []
    for entry in catalog():
        spec = TOOLS[entry["name"]]
        if not allowed(spec, config.get("tools")):
            continue
        if spec.integration == KNOWLEDGE_INTEGRATION:
            knowledge.append(spec)
        elif spec.integration == BUILTIN_INTEGRATION:
            if demo or has_repositories(config):
                out.append(spec)
        elif integration_enabled(integrations, spec.integration) or (
            demo and demo_backend.demo_backend(spec.name) is not None
        ):
            out.append(spec)
    # The knowledge base complements evidence tools; alone it investigates nothing (a team with no
    # tools keeps its "no tools configured" answer).
    return out + knowledge if out and knowledge_enabled(config) else out
