"""The tool contract: one declaration (:class:`ToolSpec`), one result shape (:class:`ToolResult`),
one per-run context (:class:`ToolContext`) and two error kinds.

* A backend function has the signature ``async def fn(args: dict, ctx: ToolContext) -> ToolResult``.
  ``args`` have already been validated against ``spec.parameters`` by
  :func:`actors.tools.execute.execute`, which is the only caller.
* A backend raises :class:`TransientToolError` for what may succeed on retry (5xx, 429, connection
  failures) and :class:`ToolError` for everything else (bad credentials, unknown object, bad query).
  Both carry a snake_case ``reason`` that ends up in ``ToolResult.error``.
* ``ToolResult.evidence`` is the provider-neutral view of what the call found; ``data`` is the raw-ish
  JSON for the model; ``summary`` is one or two lines for the model and for progress messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic import BaseModel, Field

from incidentfox.egress.guard import PolicyLike, Resolver
from incidentfox.evidence import EvidenceBundle

if TYPE_CHECKING:
    from actors.tools.replay import ReplayStore

Category = Literal["kubernetes", "metrics", "traces", "logs", "changes", "cloud", "slack", "observability",
                   "knowledge"]
CATEGORIES: tuple[str, ...] = (
    "kubernetes", "metrics", "traces", "logs", "changes", "cloud", "slack", "observability", "knowledge"
)
INTEGRATIONS: tuple[str, ...] = (
    "kubernetes",
    "prometheus",
    "loki",
    "github",
    "aws",
    "slack",
    "datadog",
    "grafana",
    "coralogix",
    "tempo",
    "jaeger",
    "elasticsearch",
    "rabbitmq",
    "argocd",
    "demo",
    "incidentfox",
    "knowledge",
)
# The platform's own records (recorded webhook deliveries): always available, no credentials.
BUILTIN_INTEGRATION = "incidentfox"
# The knowledge base (runbooks, postmortems, past incidents): on unless ``knowledge.enabled`` is false.
KNOWLEDGE_INTEGRATION = "knowledge"


def utcnow() -> datetime:
    return datetime.now(UTC)


class ToolError(Exception):
    """A non-retryable tool failure with a snake_case ``reason`` (e.g. ``not_found``)."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason


