"""The egress policy, pure: which destinations a call made on a tenant's behalf may reach.

Contract (every function here is pure; resolution and sockets live in :mod:`.guard`):

* Only ``http`` and ``https`` are allowed (``scheme_not_allowed``).
* A host is either a canonical IP literal or a DNS name. A host whose last label is a number
  (``2130706433``, ``0x7f.1``, ``017700000001``, ``127.1``) is an IPv4 spelling that resolvers
  read as an address (``inet_aton``) while URL parsers disagree about it; unless it is a
  canonical dotted quad it is refused (``non_canonical_address``), whatever it decodes to.
* Names that only mean something inside the platform's network are refused before any lookup
  (``internal_name``): ``localhost`` and ``*.localhost``, single-label names (a pod's DNS search
  path would expand them into cluster services), and names under the internal domains (``svc``,
  ``cluster.local``, ``local``, ``internal``, ``home.arpa`` and the operator's cluster domains).
* Every address a name resolves to must be public, or the call is refused: loopback, link-local
  (169.254.169.254 included), private (RFC 1918, CGNAT 100.64/10, fc00::/7), multicast,
  unspecified, reserved/broadcast/documentation ranges, and the operator's cluster CIDRs
  (``cluster_network``). IPv6 forms that carry an IPv4 address (mapped ``::ffff:a.b.c.d``,
  compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by that address.
* The platform allow-list admits what the above refuses. An entry is ``host[:port]`` (a name,
  ``*.suffix`` or an IP) or ``CIDR[:port]`` (IPv6 in brackets when a port follows: ``[fd00::/8]:443``).
  A host entry admits that host (and all its addresses); a CIDR entry admits addresses inside it.
  Without a port an entry admits every port.

Refusals raise :class:`EgressRefused` with a snake_case :class:`EgressReason`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import unquote

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES: dict[str, int] = {"http": 80, "https": 443}
INTERNAL_DOMAINS: tuple[str, ...] = ("localhost", "svc", "cluster.local", "local", "internal", "home.arpa")


class EgressReason(StrEnum):
    SCHEME_NOT_ALLOWED = "scheme_not_allowed"
    INVALID_URL = "invalid_url"
    NON_CANONICAL_ADDRESS = "non_canonical_address"
    INTERNAL_NAME = "internal_name"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link_local"
    PRIVATE = "private"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    RESERVED = "reserved"
    CLUSTER_NETWORK = "cluster_network"
    UNRESOLVABLE = "unresolvable"
    PROXY_NOT_ALLOWED = "proxy_not_allowed"   # a proxy would connect for us: the target is never checked


class EgressRefused(Exception):
    """A destination the policy refuses. ``host`` is the host as the caller wrote it (no path, no
    query, no credentials), so the message is safe to show a tenant and to log."""

    def __init__(self, reason: EgressReason, host: str, detail: str = "") -> None:
        self.reason = EgressReason(reason)
        self.host = host
        self.detail = detail
        super().__init__(f"egress to {host!r} refused: {self.reason.value}" + (f" ({detail})" if detail else ""))


def refusal_in(exc: BaseException | None) -> EgressRefused | None:
    """The :class:`EgressRefused` behind ``exc`` (SDKs wrap transport errors: ``anthropic`` and
    ``openai`` raise ``APIConnectionError`` from it; task groups raise exception groups), or None."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        if isinstance(e, EgressRefused):
            return e
        seen.add(id(e))
        todo += [e.__cause__, e.__context__, *(e.exceptions if isinstance(e, BaseExceptionGroup) else ())]
    return None


def _nets(*specs: tuple[str, EgressReason]) -> tuple[tuple[IPNetwork, EgressReason], ...]:
    return tuple((ipaddress.ip_network(net), reason) for net, reason in specs)


