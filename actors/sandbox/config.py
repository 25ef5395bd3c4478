"""Sandbox configuration: platform runtime (:class:`SandboxRuntime`, from ``Settings``), command
limits (:class:`SandboxLimits`), and the two team-config sections a session reads, typed by the
config service's model (``config_service.SandboxSection`` and ``config_service.LLMConfig``, the
same ``llm`` model the engine uses):

* ``sandbox``: ``ttl_s``, ``mcp_servers`` (names from the platform allow-list, never commands),
  ``network`` (only honoured when the platform allows network at all);
* ``llm``: ``provider`` (must be ``anthropic``), ``model`` (required here), ``base_url``,
  ``api_key``, ``max_tokens``, ``system_prompt``.

Parsers are pure: they take the team's effective config section (a dict) and return a typed value
or raise :class:`incidentfox.errors.Unprocessable` (``invalid_sandbox_config`` /
``invalid_llm_config``) with the offending field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actors.sandbox.backends.pod_spec import PodConfig
from actors.sandbox.limits import platform_tag
from actors.sandbox.workspace_root import workspace_root
from config_service import LLMConfig, SandboxSection
from incidentfox.errors import Unprocessable
from incidentfox.object_store import ObjectStoreConfig, object_store_config
from incidentfox.settings import Settings

GiB = 1 << 30
MiB = 1 << 20
SCHEDULING_KEYS = frozenset({"resources", "label_selector", "scheduling_strategy", "memory",
                             "accelerator_type"})


class SandboxLimits(BaseModel):
    """Per-command limits (rlimits apply to every process of the command; NPROC counts all processes
    of the session's UID, which is why each session gets its own unprivileged UID) and whole-session
    limits (``session_*``, ``workspace_quota_bytes``; see :mod:`actors.sandbox.limits`)."""

    model_config = ConfigDict(frozen=True)
    cpu_s: int = 120                    # RLIMIT_CPU, per process
    memory_bytes: int = 2 * GiB         # RLIMIT_AS, per process
    nproc: int = 128                    # RLIMIT_NPROC, per UID
    fsize_bytes: int = 1 * GiB          # RLIMIT_FSIZE, largest file a command may write
    nofile: int = 1024                  # RLIMIT_NOFILE
    tmp_bytes: int = 64 * MiB           # size of the per-command /tmp tmpfs
    default_timeout_s: float = 120.0    # wall clock, when the model gives none
    max_timeout_s: float = 600.0        # the most the model may ask for
    output_cap_chars: int = 30_000      # what the model sees
    output_hard_bytes: int = 16 * MiB   # past this much output the command is killed
    session_memory_bytes: int = 4 * GiB     # cgroup memory.max of the session (all its processes)
    session_pids: int = 256                 # cgroup pids.max of the session
    workspace_quota_bytes: int = 10 * GiB   # disk the workspace may use (accounted, see limits.py)
    session_wall_s: float = 12 * 3600.0     # a session's whole life, however active it stays
    quota_poll_s: float = 0.5               # how often a running command's workspace is measured
    search_time_limit_s: float = 10.0       # Grep/Glob regex matching, per call, all files together


class SandboxRuntime(BaseModel):
    """Everything a manager/host needs, picklable (it crosses into Ray actors)."""

    root: Path
    db_url: str
    allow_rlimit_only: bool = False
    allow_network: bool = False        # platform switch; a team's `sandbox.network` needs it on
    uid_base: int = 200_000
    uid_count: int = 100_000
    ttl_s: float = 7200.0
    sessions_per_host: int = 64
    host_max_concurrency: int = 256
    sweep_interval_s: float = 30.0
    namespace: str = "incidentfox"
    limits: SandboxLimits = Field(default_factory=SandboxLimits)
    max_steps: int = 40                 # model calls per turn
    model_timeout_s: float = 300.0      # one model call
    tool_timeout_s: float = 660.0       # outer bound on any tool call (Bash has its own)
    mcp_timeout_s: float = 30.0
    approval_timeout_s: float = 600.0   # how long a mutating MCP call waits for an approver
    slack_api_url: str = "https://slack.com/api/"   # where a session's Slack mirror posts
    backend: Literal["bwrap", "pod"] = "bwrap"      # where Bash runs (actors/sandbox/backends/)
    pod: PodConfig = Field(default_factory=PodConfig)
    object_store: ObjectStoreConfig | None = None   # workspace snapshots; None: not persisted
    snapshot_max_bytes: int = 4 * GiB               # the most a restored snapshot may hold

    @property
    def platform_tag(self) -> str:
        """Which platform this is, on a node that may run several (:func:`~actors.sandbox.limits.platform_tag`)."""
        return platform_tag(self.db_url)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SandboxRuntime:
        values: dict[str, Any] = {
            "root": workspace_root(settings),
            "db_url": settings.resolved_database_url(),
            "allow_rlimit_only": settings.sandbox_allow_rlimit_only,
            "ttl_s": settings.sandbox_ttl_s,
            "sessions_per_host": settings.sandbox_sessions_per_host,
            "slack_api_url": settings.slack_api_url,
            "backend": settings.sandbox_backend,
            "pod": PodConfig.from_settings(settings),
            "object_store": object_store_config(settings) if settings.sandbox_persist_workspaces else None,
        }
        values.update(overrides)
        return cls(**values)


def _invalid(message: str, code: str, exc: ValidationError) -> Unprocessable:
    return Unprocessable(message, code=code, details={"errors": [{"loc": list(e["loc"]), "msg": e["msg"]}
                                                                 for e in exc.errors()]})


def parse_team_sandbox(section: dict[str, Any] | None) -> SandboxSection:
    """Parse a team's ``sandbox`` section (the config service's typed model). ``mcp_servers`` entries
    must be allow-list *names*: a dict (or anything naming a command/url) is refused, so a tenant can
    never choose what runs. ``ttl_s`` absent: the platform's ``SandboxRuntime.ttl_s``."""
    section = dict(section or {})
    servers = section.get("mcp_servers", [])
    if not isinstance(servers, list) or not all(isinstance(s, str) for s in servers):
        raise Unprocessable("sandbox.mcp_servers must be a list of allow-list names",
                            code="invalid_sandbox_config", details={"field": "sandbox.mcp_servers"})
    try:
        return SandboxSection.model_validate(section)
    except ValidationError as exc:
        if any(e["loc"][:1] == ("mcp_servers",) for e in exc.errors()):
            raise Unprocessable("sandbox.mcp_servers must be a list of allow-list names",
                                code="invalid_sandbox_config", details={"field": "sandbox.mcp_servers"}) from None
        raise _invalid("invalid sandbox config", "invalid_sandbox_config", exc) from None


