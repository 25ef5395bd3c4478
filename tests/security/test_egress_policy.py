"""The egress policy as pure functions: what is refused and why, the allow-list grammar and what an
entry admits, the operator settings, and the database-backed policy source."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from security_kit import STRICT, FakeDNS

from incidentfox.egress import (
    EgressPolicy,
    EgressReason,
    EgressRefused,
    PolicySource,
    check_destination,
    parse_rule,
    refusal_in,
)

R = EgressReason


def refused(policy: EgressPolicy, url_host: str, port: int | None = None, scheme: str = "http") -> EgressReason:
    with pytest.raises(EgressRefused) as info:
        policy.plan(scheme=scheme, host=url_host, port=port)
    return info.value.reason


@pytest.mark.parametrize("host, reason", [
    ("127.0.0.1", R.LOOPBACK), ("127.255.255.254", R.LOOPBACK), ("::1", R.LOOPBACK),
    ("169.254.169.254", R.LINK_LOCAL), ("fe80::1", R.LINK_LOCAL), ("fe80::1%25eth0", R.LINK_LOCAL),
    ("10.0.0.1", R.PRIVATE), ("172.16.0.1", R.PRIVATE), ("172.31.255.255", R.PRIVATE),
    ("192.168.1.1", R.PRIVATE), ("100.64.0.1", R.PRIVATE), ("fc00::1", R.PRIVATE), ("fd12:3456::1", R.PRIVATE),
    ("224.0.0.1", R.MULTICAST), ("ff02::1", R.MULTICAST),
    ("0.0.0.0", R.UNSPECIFIED), ("::", R.UNSPECIFIED),
    ("255.255.255.255", R.RESERVED), ("240.0.0.1", R.RESERVED), ("192.0.2.1", R.RESERVED),
    ("198.18.0.1", R.RESERVED), ("2001:db8::1", R.RESERVED), ("2001::1", R.RESERVED),   # Teredo
    # IPv6 forms that carry an IPv4 address are judged by it.
    ("::ffff:127.0.0.1", R.LOOPBACK), ("::ffff:7f00:1", R.LOOPBACK), ("::ffff:169.254.169.254", R.LINK_LOCAL),
    ("::127.0.0.1", R.LOOPBACK), ("::ffff:0:10.0.0.1", R.PRIVATE), ("64:ff9b::7f00:1", R.LOOPBACK),
    ("64:ff9b::a9fe:a9fe", R.LINK_LOCAL), ("2002:7f00:1::", R.LOOPBACK), ("2002:a00:1::1", R.PRIVATE),
])
def test_internal_addresses_are_refused(host: str, reason: EgressReason) -> None:
    assert refused(STRICT, host) == reason
    assert refused(STRICT, f"[{host}]" if ":" in host else host, port=443, scheme="https") == reason


@pytest.mark.parametrize("host", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                                  "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_pass(host: str) -> None:
    plan = STRICT.plan(scheme="https", host=host, port=None)
    assert plan.port == 443 and plan.literal == ipaddress.ip_address(host)


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "017700000001", "0x7f000001", "127.1", "0177.0.0.1",
                                  "127.0.0.01", "0x7f.0.0.1", "134744072", "8.8.2056"])
def test_numeric_ipv4_spellings_are_refused_whatever_they_decode_to(host: str) -> None:
    # 134744072 and 8.8.2056 are 8.8.8.8: refused too, since parsers disagree about such hosts.
    assert refused(STRICT, host) == R.NON_CANONICAL_ADDRESS


def test_unicode_digits_normalise_before_the_check() -> None:
    assert refused(STRICT, "①②⑦.0.0.1") == R.LOOPBACK


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "api.localhost", "kubernetes", "redis",
                                  "api.default.svc", "prometheus.monitoring.svc.cluster.local",
                                  "metadata.google.internal", "printer.local", "nas.home.arpa"])
def test_cluster_internal_names_are_refused_before_any_lookup(host: str) -> None:
    assert refused(STRICT, host) == R.INTERNAL_NAME


def test_operator_cluster_domains_and_cidrs() -> None:
    policy = EgressPolicy.build(cluster_domains=["corp.example"], cluster_cidrs=["203.0.0.0/16"])
    assert refused(policy, "git.corp.example") == R.INTERNAL_NAME
    assert refused(policy, "203.0.1.1") == R.CLUSTER_NETWORK
    assert refused(policy, "::ffff:203.0.1.1") == R.CLUSTER_NETWORK
    assert policy.plan(scheme="http", host="203.1.0.1", port=None).literal is not None


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher", "ws", "dict", ""])
def test_only_http_and_https(scheme: str) -> None:
    assert refused(STRICT, "example.com", scheme=scheme) == R.SCHEME_NOT_ALLOWED


@pytest.mark.parametrize("host", ["", "exa mple.com", "[::1", "a..b", "-x.com"])
def test_malformed_hosts(host: str) -> None:
    assert refused(STRICT, host) == R.INVALID_URL


async def test_every_resolved_address_must_pass() -> None:
    dns = FakeDNS({"mixed.example.com": ["93.184.216.34", "10.1.2.3"], "ok.example.com": ["93.184.216.34"]})
    with pytest.raises(EgressRefused) as info:
        await check_destination(STRICT, scheme="https", host="mixed.example.com", port=None, resolver=dns)
    assert info.value.reason == R.PRIVATE and info.value.host == "mixed.example.com"
    dest = await check_destination(STRICT, scheme="https", host="ok.example.com", port=None, resolver=dns)
    assert dest.address == "93.184.216.34"
    # Names are looked up as absolute names: no DNS search path expansion into cluster domains.
    assert dns.lookups == ["mixed.example.com.", "ok.example.com."]


async def test_a_name_that_does_not_resolve_is_a_network_error_not_a_refusal() -> None:
    with pytest.raises(OSError):
        await check_destination(STRICT, scheme="https", host="nx.example.com", port=None, resolver=FakeDNS({}))


# ---- the allow-list ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, canonical", [
    ("127.0.0.1:8080", "127.0.0.1:8080"), ("10.0.0.0/8", "10.0.0.0/8"), ("10.0.0.0/8:9090", "10.0.0.0/8:9090"),
    ("Prometheus.Example.COM.", "prometheus.example.com"), ("*.corp.example:443", "*.corp.example:443"),
    ("[::1]:8080", "[::1]:8080"), ("::1", "::1"), ("fd00::/8", "fd00::/8"), ("[fd00::/8]:443", "[fd00::/8]:443"),
    ("prometheus.monitoring.svc:9090", "prometheus.monitoring.svc:9090"),
])
def test_allow_entries_parse_to_a_canonical_spelling(text: str, canonical: str) -> None:
    assert str(parse_rule(text)) == canonical
    assert str(parse_rule(canonical)) == canonical


@pytest.mark.parametrize("text", ["", "host:0", "host:65536", "host:x", "10.0.0.1/8", "*", "*.10.0.0.1",
                                  "0x7f.1", "[::1", "[::1]x", "a b", "2130706433:80"])
def test_malformed_allow_entries_are_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rule(text)


def test_an_entry_admits_exactly_its_host_and_port() -> None:
    policy = EgressPolicy.build(allow=["127.0.0.1:8080", "metrics.svc:9090", "*.corp.example"])
    assert policy.plan(scheme="http", host="127.0.0.1", port=8080).admitted
    assert refused(policy, "127.0.0.1", port=8081) == R.LOOPBACK
    assert refused(policy, "127.0.0.2", port=8080) == R.LOOPBACK
    assert refused(policy, "::ffff:127.0.0.2", port=8080) == R.LOOPBACK
    assert policy.plan(scheme="http", host="metrics.svc", port=9090).admitted
    assert refused(policy, "metrics.svc", port=9091) == R.INTERNAL_NAME
    assert refused(policy, "other.svc", port=9090) == R.INTERNAL_NAME
    assert policy.plan(scheme="https", host="git.corp.example", port=None).admitted
    assert not policy.plan(scheme="https", host="corp.example", port=None).admitted   # subdomains only


async def test_a_cidr_entry_admits_resolved_addresses_inside_it_only() -> None:
    policy = EgressPolicy.build(allow=["10.20.0.0/16:443"])
    dns = FakeDNS({"in.example.com": ["10.20.1.1"], "out.example.com": ["10.21.1.1"]})
    dest = await check_destination(policy, scheme="https", host="in.example.com", port=None, resolver=dns)
    assert dest.address == "10.20.1.1"
    with pytest.raises(EgressRefused):
        await check_destination(policy, scheme="http", host="in.example.com", port=None, resolver=dns)  # port 80
    with pytest.raises(EgressRefused):
        await check_destination(policy, scheme="https", host="out.example.com", port=None, resolver=dns)


def test_refusal_in_finds_a_refusal_behind_sdk_wrappers_and_groups() -> None:
    inner = EgressRefused(R.LOOPBACK, "x")
    try:
        try:
            raise inner
        except EgressRefused as e:
            raise RuntimeError("Connection error.") from e
    except RuntimeError as wrapped:
        assert refusal_in(wrapped) is inner
        assert refusal_in(ExceptionGroup("g", [ValueError(), wrapped])) is inner
    assert refusal_in(RuntimeError("other")) is None


# ---- hostile input -------------------------------------------------------------------------------

@given(st.text(max_size=80), st.sampled_from(["http", "https", "ftp"]), st.one_of(st.none(), st.integers(-5, 70000)))
def test_plan_raises_only_the_typed_refusal(host: str, scheme: str, port: int | None) -> None:
    try:
        STRICT.plan(scheme=scheme, host=host, port=port)
    except EgressRefused as exc:
        assert exc.reason in EgressReason


@given(st.text(max_size=80))
def test_parse_rule_raises_only_value_error(text: str) -> None:
    try:
        rule = parse_rule(text)
    except ValueError:
        return
    assert str(parse_rule(str(rule))) == str(rule)


@given(st.integers(0, 2**128 - 1))
def test_every_ipv6_address_is_judged(value: int) -> None:
    ip = ipaddress.IPv6Address(value)
    try:
        STRICT.plan(scheme="http", host=str(ip), port=80)
    except EgressRefused as exc:
        assert exc.reason not in (R.INVALID_URL, R.NON_CANONICAL_ADDRESS)


# ---- settings and the database-backed source -----------------------------------------------------

def test_settings_read_the_operator_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    from incidentfox.egress import policy_from_settings
    from incidentfox.settings import Settings

    monkeypatch.setenv("INCIDENTFOX_EGRESS_ALLOW", "127.0.0.1:9000, [::1]:9000")
    monkeypatch.setenv("INCIDENTFOX_EGRESS_CLUSTER_CIDRS", "198.19.0.0/16")
    policy = policy_from_settings(Settings())
    assert [str(r) for r in policy.allow] == ["127.0.0.1:9000", "[::1]:9000"]
    assert policy.plan(scheme="http", host="::1", port=9000).admitted
    monkeypatch.setenv("INCIDENTFOX_EGRESS_ALLOW", "0x7f.1")
    with pytest.raises(ValueError, match="0x7f.1"):
        Settings()


async def test_the_source_reloads_after_its_ttl_and_keeps_the_last_list_when_the_database_fails() -> None:
    now = [0.0]
    stored: list[str] | Exception = ["127.0.0.1:1234"]

    async def load() -> list[str]:
        if isinstance(stored, Exception):
            raise stored
        return list(stored)

    source = PolicySource(STRICT, load=load, ttl_s=10, retry_s=1, clock=lambda: now[0])
    assert (await source()).plan(scheme="http", host="127.0.0.1", port=1234).admitted
    stored = ["127.0.0.1:5678", "not an entry"]     # a bad row is skipped, the good ones apply
    now[0] = 5
    assert (await source()).plan(scheme="http", host="127.0.0.1", port=1234).admitted   # within the TTL
    now[0] = 11
    policy = await source()
    assert policy.plan(scheme="http", host="127.0.0.1", port=5678).admitted
    assert refused(policy, "127.0.0.1", port=1234) == R.LOOPBACK
    stored = ConnectionError("database down")
    now[0] = 30
    assert (await source()).plan(scheme="http", host="127.0.0.1", port=5678).admitted   # last good list
    source.set_loader(None)     # no database any more: its list no longer applies either
    assert refused(await source(), "127.0.0.1", port=5678) == R.LOOPBACK
