"""The egress policy for aiohttp clients (``slack_sdk``'s ``AsyncWebClient`` runs on aiohttp).

* :class:`EgressResolver` (an ``aiohttp.abc.AbstractResolver``) resolves a name once and returns
  only addresses the policy admits (or raises ``EgressRefused``); the connector connects to what
  it returned, so a second DNS answer (rebinding) cannot move the connection.
* :class:`EgressConnector` (a ``TCPConnector`` using that resolver) also checks what never
  reaches a resolver: the scheme, and IP-literal hosts, which aiohttp connects to directly.
  ``connect`` runs for every request and every redirect hop, so redirects are re-checked.
  A request through a proxy is refused (``proxy_not_allowed``): aiohttp would resolve and connect
  to the proxy, and the proxy to the target, so the target would never be checked.
* :func:`egress_session` builds an ``aiohttp.ClientSession`` on them; environment proxies are
  ignored (``trust_env=False``). That does not cover a caller passing ``proxy=`` per request, which
  ``slack_sdk`` does with the ``HTTPS_PROXY`` it reads itself (``actors/slack/client.py`` clears it);
  the connector's refusal is the backstop.
"""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from incidentfox.egress.guard import PolicyLike, Resolver, check_destination, current_policy, process_policy
from incidentfox.egress.policy import EgressReason, EgressRefused


class EgressResolver(AbstractResolver):
    def __init__(self, policy: PolicyLike, *, resolver: Resolver | None = None) -> None:
        self._policy = policy
        self._resolver = resolver

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        dest = await check_destination(self._policy, scheme="http", host=host, port=port or 80,
                                       resolver=self._resolver)
        wanted = {socket.AF_INET: 4, socket.AF_INET6: 6}.get(family)
        addresses = [a for a in dest.addresses if wanted is None or a.version == wanted] or list(dest.addresses)
        return [ResolveResult(hostname=host, host=str(a), port=port,
                              family=socket.AF_INET if a.version == 4 else socket.AF_INET6,
                              proto=0, flags=socket.AI_NUMERICHOST) for a in addresses]

    async def close(self) -> None:
        return None


class EgressConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` enforcing the egress policy (see the module docstring)."""

    def __init__(self, *, policy: PolicyLike, resolver: Resolver | None = None, **kwargs: Any) -> None:
        super().__init__(resolver=EgressResolver(policy, resolver=resolver), **kwargs)
        self._egress_policy = policy

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        url = req.url
        if req.proxy is not None:   # the proxy would make the connection to the target, unchecked
            raise EgressRefused(EgressReason.PROXY_NOT_ALLOWED, url.raw_host or "",
                                "requests through a proxy are not checked by the egress policy")
        pol = await current_policy(self._egress_policy)
        pol.plan(scheme=url.scheme, host=url.raw_host, port=url.port)   # IP literals are fully checked here
        return await super().connect(req, traces, timeout)


def egress_session(*, policy: PolicyLike | None = None, resolver: Resolver | None = None,
                   **session_kwargs: Any) -> aiohttp.ClientSession:
    """An ``aiohttp.ClientSession`` whose connections all pass the egress policy (the caller closes it)."""
    connector = EgressConnector(policy=policy if policy is not None else process_policy(), resolver=resolver)
    return aiohttp.ClientSession(connector=connector, trust_env=False, **session_kwargs)
