"""Which secrets verify a delivery: chosen by the signed route, never by the body (issue 12).

* Shared URL (``/webhooks/<endpoint>``, :data:`~serve_apps.webhooks.scope.SHARED`): the
  environment's secret (``SLACK_SIGNING_SECRET`` …, :data:`serve_apps.webhooks.registry.SOURCES`).
  Setting one is the opt-in single-tenant default for that source; unset → 401
  ``secret_not_configured``, for every source (Grafana included: nothing unsigned is accepted).
* Org or team URL (``…/o/<org>[/t/<team>]``): that scope's own secret from the config service
  (current, plus the previous one inside its rotation grace window). Unknown org, no secret for the
  source, or a bad signature all answer the same 401 ``bad_signature``, so the URL cannot be used to
  enumerate tenants. Per-org URLs answer 404 when the deployment turned them off (no loader).

Order, so that an unauthenticated request is cheap: :meth:`WebhookSecrets.verify` first asks the
source whether a signature is present at all (a header test: no lookup, no database read, no
decrypt); only then is the scope's secret fetched, through a per-(source, org, node) cache of
``ttl_s`` (absent secrets cached too; concurrent misses share one load). Secrets never leave this
module except to the verifier, and are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from incidentfox.settings import Settings
from serve_apps.webhooks.errors import WebhookError
from serve_apps.webhooks.registry import SOURCES, SourceSpec
from serve_apps.webhooks.scope import Scope

log = logging.getLogger("incidentfox.gateway")
SecretLabel = Literal["env", "current", "previous"]
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


class StoredSecret(Protocol):
    """What a loader returns (:class:`config_service.webhook_credentials.LoadedWebhookSecret`)."""

    current: str
    previous: str | None
    previous_valid_until: datetime | None
    options: dict[str, str]


SecretLoader = Callable[[str, str, str], Awaitable[StoredSecret | None]]   # (org_id, node_id, source)


@dataclass(frozen=True)
class Verified:
    """A delivery whose signature checked out: the scope it may act in, and which secret matched."""

    scope: Scope
    secret: SecretLabel


def source_spec(source: str) -> SourceSpec:
    """The webhooks registry's declaration of ``source``."""
    return SOURCES[source]


def _valid_id(value: str) -> bool:
    # Config ids are ^[a-z0-9][a-z0-9-]{0,30}$; anything else cannot have a secret (no lookup).
    return 0 < len(value) <= 31 and value[0] != "-" and set(value) <= _ID_CHARS


class WebhookSecrets:
    """Picks and checks secrets for the gateway. ``load`` None turns per-org URLs off (404)."""

    def __init__(self, *, load: SecretLoader | None, env: Mapping[str, str] | None = None,
                 ttl_s: float = 5.0, max_entries: int = 10_000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        # The shared URLs' secrets (SLACK_SIGNING_SECRET …) by variable name: ``Settings`` reads them.
        self._env = env if env is not None else Settings().shared_webhook_secrets()
        self._ttl, self._max, self._monotonic = ttl_s, max_entries, monotonic
        self._cache: dict[tuple[str, str, str], tuple[float, StoredSecret | None]] = {}
        self._inflight: dict[tuple[str, str, str], asyncio.Future] = {}

    @property
    def per_org_enabled(self) -> bool:
        return self._load is not None

    def env_secret(self, spec: SourceSpec) -> str:
        return self._env.get(spec.secret_env, "") or ""

    async def verify(self, spec: SourceSpec, scope: Scope, *, headers: Mapping[str, str], body: bytes,
                     now: float) -> Verified:
        """Raise :class:`WebhookError` unless the request is signed for ``scope``; see module doc."""
        if not scope.shared and self._load is None:
            raise WebhookError("per_org_webhooks_disabled", source=spec.name, status=404,
                               message="per-org webhook URLs are turned off on this deployment")
        if not spec.signature_present(headers):
            raise WebhookError("missing_signature", source=spec.name, message="the request is not signed")
        if scope.shared:
            spec.verify(headers=headers, body=body, secret=self.env_secret(spec), now=now)
            return Verified(scope, "env")
        stored = await self._stored(spec.name, scope)
        if stored is None:
            raise WebhookError("bad_signature", source=spec.name,
                               message="the signature does not verify for this webhook URL")
        options = dict(stored.options or {})
        candidates: list[tuple[SecretLabel, str]] = [("current", stored.current)]
        until = stored.previous_valid_until
        if stored.previous and until is not None and now < until.timestamp():
            candidates.append(("previous", stored.previous))
        first: WebhookError | None = None
        for label, secret in candidates:
            try:
                spec.verify(headers=headers, body=body, secret=secret, now=now, **options)
            except WebhookError as exc:
                first = first or exc
                continue
            if label == "previous":   # the sender still uses the rotated-out secret: say so (no secret)
                log.info("webhook verified with the previous secret",
                         extra={"source": spec.name, "scope": scope.label})
            return Verified(scope, label)
        assert first is not None
        raise first

    async def _stored(self, source: str, scope: Scope) -> StoredSecret | None:
        org, node = scope.org_id or "", scope.node_id or ""
        if not (_valid_id(org) and _valid_id(node)):
            return None
        key = (source, org, node)
        hit = self._cache.get(key)
        if hit is not None and self._monotonic() - hit[0] < self._ttl:
            return hit[1]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            stored = await self._load(org, node, source)   # type: ignore[misc]
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()   # retrieved: waiters re-raise it, nobody logs "never retrieved"
            raise
        finally:
            self._inflight.pop(key, None)
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[key] = (self._monotonic(), stored)
        future.set_result(stored)
        return stored

    def forget(self, source: str | None = None) -> None:
        """Drop cached secrets (all, or one source's): the next delivery reloads."""
        self._cache = {k: v for k, v in self._cache.items() if source is not None and k[0] != source}


def make_secret_loader(sessions: Any, *, settings: Any = None, cipher: Any = None) -> SecretLoader:
    """The production loader: the config service's webhook-secret store on the shared database."""
    from config_service.webhook_credentials import webhook_secret_loader
    from incidentfox.settings import Settings

    return webhook_secret_loader(sessions, settings=settings or Settings(), cipher=cipher)
