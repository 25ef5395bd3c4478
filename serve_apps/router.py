"""Routing: which (org, team) owns a trigger, answered from the config service's routing claims.

:class:`RoutingTable` is the logic (no Ray): it asks the config service over HTTP
(``POST /api/v1/routing/lookup``, authenticated with the global admin token - never a trust header)
and caches answers keyed on the routing epoch (``GET /api/v1/routing/epoch``, polled at most every
``epoch_poll_s``). Any claim change bumps the epoch, so a cached answer is served only while the
epoch it was fetched under is current.

When the config service is unreachable (connection error, timeout, 5xx, or a refusal of our admin
token), routing continues from the last good table: a cached answer of any epoch is returned with
``stale=True``; an identifier set never seen before is answered ``found=False, stale=True`` (the
gateway records it ``unrouted`` with ``route_stale`` set). After a failure the table does not ask
again for ``epoch_poll_s``, so an outage costs senders no latency.

:class:`Router` is the Serve deployment that holds one table per replica; the gateway calls it
through a handle and memoises its answers briefly (see :mod:`serve_apps.gateway`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import httpx
from ray import serve

from incidentfox.contracts import ROUTING_KEYS
from incidentfox.settings import Settings
from serve_apps.deliveries import Route

log = logging.getLogger("incidentfox.router")

DEFAULT_CONFIG_URL = "http://127.0.0.1:8000"


class ConfigUnavailable(Exception):
    """The config service did not give a usable answer (reason in the message; no secrets)."""


@dataclass
class _Entry:
    route: Route
    epoch: int | None


@dataclass
class RouterStats:
    lookups: int = 0
    cache_hits: int = 0
    remote_lookups: int = 0
    stale_answers: int = 0
    not_found: int = 0
    config_errors: int = 0


def routing_identifiers(identifiers: Mapping[str, Any]) -> dict[str, str]:
    """The subset the routing lookup understands (keys of ``ROUTING_KEYS``, non-empty strings)."""
    return {k: v for k, v in identifiers.items() if k in ROUTING_KEYS and isinstance(v, str) and v}


def config_url_from_env(settings: Settings | None = None) -> str:
    """``INCIDENTFOX_CONFIG_URL`` (``Settings.config_url``), else :data:`DEFAULT_CONFIG_URL`."""
    return (settings or Settings()).config_url.rstrip("/") or DEFAULT_CONFIG_URL


class RoutingTable:
    """Epoch-keyed cache in front of the config service's routing lookup (see module doc)."""

    def __init__(self, *, config_url: str, admin_token: str, epoch_poll_s: float = 1.0,
                 timeout_s: float = 2.0, max_entries: int = 10_000,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(
            base_url=config_url.rstrip("/"), timeout=timeout_s, transport=transport,
            headers={"Authorization": f"Bearer {admin_token}"} if admin_token else {})
        self._poll_s = epoch_poll_s
        self._max = max_entries
        self._cache: OrderedDict[tuple[tuple[str, str], ...], _Entry] = OrderedDict()
        self._epoch: int | None = None
        self._epoch_at = float("-inf")
        self._epoch_ok = False
        self._epoch_lock = asyncio.Lock()
        self.stats = RouterStats()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get_json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            resp = await self._client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ConfigUnavailable(f"{type(exc).__name__} calling {path}") from None
        if resp.status_code != 200:
            raise ConfigUnavailable(f"{path} answered {resp.status_code}")
        try:
            data = resp.json()
        except ValueError:
            raise ConfigUnavailable(f"{path} answered non-JSON") from None
        if not isinstance(data, dict):
            raise ConfigUnavailable(f"{path} answered a non-object")
        return data

    async def _current_epoch(self) -> tuple[int | None, bool]:
        """``(epoch, reachable)``: polled at most every ``epoch_poll_s``; concurrent callers share
        one poll."""
        if time.monotonic() - self._epoch_at < self._poll_s:
            return self._epoch, self._epoch_ok
        async with self._epoch_lock:
            if time.monotonic() - self._epoch_at < self._poll_s:
                return self._epoch, self._epoch_ok
            try:
                data = await self._get_json("GET", "/api/v1/routing/epoch")
                epoch = data.get("epoch")
                self._epoch = int(epoch) if isinstance(epoch, int | str) and str(epoch).lstrip("-").isdigit() \
                    else None
                self._epoch_ok = True
            except ConfigUnavailable as exc:
                self.stats.config_errors += 1
                if self._epoch_ok:
                    log.warning("config service unreachable, routing from the last good table: %s", exc)
                self._epoch_ok = False
            self._epoch_at = time.monotonic()
            return self._epoch, self._epoch_ok

    def _remember(self, key: tuple[tuple[str, str], ...], route: Route, epoch: int | None) -> None:
        self._cache[key] = _Entry(route, epoch)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)

    async def resolve(self, identifiers: Mapping[str, Any]) -> Route:
        """Route ``identifiers`` (singular routing keys). Never raises for an outage: see module doc."""
        self.stats.lookups += 1
        ids = routing_identifiers(identifiers)
        if not ids:
            self.stats.not_found += 1
            return Route(found=False)
        key = tuple(sorted(ids.items()))
        epoch, reachable = await self._current_epoch()
        entry = self._cache.get(key)
        if reachable and entry is not None and entry.epoch == epoch:
            self.stats.cache_hits += 1
            return entry.route
        if reachable:
            try:
                data = await self._get_json("POST", "/api/v1/routing/lookup", json={"identifiers": ids})
                route = Route(found=bool(data.get("found")), org_id=data.get("org_id"),
                              team_id=data.get("team_node_id"), matched_by=data.get("matched_by"),
                              matched_value=data.get("matched_value"))
                got = data.get("epoch")
                self._remember(key, route, got if isinstance(got, int) else epoch)
                self.stats.remote_lookups += 1
                if not route.found:
                    self.stats.not_found += 1
                return route
            except ConfigUnavailable as exc:
                self.stats.config_errors += 1
                log.warning("routing lookup failed, answering from the last good table: %s", exc)
                self._epoch_ok, self._epoch_at = False, time.monotonic()
        self.stats.stale_answers += 1
        if entry is not None:
            return replace(entry.route, stale=True)
        self.stats.not_found += 1
        return Route(found=False, stale=True)


