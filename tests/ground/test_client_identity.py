"""incidentfox/client_identity.py: the client IP behind trusted proxies only, and token identities
that never carry the token."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incidentfox.client_identity import (
    MAX_HOPS,
    TrustedProxyError,
    client_ip,
    ip_key,
    parse_address,
    parse_trusted_proxies,
    token_identity,
)

PROXIES = parse_trusted_proxies(["10.0.0.0/8", "fd00::/8"])


def xff(*values: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-forwarded-for", v.encode("latin-1")) for v in values]


@pytest.mark.parametrize(("peer", "headers", "proxies", "expected"), [
    # Not from a trusted proxy: the header is anyone's to write, so it is ignored.
    ("203.0.113.9", xff("1.2.3.4"), PROXIES, "203.0.113.9"),
    ("203.0.113.9", xff("10.0.0.1"), PROXIES, "203.0.113.9"),
    # No proxy configured (the default): even a private peer is the client.
    ("10.0.0.5", xff("1.2.3.4"), (), "10.0.0.5"),
    # From a trusted proxy: the entry it appended.
    ("10.0.0.5", xff("1.2.3.4"), PROXIES, "1.2.3.4"),
    ("10.0.0.5", [(b"X-Forwarded-For", b" 1.2.3.4 ")], PROXIES, "1.2.3.4"),
    ("10.0.0.5", [], PROXIES, "10.0.0.5"),
    # A chain: trusted hops are skipped from the right; what the client wrote on the left is not read.
    ("10.0.0.5", xff("6.6.6.6, 1.2.3.4, 10.0.0.7"), PROXIES, "1.2.3.4"),
    ("10.0.0.5", xff("6.6.6.6", "1.2.3.4", "10.9.9.9"), PROXIES, "1.2.3.4"),
    # Only trusted hops: the leftmost.
    ("10.0.0.5", xff("10.0.0.9, 10.0.0.8"), PROXIES, "10.0.0.9"),
    # Malformed entries end the walk at the last good hop, never at the sender's choice.
    ("10.0.0.5", xff("1.2.3.4, unknown"), PROXIES, "10.0.0.5"),
    ("10.0.0.5", xff("6.6.6.6, garbage, 10.0.0.7"), PROXIES, "10.0.0.7"),
    ("10.0.0.5", xff("1.2.3.4,,"), PROXIES, "10.0.0.5"),
    ("10.0.0.5", xff("1.2.3.4:"), PROXIES, "10.0.0.5"),
    ("10.0.0.5", xff("evil.example.com"), PROXIES, "10.0.0.5"),
    ("10.0.0.5", xff("[2001:db8::1"), PROXIES, "10.0.0.5"),
    # Ports and brackets as proxies write them; IPv4-mapped IPv6 is IPv4.
    ("10.0.0.5", xff("1.2.3.4:5555"), PROXIES, "1.2.3.4"),
    ("10.0.0.5", xff("[2001:db8::1]:443"), PROXIES, "2001:db8::1"),
    ("10.0.0.5", xff("[2001:db8::1]"), PROXIES, "2001:db8::1"),
    ("10.0.0.5", xff("::ffff:1.2.3.4"), PROXIES, "1.2.3.4"),
    ("::ffff:10.0.0.5", xff("1.2.3.4"), PROXIES, "1.2.3.4"),
    ("fd00::1", xff("2001:db8::5"), PROXIES, "2001:db8::5"),
    ("2001:db8::9", xff("1.2.3.4"), PROXIES, "2001:db8::9"),
    # A peer that is not an address: returned as is, the header unread.
    (None, xff("1.2.3.4"), PROXIES, "unknown"),
    ("testclient", xff("1.2.3.4"), PROXIES, "testclient"),
])
def test_client_ip(peer, headers, proxies, expected):
    assert client_ip(peer, headers, proxies) == expected


def test_only_the_rightmost_hops_are_read():
    chain = ["1.2.3.4"] + [f"10.0.{i // 256}.{i % 256}" for i in range(MAX_HOPS + 5)]
    # The client is further than MAX_HOPS trusted hops away: the walk stops at the last hop it read.
    assert client_ip("10.0.0.5", xff(", ".join(chain)), PROXIES) == chain[-MAX_HOPS]
    assert client_ip("10.0.0.5", xff(", ".join(["1.2.3.4"] + chain[-(MAX_HOPS - 1):])), PROXIES) == "1.2.3.4"


@pytest.mark.parametrize("entry", ["10.0.0.1/8", "proxy.internal", "", "10.0.0.0/33"])
def test_bad_trusted_proxy_entries_are_refused_naming_them(entry):
    with pytest.raises(TrustedProxyError, match="trusted proxy"):
        parse_trusted_proxies([entry])


def test_ip_keys():
    assert ip_key("192.0.2.1") == "ip:192.0.2.1"
    # One IPv6 subscriber (a /64) is one key, whichever address inside it it uses.
    assert ip_key("2001:db8:1:2::9") == ip_key("2001:db8:1:2:ffff:ffff:ffff:1") == "ip6:2001:db8:1:2::/64"
    assert ip_key("2001:db8:1:3::9") != ip_key("2001:db8:1:2::9")
    assert ip_key("testclient") == "peer:testclient"


def test_token_identity_is_a_keyed_hash_never_the_token():
    token = "acme.payments.s3cr3t-0123456789abcdef"
    hdr = [(b"authorization", f"Bearer {token}".encode())]
    ident = token_identity(hdr)
    assert ident is not None and ident.startswith("tok:") and len(ident) == 4 + 32
    assert token not in ident and "s3cr3t" not in ident
    assert token_identity([(b"Authorization", f"bearer  {token} ".encode())]) == ident   # same token
    assert token_identity([(b"authorization", b"Bearer other-token")]) != ident
    # Keyed: another process (another key) cannot recompute it.
    assert token_identity(hdr, key=b"k" * 32) != ident
    assert token_identity(hdr, key=b"k" * 32) == token_identity(hdr, key=b"k" * 32)


@pytest.mark.parametrize("headers", [[], [(b"authorization", b"Basic dXNlcjpwYXNz")],
                                     [(b"authorization", b"Bearer ")],
                                     [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")]])
def test_no_single_bearer_token_has_no_identity(headers):
    assert token_identity(headers) is None


# --- properties -----------------------------------------------------------------------------------

public_v4 = st.ip_addresses(v=4).filter(lambda a: not any(a in n for n in PROXIES))
trusted_v4 = st.integers(0, 2**24 - 1).map(lambda i: ipaddress.IPv4Address(0x0A000000 + i))
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300)


@given(peer=public_v4, values=st.lists(header_text, max_size=3))
def test_an_untrusted_peer_is_the_client_whatever_it_forwards(peer, values):
    assert client_ip(str(peer), xff(*values), PROXIES) == str(peer)


@given(peer=trusted_v4, values=st.lists(header_text, max_size=3))
def test_a_trusted_peer_gives_itself_or_an_address_from_the_header(peer, values):
    got = client_ip(str(peer), xff(*values), PROXIES)
    entries = {str(a) for v in values for e in v.split(",") if (a := parse_address(e)) is not None}
    assert got == str(peer) or got in entries


@given(client=public_v4, spoofed=st.lists(header_text.filter(lambda t: "," not in t), max_size=4),
       hops=st.lists(trusted_v4, min_size=1, max_size=5))
def test_through_trusted_proxies_the_client_is_found_whatever_it_prepends(client, spoofed, hops):
    *inner, peer = hops
    chain = ", ".join([*spoofed, str(client), *map(str, inner)])
    assert client_ip(str(peer), xff(chain), PROXIES) == str(client)