def parse_llm_config(section: dict[str, Any] | None) -> LLMConfig:
    """Parse the team's ``llm`` section (the one :class:`config_service.LLMConfig`, shared with the
    engine); the sandbox agent speaks the Anthropic Messages API only and needs an explicit model."""
    try:
        cfg = LLMConfig.model_validate(dict(section or {}))
    except ValidationError as exc:
        raise _invalid("the team's llm config is invalid for the sandbox agent", "invalid_llm_config",
                       exc) from None
    if cfg.provider != "anthropic":
        raise Unprocessable(f"sandbox sessions need llm.provider 'anthropic', not {cfg.provider!r}",
                            code="invalid_llm_config", details={"field": "llm.provider"})
    if not cfg.model:
        raise Unprocessable("the team's llm config is incomplete for the sandbox agent: llm.model is not set",
                            code="invalid_llm_config", details={"field": "llm.model"})
    return cfg


def check_scheduling(options: dict[str, Any] | None) -> dict[str, Any]:
    """Ray actor options a caller may pass for a team's sessions (resources / labels / strategy)."""
    options = dict(options or {})
    unknown = set(options) - SCHEDULING_KEYS
    if unknown:
        raise Unprocessable("unsupported scheduling options", code="invalid_scheduling",
                            details={"keys": sorted(unknown)})
    return options