def route_to_dict(route: Route) -> dict[str, Any]:
    return asdict(route)


def route_from_dict(data: Mapping[str, Any]) -> Route:
    return Route(**{k: data.get(k) for k in ("found", "org_id", "team_id", "matched_by", "matched_value")},
                 stale=bool(data.get("stale", False)))


@serve.deployment(
    name="Router",
    ray_actor_options={"num_cpus": 0},
    max_ongoing_requests=1000,
    num_replicas=1,
)
class Router:
    """Serve deployment: one :class:`RoutingTable` per replica. Its config service URL comes from the
    builder's args; the admin token from ``INCIDENTFOX_ADMIN_TOKEN`` (never from the Serve config)."""

    def __init__(self, config_url: str = "", epoch_poll_s: float = 1.0, timeout_s: float = 2.0) -> None:
        from incidentfox.logs import configure_process_logging

        configure_process_logging()
        settings = Settings()
        admin = settings.admin_token.get_secret_value() if settings.admin_token else ""
        self._table = RoutingTable(config_url=config_url or config_url_from_env(settings), admin_token=admin,
                                   epoch_poll_s=epoch_poll_s, timeout_s=timeout_s)

    async def resolve(self, identifiers: dict[str, str]) -> dict[str, Any]:
        return route_to_dict(await self._table.resolve(identifiers))

    async def stats(self) -> dict[str, Any]:
        return asdict(self._table.stats)
