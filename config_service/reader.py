"""Reading a team's config in-process: the one way other packages get a team's effective config.

* :class:`TeamConfigReader` reads from the config service's store on the shared database: the
  cached effective config (:func:`config_service.services.config.effective_config_with_epoch`:
  one primary-key read of the org epoch, then the per-process cache, so a write committed anywhere
  is seen by the next read), every read bounded by ``asyncio.timeout`` (:class:`ConfigReadTimeout`
  when it runs out), secrets decrypted.
* :class:`StaticTeamConfigReader` serves fixed documents (tests, benchmarks, the demo): a base
  document and per-team documents merged over it key by key.

Both give :meth:`~TeamConfigReader.read` (a :class:`~config_service.team_config.TeamConfig`, or
:class:`~config_service.team_config.InvalidTeamConfig`), :meth:`~TeamConfigReader.read_doc` (the
document) and :meth:`~TeamConfigReader.team_ids`. An unknown team raises
:class:`incidentfox.errors.NotFound` (``node_not_found``).

Secrets are revealed: this face is platform-internal (engine, gateway, scheduler, sandbox). What
it returns never goes into an HTTP response, a log line or a tool result; the HTTP routes mask.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

# Imported here, not per read: an import inside a read would block the caller's event loop (an
# actor's lease heartbeat) the first time. Importing this module is what "warms" the store path.
from config_service.services.config import get_effective_config
from config_service.services.nodes import list_team_ids
from config_service.team_config import ConfigReadTimeout, TeamConfig

DEFAULT_READ_TIMEOUT_S = 10.0
ConfigLoader = Callable[[str, str], Awaitable[dict[str, Any]]]


class TeamConfigSource(Protocol):
    async def read(self, org_id: str, team_id: str) -> TeamConfig: ...

    async def read_doc(self, org_id: str, team_id: str) -> dict[str, Any]: ...

    async def team_ids(self) -> list[tuple[str, str]]: ...


class TeamConfigReader:
    """Async, cached, time-bounded reads of teams' effective configs (see the module docstring).

    ``sessions`` is an ``async_sessionmaker`` on the platform database; ``settings`` supplies the
    Fernet keys that decrypt secrets (default: :func:`incidentfox.settings.get_settings`)."""

    def __init__(self, sessions: Any, *, settings: Any = None,
                 timeout_s: float = DEFAULT_READ_TIMEOUT_S) -> None:
        if not timeout_s > 0:
            raise ValueError("timeout_s must be > 0")
        self._sessions = sessions
        self._settings = settings
        self.timeout_s = timeout_s

    async def read(self, org_id: str, team_id: str) -> TeamConfig:
        return TeamConfig(await self.read_doc(org_id, team_id), org_id=org_id, team_id=team_id)

    async def read_doc(self, org_id: str, team_id: str) -> dict[str, Any]:
        """The team's effective config document (a fresh dict the caller owns), secrets revealed."""
        async def read(session: Any) -> dict[str, Any]:
            return await get_effective_config(session, org_id=org_id, node_id=team_id, reveal_secrets=True,
                                              settings=self._settings)
        return await self._bounded(read, f"the config of team {org_id}/{team_id}")

    async def team_ids(self) -> list[tuple[str, str]]:
        """Every team, ``(org_id, team_id)``, ordered."""
        return await self._bounded(list_team_ids, "the list of teams")

    async def _bounded(self, fn: Callable[[Any], Awaitable[Any]], what: str) -> Any:
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._sessions() as session:
                    return await fn(session)
        except TimeoutError:
            raise ConfigReadTimeout(f"reading {what} took longer than {self.timeout_s:g} s",
                                    details={"timeout_s": self.timeout_s}) from None


class StaticTeamConfigReader:
    """Fixed documents: ``base`` for every team, ``per_team["org/team"]`` merged over it key by key
    (top-level keys replace). Any team is known; :meth:`team_ids` lists those of ``per_team``."""

    def __init__(self, base: Mapping[str, Any] | None = None,
                 per_team: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._base = copy.deepcopy(dict(base or {}))
        self._per_team = {k: copy.deepcopy(dict(v)) for k, v in (per_team or {}).items()}

    async def read(self, org_id: str, team_id: str) -> TeamConfig:
        return TeamConfig(await self.read_doc(org_id, team_id), org_id=org_id, team_id=team_id)

    async def read_doc(self, org_id: str, team_id: str) -> dict[str, Any]:
        return copy.deepcopy({**self._base, **self._per_team.get(f"{org_id}/{team_id}", {})})

    async def team_ids(self) -> list[tuple[str, str]]:
        return sorted(tuple(k.split("/", 1)) for k in self._per_team if "/" in k)  # type: ignore[misc]


def team_config_loader(*, sessions: Any, settings: Any = None, static_config: Mapping[str, Any] | None = None,
                       static_team_configs: Mapping[str, Mapping[str, Any]] | None = None,
                       timeout_s: float = DEFAULT_READ_TIMEOUT_S) -> ConfigLoader:
    """``async (org_id, team_id) -> effective config document`` (secrets revealed): the static
    documents when either is given (tests, benchmarks), else the store through a
    :class:`TeamConfigReader`. The investigation pool's and actors' config loader."""
    if static_config is not None or static_team_configs is not None:
        return StaticTeamConfigReader(static_config, static_team_configs).read_doc
    return TeamConfigReader(sessions, settings=settings, timeout_s=timeout_s).read_doc