class TransientToolError(ToolError):
    """A failure worth retrying (upstream 5xx/429, connection reset). ``retry_after`` in seconds."""

    def __init__(self, reason: str, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(reason, message)
        self.retry_after = retry_after


class ToolResult(BaseModel):
    """What one tool call returns to the agent, the ranker and the run record.

    ``error`` is a snake_case reason when ``ok`` is False: ``invalid_arguments``, ``timeout``,
    ``approval_required``, ``not_configured``, ``unauthorized``, ``forbidden``, ``not_found``,
    ``bad_request``, ``unavailable`` (transient failures exhausted retries), ``upstream_error``,
    ``unknown_tool``, ``egress_refused`` (the egress policy refused the destination; nothing was sent). ``message`` is a human-readable detail (never contains credentials).
    """

    ok: bool
    data: Any = None
    error: str | None = None
    message: str = ""
    evidence: EvidenceBundle = Field(default_factory=EvidenceBundle)
    summary: str = ""
    # Filled in by execute(): how the call went.
    attempts: int = 0
    duration_s: float = 0.0
    truncated: bool = False
    result_size: int = 0  # bytes of JSON-encoded ``data`` after bounding

    @property
    def status(self) -> str:
        """The run record's status word: ``ok`` | ``timeout`` | ``error``."""
        if self.ok:
            return "ok"
        return "timeout" if self.error == "timeout" else "error"

    @classmethod
    def success(cls, data: Any, *, evidence: EvidenceBundle | None = None, summary: str = "") -> ToolResult:
        return cls(ok=True, data=data, evidence=evidence or EvidenceBundle(), summary=summary)

    @classmethod
    def failure(cls, error: str, message: str = "") -> ToolResult:
        return cls(
            ok=False, error=error, message=message, summary=f"{error}: {message}" if message else error
        )


ToolFn = Callable[[dict[str, Any], "ToolContext"], Awaitable[ToolResult]]


@dataclass(frozen=True, kw_only=True)
class ToolSpec:
    """One tool, declared once. The agent tool list, the catalog API and ``docs/tools.md`` read it.

    ``description`` addresses the model. ``parameters`` is a strict-mode JSON schema (object,
    ``additionalProperties: false``, every property required, optional ones nullable).
    ``timeout_s`` bounds each attempt; ``retries`` is the number of extra attempts after a transient
    failure.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    category: Category
    integration: str
    fn: ToolFn
    mutating: bool = False
    timeout_s: float = 20.0
    retries: int = 2

    def catalog_entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "category": self.category,
            "integration": self.integration,
            "mutating": self.mutating,
            "timeout_s": self.timeout_s,
            "retries": self.retries,
        }


SpecBuilder = Callable[..., ToolSpec]


def spec_builder(*, category: Category, integration: str, timeout_s: float) -> SpecBuilder:
    """A ``spec(name, fn, description, parameters, **overrides)`` that declares a :class:`ToolSpec`
    with this ``category``, ``integration`` and ``timeout_s``, so a backend module states them once.

    ``overrides`` are further :class:`ToolSpec` fields for one tool (``mutating``, ``retries``, or a
    different ``category``).
    """

    def spec(
        name: str, fn: ToolFn, description: str, parameters: dict[str, Any], **overrides: Any
    ) -> ToolSpec:
        fields: dict[str, Any] = {"category": category, "integration": integration, "timeout_s": timeout_s}
        return ToolSpec(
            name=name, description=description, parameters=parameters, fn=fn, **(fields | overrides)
        )

    return spec


def integration_enabled(integrations: Mapping[str, Any] | None, key: str) -> bool:
    """Whether ``integrations[key]`` is configured: ``True``, or a non-empty dict whose ``enabled`` is
    not false (``{"enabled": true}`` alone also counts). The built-in ``incidentfox`` integration
    (the platform's own records) is always configured."""
    if key == BUILTIN_INTEGRATION:
        return True
    value = (integrations or {}).get(key)
    if value is True:
        return True
    if isinstance(value, Mapping):
        return bool(value.get("enabled", bool(value)))
    return False


_SECRET_KEY_WORDS = (
    "token",
    "secret",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "app_key",
    "key_id",
    "access_key",
    "private_key",
    "authorization",
    "kubeconfig",
    "credential",
    "cert",
)


def is_secret_key(key: str) -> bool:
    k = key.lower().replace("-", "_")
    return any(w in k for w in _SECRET_KEY_WORDS)


@dataclass(kw_only=True)
class ToolContext:
    """Everything a backend may use for one run: the team's decrypted ``integrations.*`` config, ids,
    an ``httpx.AsyncClient`` factory (tests inject transports) and the clock.

    ``egress`` is the egress policy tenant calls go through (None: the process's, i.e. settings plus
    the global admin's allow-list); ``resolver`` replaces DNS for it (tests). See
    :mod:`incidentfox.egress`.

    ``cache`` is per-context scratch (the demo world lives there so one run sees one world).
    ``replay`` (an :class:`actors.tools.replay.ReplayStore`, set by the caller, never from team
    config) answers every tool from recordings instead of a live system or the demo world.
    ``sessions`` (an ``async_sessionmaker`` of the platform database, set by the ToolExecutor) is
    what the built-in tools read the team's recorded deliveries through; None: they are unavailable.
    ``routing`` is the team's routing claims (config ``routing``, each identifier claimed by one
    team): what a tool that writes with a credential an org's teams may share (a GitHub App) checks
    its target against; empty: the team claims nothing.
    ``knowledge`` (an :class:`actors.tools.knowledge_bases.TeamKnowledge` from the run's config
    snapshot, never from arguments) and ``knowledge_bases`` (the process's
    :class:`~actors.tools.knowledge_bases.KnowledgeBases`) are what the knowledge tools search.
    The repr never shows credentials.
    """

    integrations: dict[str, Any] = field(default_factory=dict)
    org_id: str = ""
    team_id: str = ""
    run_id: str | None = None
    http_client_factory: Callable[..., httpx.AsyncClient] = httpx.AsyncClient
    clock: Callable[[], datetime] = utcnow
    cache: dict[str, Any] = field(default_factory=dict)
    egress: PolicyLike | None = None
    resolver: Resolver | None = None
    replay: ReplayStore | None = None
    sessions: Any | None = None
    routing: Mapping[str, Any] = field(default_factory=dict)
    knowledge: Any | None = None
    knowledge_bases: Any | None = None

    def __repr__(self) -> str:
        return (
            f"ToolContext(org_id={self.org_id!r}, team_id={self.team_id!r}, run_id={self.run_id!r}, "
            f"integrations={sorted(self.integrations)!r})"
        )

    def enabled(self, key: str) -> bool:
        return integration_enabled(self.integrations, key)

    def integration(self, key: str) -> dict[str, Any]:
        """The integration's config dict; ``ToolError("not_configured")`` when absent."""
        if not self.enabled(key):
            raise ToolError("not_configured", f"integration {key!r} is not configured for this team")
        value = self.integrations.get(key)
        return dict(value) if isinstance(value, Mapping) else {}

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        return self.http_client_factory(**kwargs)

    def now(self) -> datetime:
        return self.clock()

    def window(self, since_minutes: int | None, default: int = 60) -> tuple[datetime, datetime]:
        """``(start, end)`` ending now, ``since_minutes`` (or ``default``) long."""
        end = self.clock()
        return end - timedelta(minutes=since_minutes or default), end

    def secret_values(self) -> list[str]:
        """Credential strings in the integrations (for masking anything echoed back): values under
        secret-looking keys, and every extra header's value, whatever its name (an ``X-Auth-Key``)."""
        found: list[str] = []

        def walk(node: Any, secret: bool) -> None:
            if isinstance(node, Mapping):
                for k, v in node.items():
                    walk(v, secret or is_secret_key(str(k)) or str(k).lower() == "headers")
            elif isinstance(node, (list, tuple)):
                for v in node:
                    walk(v, secret)
            elif secret and isinstance(node, str) and len(node) >= 6:
                found.append(node)

        walk(self.integrations, False)
        return found
