"""Which request headers a tenant's integration may set (``integrations.<name>.headers``).

A tenant's extra headers carry credentials and routing hints for the tenant's own service (an
``X-Api-Key``, a Grafana ``X-Scope-OrgID``). They may not choose where a request goes or how it is
framed, because the egress policy checks the URL, not the headers:

* ``Host`` (and HTTP/2 pseudo-headers such as ``:authority``): behind a shared ingress or load
  balancer, the Host header picks the virtual host, so a request pinned to an allow-listed address
  would reach any other service behind the same address;
* hop-by-hop and framing headers (``Connection``, ``Keep-Alive``, ``Proxy-*``, ``TE``, ``Trailer``,
  ``Transfer-Encoding``, ``Upgrade``, ``Content-Length``): they belong to the connection the HTTP
  client makes, and a conflicting length or encoding can smuggle a second request past a proxy.

Names compare case-insensitively. The config service refuses them at write
(``config_service/integration_blocks.py``); the tools drop them at use
(``actors/tools/httpcall.py``, for a config written before this rule); the egress transport sets
``Host`` from the checked URL whatever the caller sent (``incidentfox/egress/transport.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RESERVED_HEADERS: frozenset[str] = frozenset({
    "host", "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "content-length",
})
RESERVED_PREFIXES: tuple[str, ...] = ("proxy-", ":")


def is_reserved_header(name: str) -> bool:
    """True for a header name an integration may not set (see the module docstring)."""
    key = name.strip().lower()
    return key in RESERVED_HEADERS or key.startswith(RESERVED_PREFIXES)


def tenant_headers(headers: Mapping[Any, Any] | None) -> dict[str, str]:
    """``headers`` as strings, without the reserved names."""
    return {str(k): str(v) for k, v in (headers or {}).items() if not is_reserved_header(str(k))}
