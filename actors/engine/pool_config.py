"""The pool's configuration: what every actor of an investigation pool is created with.

:class:`PoolConfig` is passed once, at creation, to the pool supervisor and every actor it starts
(pickled, secrets included); :func:`make_config_loader` is how those actors read a team's effective
config. :data:`NAMESPACE` is the Ray namespace every named engine actor lives in, and
:data:`CALL_TIMEOUT_S` bounds every database transaction and actor call the pool makes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from config_service import team_config_loader
from incidentfox.settings import Settings

NAMESPACE = "incidentfox"
CALL_TIMEOUT_S = 30.0


@dataclass
class PoolConfig:
    """Everything the pool's actors need, passed once at creation (pickled with its secrets)."""

    database_url: str
    settings: Settings
    name: str = "incidentfox"   # prefix of every actor name (the pool is ``<name>-investigation-pool``)
    min_actors: int = 1
    max_actors: int = 4
    actor_max_concurrency: int = 200
    lease_s: float = 30.0
    subagent_workers: int = 1
    tool_executors: int = 1
    idle_s: float = 30.0
    slack_api_url: str = "https://slack.com/api/"
    # Tests and benchmarks: a fixed effective config instead of the config service's.
    static_config: dict[str, Any] | None = field(default=None, repr=False)
    # …and per team ("org/team" → doc, merged over ``static_config`` key by key): teams may differ
    # in deployment mode and quotas without a config service.
    static_team_configs: dict[str, dict[str, Any]] | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> PoolConfig:
        return cls(database_url=settings.resolved_database_url(), settings=settings,
                   min_actors=settings.pool_min_actors, max_actors=settings.pool_max_actors,
                   actor_max_concurrency=settings.actor_max_concurrency, lease_s=settings.lease_s,
                   subagent_workers=settings.subagent_workers, tool_executors=settings.tool_executors,
                   slack_api_url=settings.slack_api_url, **overrides)

    @property
    def period_s(self) -> float:
        """How often leases are renewed and the pool's maintenance runs: a third of the lease."""
        return max(0.2, self.lease_s / 3)


def make_config_loader(cfg: PoolConfig, sessions: Any):
    """``async (org, team) -> effective config`` (decrypted), through the config service's reader
    (cached, bounded by ``CALL_TIMEOUT_S``), or the static documents when the config has them."""
    return team_config_loader(sessions=sessions, settings=cfg.settings, static_config=cfg.static_config,
                              static_team_configs=cfg.static_team_configs, timeout_s=CALL_TIMEOUT_S)
