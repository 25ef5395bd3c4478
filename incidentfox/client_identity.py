"""Who is calling, for rate limits: the client's IP address and a one-way identity of its token.

Pure functions of the peer address (the TCP peer the ASGI server saw), the raw request headers and
the configured trusted proxies; nothing here does I/O.

**Client IP** (:func:`client_ip`). ``X-Forwarded-For`` is anyone's to write, so it is read only when
the peer itself is a trusted proxy (``INCIDENTFOX_TRUSTED_PROXIES``; empty by default: no proxy is
trusted and the peer is the client). Then the header (several headers are one list, in order) is
walked from the right, the entry the nearest proxy appended first, skipping entries that are
themselves trusted proxies; the first untrusted address is the client. Entries to its left were
written by the client and are never read. An entry that is not an address (``unknown``, a name,
garbage) ends the walk: the client is the last well-formed hop before it (a trusted proxy), so a
malformed chain can throttle its proxy but can never name an address of the sender's choosing.
A chain made only of trusted proxies gives its leftmost entry. Only the rightmost
:data:`MAX_HOPS` entries are looked at.

**Rate-limit keys** (:func:`ip_key`): an IPv4 client is its address; an IPv6 client is its ``/64``,
the smallest block a single subscriber is normally given (one host can use any address inside it).

**Token identity** (:func:`token_identity`): ``tok:`` and a keyed BLAKE2b digest of the bearer
token, keyed with a random per-process secret, so the key can be neither reversed nor recomputed
outside the process; the raw token never becomes a key, a log field or a response.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Headers = Iterable[tuple[bytes, bytes]]

MAX_HOPS = 32                 # entries of X-Forwarded-For looked at, from the right
MAX_TOKEN_LEN = 1024          # as incidentfox.http_limits: longer is not a token
_PROCESS_KEY = os.urandom(32)


class TrustedProxyError(ValueError):
    """A trusted-proxy entry that is not an address or a network (names the entry)."""


def parse_trusted_proxies(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``10.0.0.0/8``, ``192.0.2.7`` or ``2001:db8::/32`` entries as networks. A network with host
    bits set (``10.0.0.1/8``) is refused: it usually means a typo, and ``strict`` makes it loud."""
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip()
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as exc:
            raise TrustedProxyError(f"trusted proxy {entry!r} is not an address or a CIDR: {exc}") from None
    return tuple(networks)


def parse_address(text: str) -> IPAddress | None:
    """One address as a proxy writes it: ``192.0.2.1``, ``192.0.2.1:443``, ``2001:db8::1``,
    ``[2001:db8::1]`` or ``[2001:db8::1]:443``; an IPv4-mapped IPv6 address is its IPv4 address.
    ``None`` for anything else."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        text = host
    elif text.count(":") == 1:                      # IPv4 with a port
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def forwarded_for(headers: Headers) -> list[str]:
    """The entries of every ``X-Forwarded-For`` header, in order, rightmost :data:`MAX_HOPS` only."""
    values = [v.decode("latin-1") for k, v in headers if k.lower() == b"x-forwarded-for"]
    joined = ",".join(values)
    return joined.rsplit(",", MAX_HOPS)[-MAX_HOPS:] if joined else []


def client_ip(peer: str | None, headers: Headers, trusted_proxies: Sequence[IPNetwork]) -> str:
    """The client's address as text (see the module docstring for the rules).

    ``peer`` is the ASGI ``scope["client"][0]``; when it is absent or not an address (a Unix
    socket, a test client's name) it is returned as it is (``"unknown"`` when absent), and the
    header is not read: only an address can be a trusted proxy."""
    if peer is None:
        return "unknown"
    hop = parse_address(peer)
    if hop is None:
        return peer[:64]
    if not trusted_proxies or not _trusted(hop, trusted_proxies):
        return str(hop)
    for entry in reversed(forwarded_for(headers)):
        address = parse_address(entry)
        if address is None:
            break                                   # malformed: keep the last good hop
        hop = address
        if not _trusted(hop, trusted_proxies):
            break
    return str(hop)


def ip_key(ip: str) -> str:
    """The rate-limit key of a client address: ``ip:<v4>``, ``ip6:<its /64>``, or ``peer:<text>``
    for a peer that is not an address."""
    address = parse_address(ip)
    if address is None:
        return "peer:" + ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        return "ip6:" + str(ipaddress.IPv6Network((address, 64), strict=False))
    return "ip:" + str(address)


def bearer_token(headers: Headers) -> bytes | None:
    """The token of the one ``Authorization: Bearer <token>`` header, else ``None``."""
    values = [v for k, v in headers if k.lower() == b"authorization"]
    if len(values) != 1:
        return None
    scheme, _, token = values[0].strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token or len(token) > MAX_TOKEN_LEN:
        return None
    return token


def token_identity(headers: Headers, *, key: bytes = _PROCESS_KEY) -> str | None:
    """``tok:`` + 32 hex digits identifying the request's bearer token, ``None`` without one.

    A keyed hash: equal tokens give equal identities in this process, and nothing about the token
    can be learnt from the identity."""
    token = bearer_token(headers)
    if token is None:
        return None
    return "tok:" + hashlib.blake2b(token, key=key, digest_size=16).hexdigest()
