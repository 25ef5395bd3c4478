"""Resolving and checking a destination, and the process's current policy.

* :func:`check_destination` plans a scheme/host/port with the policy, resolves the name once (the
  injected ``resolver``, by default the system's ``getaddrinfo``) and checks every address. The
  returned :class:`~incidentfox.egress.policy.Destination` is what a connection must use: the
  transports connect to its address, never resolving the name again, so a second DNS answer
  (rebinding) cannot switch it.
* Names that no allow-list entry names are looked up as absolute names (``api.example.com.``), so
  a pod's DNS search path cannot turn ``github.com`` into ``github.com.<ns>.svc.cluster.local``.
* :class:`PolicySource` is the policy a process applies now: the operator's settings
  (``INCIDENTFOX_EGRESS_*``) plus the global admin's allow-list in the database, reloaded every
  ``ttl_s``. :func:`process_policy` is the one per process.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache

from incidentfox.egress.policy import Destination, EgressPolicy, parse_rule

log = logging.getLogger("incidentfox.egress")

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
PolicyLike = EgressPolicy | Callable[[], Awaitable[EgressPolicy]]


async def system_resolver(name: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for ``name`` (TCP), in its order, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM,
                                                         proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def current_policy(policy: PolicyLike) -> EgressPolicy:
    return policy if isinstance(policy, EgressPolicy) else await policy()


async def check_destination(policy: PolicyLike, *, scheme: str, host: str | None, port: int | None,
                            resolver: Resolver | None = None) -> Destination:
    """Plan, resolve once, check every address. Raises ``EgressRefused``, or ``OSError`` when the
    name does not resolve (a network failure, not a refusal)."""
    pol = await current_policy(policy)
    plan = pol.plan(scheme=scheme, host=host, port=port)
    if plan.literal is not None:
        return Destination(plan, (plan.literal,))
    assert plan.name is not None
    lookup = plan.name if plan.admitted else plan.name + "."
    addresses = await (resolver or system_resolver)(lookup, plan.port)
    return pol.admit(plan, addresses)


class PolicySource:
    """``await source()`` → the current :class:`EgressPolicy`: ``base`` plus the entries ``load``
    returns, reloaded at most every ``ttl_s``. A failed reload keeps the last entries it loaded
    (none at first: then only ``base`` admits anything), logs, and retries after ``retry_s``."""

    def __init__(self, base: EgressPolicy, *, load: Callable[[], Awaitable[Sequence[str]]] | None = None,
                 ttl_s: float = 15.0, retry_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.base = base
        self._load = load
        self._ttl_s = ttl_s
        self._retry_s = retry_s
        self._clock = clock
        self._policy = base
        self._expires = float("-inf")
        self._inflight: asyncio.Task[EgressPolicy] | None = None
        self.database_url = ""

    async def __call__(self) -> EgressPolicy:
        if self._load is None or self._clock() < self._expires:
            return self._policy
        task = self._inflight
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = self._inflight = asyncio.ensure_future(self._reload())
        return await asyncio.shield(task)

    async def _reload(self) -> EgressPolicy:
        assert self._load is not None
        try:
            entries = await self._load()
            valid = []
            for entry in entries:   # validated on write; a bad row must not void the good ones
                try:
                    parse_rule(entry)
                    valid.append(entry)
                except ValueError:
                    log.warning("ignoring a malformed egress allow-list entry %r", entry[:100])
            self._policy = self.base.with_allow(valid)
            self._expires = self._clock() + self._ttl_s
        except Exception as exc:  # noqa: BLE001 - the database may be down; keep enforcing what we have
            log.warning("egress allow-list reload failed (%s: %s); keeping the last one",
                        type(exc).__name__, str(exc)[:200])
            self._expires = self._clock() + self._retry_s
        return self._policy

    def set_loader(self, load: Callable[[], Awaitable[Sequence[str]]] | None, *, database_url: str = "") -> None:
        """Read the allow-list with ``load`` from now on (the next call reloads); with None, the
        allow-list read so far no longer applies either: ``base`` alone does."""
        self._load = load
        self.database_url = database_url
        if load is None:
            self._policy = self.base
        self.invalidate()

    def invalidate(self) -> None:
        """Reload on the next call (after this process changed the allow-list itself)."""
        self._expires = float("-inf")


def policy_from_settings(settings: object | None = None) -> EgressPolicy:
    """The operator's part of the policy (``INCIDENTFOX_EGRESS_ALLOW``, ``…_CLUSTER_CIDRS``,
    ``…_CLUSTER_DOMAINS``)."""
    if settings is None:
        from incidentfox.settings import get_settings

        settings = get_settings()
    return EgressPolicy.build(allow=settings.egress_allow, cluster_cidrs=settings.egress_cluster_cidrs,
                              cluster_domains=settings.egress_cluster_domains)


@lru_cache(maxsize=1)
def process_policy() -> PolicySource:
    """This process's policy: settings, plus the database allow-list when the process knows its
    database (``INCIDENTFOX_DATABASE_URL``, or :func:`use_database`)."""
    from incidentfox.settings import get_settings

    settings = get_settings()
    source = PolicySource(policy_from_settings(settings), ttl_s=settings.egress_allowlist_ttl_s)
    if settings.database_url:
        use_database(settings.database_url, source=source)
    return source


def use_database(database_url: str, *, source: PolicySource | None = None) -> None:
    """Read the global admin's allow-list from ``database_url`` (processes handed their database
    URL explicitly call this at start; idempotent)."""
    from incidentfox.egress.store import loader_for

    source = source or process_policy()
    if source.database_url != database_url:
        source.set_loader(loader_for(database_url), database_url=database_url)
