"""An httpx (or httpx2) transport that enforces the egress policy and pins the checked address.

For every request, redirect hops included (httpx sends each hop through the transport):

1. the URL's scheme, host and port are checked and the host resolved once
   (:func:`~incidentfox.egress.guard.check_destination`); a refusal raises
   :class:`~incidentfox.egress.policy.EgressRefused` before any byte is sent, and a name that
   does not resolve raises the library's ``ConnectError``;
2. the request is sent to the checked IP: the URL's host becomes that address, the ``Host``
   header is set from the checked URL (``host[:port]``, whatever ``Host`` the caller sent: behind a
   shared ingress the Host header picks the service, so it must name the host that was checked),
   and for HTTPS the TLS SNI and certificate check use the original name (httpcore's
   ``sni_hostname`` extension). Nothing resolves the name again, so a DNS answer that changes
   between check and connect (rebinding) cannot move the connection.

Connections are pooled per original host name (one inner ``AsyncHTTPTransport`` each), so a
connection verified for one name is never reused for another name that happens to share its
address. Beyond ``max_hosts`` pools, the least recently used pool with no response open is closed.

The ``openai``/``anthropic``/``mcp`` SDKs use ``httpx2``; the tool backends use ``httpx``. Both
have the same transport API, so :func:`egress_transport` builds one for either (``lib``).
``httpx`` is imported only when a caller asks for it (``lib`` left out): importing it also imports
``click`` and ``rich`` (its command-line entry point), ~5 MB of resident memory that a process speaking
only ``httpx2`` (a sandbox host, an SDK client) has no use for.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from types import ModuleType
from typing import Any

from incidentfox.egress.guard import PolicyLike, Resolver, check_destination, process_policy

MAX_HOSTS = 64


@functools.cache
def _transport_class(lib: ModuleType) -> type:
    class _CountedStream(lib.AsyncByteStream):
        """A response body that tells its pool when it is closed (so the pool is not evicted early)."""

        def __init__(self, inner: Any, done: Any) -> None:
            self._inner, self._done = inner, done

        async def __aiter__(self) -> Any:
            async for chunk in self._inner:
                yield chunk

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._done()

    class EgressTransport(lib.AsyncBaseTransport):
        """See the module docstring. ``transport_kwargs`` go to each inner ``AsyncHTTPTransport``
        (``verify``, ``limits``, ``http2`` …)."""

        def __init__(self, *, policy: PolicyLike, resolver: Resolver | None = None,
                     max_hosts: int = MAX_HOSTS, **transport_kwargs: Any) -> None:
            self._policy = policy
            self._resolver = resolver
            self._max_hosts = max_hosts
            self._kwargs = transport_kwargs
            self._pools: OrderedDict[str, Any] = OrderedDict()
            self._open: dict[str, int] = {}     # host → responses not yet closed

        async def _pool(self, host: str) -> Any:
            pool = self._pools.get(host)
            if pool is None:
                pool = self._pools[host] = lib.AsyncHTTPTransport(**self._kwargs)
                idle = [h for h in self._pools if not self._open.get(h) and h != host]
                for h in idle[:max(0, len(self._pools) - self._max_hosts)]:
                    await self._pools.pop(h).aclose()
            else:
                self._pools.move_to_end(host)
            return pool

        def _release(self, host: str) -> None:
            self._open[host] -= 1
            if not self._open[host]:
                del self._open[host]

        async def handle_async_request(self, request: Any) -> Any:
            url = request.url
            try:
                dest = await check_destination(self._policy, scheme=url.scheme, host=url.host, port=url.port,
                                               resolver=self._resolver)
            except OSError as exc:
                raise lib.ConnectError(f"cannot resolve {url.host!r}: {exc}", request=request) from None
            extensions = dict(request.extensions)
            if url.scheme == "https" and dest.plan.literal is None:
                extensions.setdefault("sni_hostname", url.host)
            headers = request.headers.copy()
            headers["Host"] = url.netloc.decode("ascii")   # the checked name, never a caller's override
            pinned = lib.Request(request.method, url.copy_with(host=dest.address), headers=headers,
                                 stream=request.stream, extensions=extensions)
            host = url.host
            pool = await self._pool(host)
            self._open[host] = self._open.get(host, 0) + 1
            try:
                resp = await pool.handle_async_request(pinned)
            except BaseException:
                self._release(host)
                raise
            released = False

            def done() -> None:
                nonlocal released
                if not released:
                    released = True
                    self._release(host)

            return lib.Response(resp.status_code, headers=resp.headers, stream=_CountedStream(resp.stream, done),
                                extensions=resp.extensions)

        async def aclose(self) -> None:
            pools, self._pools = list(self._pools.values()), OrderedDict()
            for pool in pools:
                await pool.aclose()

    EgressTransport.__qualname__ = EgressTransport.__name__ = f"EgressTransport[{lib.__name__}]"
    return EgressTransport


def _default_lib(lib: ModuleType | None) -> ModuleType:
    if lib is not None:
        return lib
    import httpx  # on demand only: see the module docstring

    return httpx


def egress_transport(lib: ModuleType | None = None, *, policy: PolicyLike | None = None,
                     resolver: Resolver | None = None, **transport_kwargs: Any) -> Any:
    """A policy-enforcing, address-pinning transport for ``lib`` (``httpx`` or ``httpx2``; ``httpx``
    when left out). ``policy`` defaults to this process's (:func:`~incidentfox.egress.guard.process_policy`)."""
    cls = _transport_class(_default_lib(lib))
    return cls(policy=policy if policy is not None else process_policy(), resolver=resolver, **transport_kwargs)


def egress_client(lib: ModuleType | None = None, *, policy: PolicyLike | None = None, resolver: Resolver | None = None,
                  client_cls: type | None = None, verify: Any = True, **client_kwargs: Any) -> Any:
    """An ``AsyncClient`` (``client_cls``: e.g. an SDK's ``DefaultAsyncHttpxClient``) whose every
    request goes through :func:`egress_transport`. Environment proxies are ignored
    (``trust_env=False``): a proxy would make the connection on our behalf, unchecked."""
    lib = _default_lib(lib)
    transport = egress_transport(lib, policy=policy, resolver=resolver, verify=verify)
    return (client_cls or lib.AsyncClient)(transport=transport, trust_env=False, **client_kwargs)