R = EgressReason
# Checked in order; the first match names the reason. IANA special-purpose registries, not
# Python's ``is_private``/``is_global``, whose answers changed between Python versions.
_V4_REFUSED = _nets(
    ("0.0.0.0/8", R.UNSPECIFIED), ("127.0.0.0/8", R.LOOPBACK), ("169.254.0.0/16", R.LINK_LOCAL),
    ("10.0.0.0/8", R.PRIVATE), ("172.16.0.0/12", R.PRIVATE), ("192.168.0.0/16", R.PRIVATE),
    ("100.64.0.0/10", R.PRIVATE),                       # shared address space (CGNAT)
    ("224.0.0.0/4", R.MULTICAST), ("240.0.0.0/4", R.RESERVED),  # 240/4 includes 255.255.255.255
    ("192.0.0.0/24", R.RESERVED), ("192.0.2.0/24", R.RESERVED), ("198.51.100.0/24", R.RESERVED),
    ("203.0.113.0/24", R.RESERVED), ("198.18.0.0/15", R.RESERVED), ("192.88.99.0/24", R.RESERVED),
)
_V6_REFUSED = _nets(
    ("::/128", R.UNSPECIFIED), ("::1/128", R.LOOPBACK), ("fe80::/10", R.LINK_LOCAL),
    ("fc00::/7", R.PRIVATE), ("fec0::/10", R.PRIVATE), ("64:ff9b:1::/48", R.PRIVATE),
    ("ff00::/8", R.MULTICAST), ("100::/64", R.RESERVED), ("2001::/23", R.RESERVED),
    ("2001:db8::/32", R.RESERVED), ("3fff::/20", R.RESERVED),
)
_V6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_V6_COMPATIBLE = ipaddress.ip_network("::/96")
_V6_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_V6_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# WHATWG URL: a host whose last label is a number is an IPv4 address (decimal, 0-octal, 0x-hex).
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_NAME = re.compile(r"^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: mapped, translated, compatible, NAT64, 6to4."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _V6_TRANSLATED or ip in _V6_NAT64 or (ip in _V6_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_reason(ip: IPAddress) -> EgressReason | None:
    """Why ``ip`` may not be reached (None: a public unicast address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.__class__(int(ip))  # drop any %zone
        inner = embedded_ipv4(ip)
        if inner is not None:
            return address_reason(inner)
    for net, reason in (_V4_REFUSED if ip.version == 4 else _V6_REFUSED):
        if ip in net:
            return reason
    if ip.version == 6 and ip not in _V6_GLOBAL_UNICAST:
        return R.RESERVED
    return None


def parse_host(host: str) -> IPAddress | str:
    """A URL host → the IP it is, or the lowercase IDNA name (no trailing dot). Raises
    ``invalid_url`` for an empty or malformed host and ``non_canonical_address`` for IPv4 spellings
    other than the dotted quad."""
    raw = unquote(host.strip())
    if raw.startswith("[") and raw.endswith("]"):
        raw = raw[1:-1]
    if not raw.isascii():
        try:
            raw = raw.encode("idna").decode("ascii")
        except UnicodeError:
            raise EgressRefused(R.INVALID_URL, host, "host is not a valid IDNA name") from None
    name = raw.lower().removesuffix(".")
    if not name:
        raise EgressRefused(R.INVALID_URL, host, "no host")
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    if ":" in name:
        raise EgressRefused(R.INVALID_URL, host, "malformed IPv6 address")
    if _NUMERIC_LABEL.match(name.rsplit(".", 1)[-1]):
        raise EgressRefused(R.NON_CANONICAL_ADDRESS, host, "numeric host that is not a dotted-quad IPv4")
    if not _NAME.match(name) or len(name) > 253:
        raise EgressRefused(R.INVALID_URL, host, "not a valid host name")
    return name


def _under(name: str, domain: str) -> bool:
    return name == domain or name.endswith("." + domain)


@dataclass(frozen=True)
class AllowRule:
    """One allow-list entry: a host (``name``, ``*.suffix``) or a network, and optionally a port."""

    host: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def __str__(self) -> str:
        if self.host is not None:
            where = self.host
        else:
            assert self.network is not None
            single = self.network.num_addresses == 1
            where = str(self.network.network_address) if single else str(self.network)
            if self.network.version == 6 and self.port is not None:
                where = f"[{where}]"
        return where if self.port is None else f"{where}:{self.port}"

    def admits_host(self, host: IPAddress | str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if isinstance(host, str):
            if self.host is None:
                return False
            if self.host.startswith("*."):
                return host.endswith(self.host[1:])      # "*.example.com": subdomains only
            return host == self.host
        return self.admits_address(host, port)

    def admits_address(self, ip: IPAddress, port: int) -> bool:
        if self.network is None or (self.port is not None and self.port != port):
            return False
        if isinstance(ip, ipaddress.IPv6Address):
            ip = ip.__class__(int(ip))
            inner = embedded_ipv4(ip)
            if inner is not None and inner.version == self.network.version and inner in self.network:
                return True
        return ip.version == self.network.version and ip in self.network


def parse_rule(text: str) -> AllowRule:
    """``host[:port]`` or ``CIDR[:port]`` → :class:`AllowRule`; ``ValueError`` naming the problem."""
    entry = text.strip().lower()
    if not entry:
        raise ValueError("empty allow-list entry")
    port: int | None = None
    if entry.startswith("["):
        where, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r}: expected [IPv6] or [IPv6]:port")
        port_text = rest[1:] if rest else None
    elif entry.count(":") > 1:
        where, port_text = entry, None     # a bare IPv6 address or network: no port
    else:
        where, _, port_text = entry.partition(":")
        port_text = port_text if _ else None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{text!r}: port must be 1-65535")
        port = int(port_text)
    if "/" in where:
        try:
            return AllowRule(network=ipaddress.ip_network(where, strict=True), port=port)
        except ValueError as exc:
            raise ValueError(f"{text!r}: {exc}") from None
    wildcard = where.startswith("*.")
    try:
        host = parse_host(where[2:] if wildcard else where)
    except EgressRefused as exc:
        raise ValueError(f"{text!r}: {exc.detail or exc.reason.value}") from None
    if isinstance(host, str):
        return AllowRule(host=("*." + host) if wildcard else host, port=port)
    if wildcard:
        raise ValueError(f"{text!r}: a wildcard needs a domain name")
    return AllowRule(network=ipaddress.ip_network(host), port=port)


def parse_rules(entries: Iterable[str]) -> tuple[AllowRule, ...]:
    return tuple(parse_rule(e) for e in entries if e and e.strip())


def split_list(value: str | Iterable[str] | None) -> list[str]:
    """A comma/whitespace-separated setting (or a list) → its non-empty items."""
    if value is None:
        return []
    items = re.split(r"[,\s]+", value) if isinstance(value, str) else list(value)
    return [i.strip() for i in items if i and i.strip()]


@dataclass(frozen=True)
class Plan:
    """A checked scheme/host/port before resolution. ``literal`` is set for IP hosts (then there is
    nothing to resolve); ``admitted`` when an allow-list host entry admits the host as a whole."""

    scheme: str
    host: str                      # the host as given (for messages and TLS)
    name: str | None               # the normalised DNS name (None for IP literals)
    port: int
    literal: IPAddress | None = None
    admitted: bool = False


@dataclass(frozen=True)
class Destination:
    """Where a call may connect: every address here passed the policy; connect to ``addresses[0]``."""

    plan: Plan
    addresses: tuple[IPAddress, ...]

    @property
    def address(self) -> str:
        return str(self.addresses[0])


@dataclass(frozen=True)
class EgressPolicy:
    """The allow-list plus the operator's cluster networks and domains. Immutable; see module doc."""

    allow: tuple[AllowRule, ...] = ()
    cluster_cidrs: tuple[IPNetwork, ...] = ()
    internal_domains: tuple[str, ...] = INTERNAL_DOMAINS
    schemes: dict[str, int] = field(default_factory=lambda: dict(SCHEMES))

    @classmethod
    def build(cls, *, allow: Iterable[str] = (), cluster_cidrs: Iterable[str] = (),
              cluster_domains: Iterable[str] = ()) -> EgressPolicy:
        """From the textual settings; ``ValueError`` names a malformed entry."""
        nets = tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cluster_cidrs if c.strip())
        domains = INTERNAL_DOMAINS + tuple(d.strip().lower().strip(".") for d in cluster_domains if d.strip())
        return cls(allow=parse_rules(allow), cluster_cidrs=nets, internal_domains=domains)

    def with_allow(self, entries: Iterable[str]) -> EgressPolicy:
        """This policy with more allow-list entries (the database's, on top of the operator's)."""
        return EgressPolicy(allow=self.allow + parse_rules(entries), cluster_cidrs=self.cluster_cidrs,
                            internal_domains=self.internal_domains, schemes=self.schemes)

    def plan(self, *, scheme: str, host: str | None, port: int | None) -> Plan:
        """Check everything that needs no DNS; an IP literal is fully checked here."""
        scheme = (scheme or "").lower()
        if scheme not in self.schemes:
            raise EgressRefused(R.SCHEME_NOT_ALLOWED, host or "", f"scheme {scheme or '(none)'!r}")
        port = self.schemes[scheme] if port is None else port
        if not 0 < port < 65536:
            raise EgressRefused(R.INVALID_URL, host or "", "port out of range")
        parsed = parse_host(host or "")
        admitted = any(rule.admits_host(parsed, port) for rule in self.allow)
        if isinstance(parsed, str):
            if not admitted:
                self._check_name(parsed, host or "")
            return Plan(scheme, host or "", parsed, port, admitted=admitted)
        plan = Plan(scheme, host or "", None, port, literal=parsed, admitted=admitted)
        self.admit(plan, [parsed])
        return plan

    def _check_name(self, name: str, host: str) -> None:
        if "." not in name:
            raise EgressRefused(R.INTERNAL_NAME, host, "single-label name")
        for domain in self.internal_domains:
            if _under(name, domain):
                raise EgressRefused(R.INTERNAL_NAME, host, f"under {domain}")

    def admit(self, plan: Plan, addresses: Sequence[IPAddress | str]) -> Destination:
        """Check every resolved address (all must pass: a mixed answer is refused as a whole)."""
        ips = tuple(a if not isinstance(a, str) else ipaddress.ip_address(a) for a in addresses)
        if not ips:
            raise EgressRefused(R.UNRESOLVABLE, plan.host, "no addresses")
        if not plan.admitted:
            for ip in ips:
                reason = self.address_reason(ip, plan.port)
                if reason is not None:
                    raise EgressRefused(reason, plan.host, "" if plan.literal is not None else f"resolves to {ip}")
        return Destination(plan, ips)

    def address_reason(self, ip: IPAddress, port: int) -> EgressReason | None:
        """Why this policy refuses ``ip:port`` (None: allowed)."""
        if any(rule.admits_address(ip, port) for rule in self.allow):
            return None
        judged = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)) is not None:
            judged.append(inner)
        if any(j.version == n.version and j in n for j in judged for n in self.cluster_cidrs):
            return R.CLUSTER_NETWORK
        return address_reason(ip)
