"""Which secret verifies a delivery: the org's override, else the environment's.

Contract (issue 3, "Secrets"): every source has a default secret in an environment variable
(``SLACK_SIGNING_SECRET`` …, declared in :data:`serve_apps.webhooks.registry.SOURCES`). An org can
override it in its config under ``integrations.<source>``. To find the org BEFORE the signature is
checked, :meth:`WebhookSecrets.secret_for` reads candidate identifiers from the UNVERIFIED body
(``candidate_identifiers``), routes them, and reads that team's effective config with secrets
revealed. Nothing learnt from the unverified body is trusted: it only chooses which key to try, and
a forged body naming another org simply fails that org's signature check.

Overrides are cached for ``ttl_s`` per (source, org, team), so a burst from one org costs one config
read. Secrets never leave this module except to the verifier; they are never logged.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from incidentfox.errors import NotFound
from serve_apps.deliveries import Route
from serve_apps.router import routing_identifiers
from serve_apps.webhooks.registry import SOURCES, SourceSpec, config_value

ResolveFn = Callable[[Mapping[str, str]], Awaitable[Route]]
ORG_SECRET_TIMEOUT_S = 2.0   # Slack wants its ack within 3 s


@dataclass(frozen=True)
class OrgOverride:
    secret: str
    options: dict[str, Any] = field(default_factory=dict)   # verify kwargs (Grafana header names)


# (org_id, team_id, source) → that team's override for the source, or None.
OrgSecretFn = Callable[[str, str, str], Awaitable[OrgOverride | None]]


@dataclass(frozen=True)
class SecretChoice:
    secret: str
    origin: Literal["org", "env", "none"]
    org_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def source_spec(source: str) -> SourceSpec:
    """The webhooks registry's declaration of ``source``."""
    return SOURCES[source]


class WebhookSecrets:
    def __init__(self, *, resolve: ResolveFn, org_secret: OrgSecretFn | None,
                 env: Mapping[str, str] | None = None, ttl_s: float = 5.0) -> None:
        self._resolve = resolve
        self._org_secret = org_secret
        self._env = env if env is not None else os.environ
        self._ttl = ttl_s
        self._cache: dict[tuple[str, str, str], tuple[float, OrgOverride | None]] = {}

    def env_secret(self, spec: SourceSpec) -> str:
        return self._env.get(spec.secret_env, "") or ""

    async def secret_for(self, spec: SourceSpec, *, headers: Mapping[str, str], body: bytes) -> SecretChoice:
        if self._org_secret is not None:
            ids = routing_identifiers(spec.candidate_identifiers(headers=headers, body=body))
            if ids:
                route = await self._resolve(ids)
                if route.found and route.org_id and route.team_id:
                    override = await self._cached_override(spec.name, route.org_id, route.team_id)
                    if override is not None:
                        return SecretChoice(override.secret, "org", route.org_id, override.options)
        env = self.env_secret(spec)
        return SecretChoice(env, "env" if env else "none")

    async def _cached_override(self, source: str, org_id: str, team_id: str) -> OrgOverride | None:
        key = (source, org_id, team_id)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        override = await self._org_secret(org_id, team_id, source)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now, override)
        return override


def make_org_secret_lookup(sessions: Any, *, settings: Any = None,
                           timeout_s: float = ORG_SECRET_TIMEOUT_S) -> OrgSecretFn:
    """An :data:`OrgSecretFn` reading the team's effective config (secrets revealed with
    ``settings``' Fernet keys) through the config service's reader, in this process, on the shared
    database. The read is bounded by ``timeout_s`` (the sender is waiting for its ack): past it,
    :class:`config_service.ConfigReadTimeout` answers 503 and the sender retries."""
    from config_service import TeamConfigReader
    from incidentfox.settings import Settings

    reader = TeamConfigReader(sessions, settings=settings or Settings(), timeout_s=timeout_s)

    async def lookup(org_id: str, team_id: str, source: str) -> OrgOverride | None:
        spec = source_spec(source)
        try:
            config = await reader.read_doc(org_id, team_id)
        except NotFound:
            return None   # the claim's team vanished since routing answered: no override
        secret = config_value(config, spec.config_key)
        if not isinstance(secret, str) or not secret:
            return None
        options = {kw: v for kw, path in spec.option_keys.items()
                   if isinstance(v := config_value(config, path), str) and v}
        return OrgOverride(secret, options)

    return lookup
