"""incidentfox/rate_limit.py: GCRA arithmetic on an injected clock, the token/IP pair per surface,
and bounded memory. No sleeps: every ``now`` is given."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incidentfox.rate_limit import Buckets, Rate, SurfaceLimiter, Throttled

T0 = 1000.0


def test_a_fresh_key_gets_its_burst_at_once_then_the_rate():
    b = Buckets(Rate(per_s=10, burst=5))
    for _ in range(5):
        assert b.wait("k", T0) == 0.0
        b.take("k", T0)
    assert b.wait("k", T0) == pytest.approx(0.1)          # one emission interval
    assert b.wait("k", T0 + 0.05) == pytest.approx(0.05)
    assert b.wait("k", T0 + 0.1) == 0.0                    # refilled one
    b.take("k", T0 + 0.1)
    assert b.wait("k", T0 + 0.1) == pytest.approx(0.1)
    # After burst/per_s seconds of silence the bucket is full again: 5 more at once.
    later = T0 + 0.1 + 0.5
    for _ in range(5):
        assert b.wait("k", later) == 0.0
        b.take("k", later)
    assert b.wait("k", later) > 0


def test_a_refused_request_costs_nothing():
    b = Buckets(Rate(per_s=1, burst=1))
    b.take("k", T0)
    for i in range(100):
        assert b.wait("k", T0 + i / 1000) > 0             # refused, and never taken
    assert b.wait("k", T0 + 1.0) == 0.0                    # exactly one interval after the first


def test_keys_are_independent():
    b = Buckets(Rate(per_s=1, burst=2))
    b.take("a", T0)
    b.take("a", T0)
    assert b.wait("a", T0) > 0
    assert b.wait("b", T0) == 0.0


@pytest.mark.parametrize(("wait", "header"), [(0.001, 1), (0.2, 1), (1.0, 1), (1.01, 2), (59.5, 60)])
def test_retry_after_is_whole_seconds_rounded_up_at_least_one(wait, header):
    assert Throttled("ip", wait).retry_after_s == header


def test_rates():
    with pytest.raises(ValueError):
        Rate(per_s=-1, burst=10)
    with pytest.raises(ValueError):
        Rate(per_s=float("inf"), burst=10)
    assert not Rate(0, 10).enabled and not Rate(10, 0).enabled and Rate(0.001, 1).enabled
    with pytest.raises(ValueError):
        Buckets(Rate(0, 10))


def test_memory_is_bounded_by_max_keys():
    b = Buckets(Rate(per_s=1, burst=1), max_keys=100)
    for i in range(10_000):
        b.take(f"k{i}", T0)                                # all at one instant: none idle
    assert len(b) == 100
    # The most recent are kept (still owing); the least recently seen were forgotten (forgiven).
    assert b.wait("k9999", T0) > 0 and b.wait("k9900", T0) > 0
    assert b.wait("k9899", T0) == 0.0 and b.wait("k0", T0) == 0.0


def test_idle_keys_are_forgotten():
    b = Buckets(Rate(per_s=10, burst=10))
    for i in range(50):
        b.take(f"old{i}", T0)
    # 50 keys each owe 0.1 s; two seconds later they are full buckets and go, two per request.
    for i in range(30):
        b.take(f"new{i}", T0 + 2)
    assert len(b) == 30


# --- a surface: per token and per IP --------------------------------------------------------------

def limiter(token_burst: int = 3, ip_burst: int = 5) -> SurfaceLimiter:
    return SurfaceLimiter(per_token=Rate(1, token_burst), per_ip=Rate(1, ip_burst))


def test_the_token_limit_names_the_token_and_other_tokens_pass():
    lim = limiter()
    for _ in range(3):
        assert lim.admit(ip="ip:1", token="tok:a", now=T0) is None
    refused = lim.admit(ip="ip:1", token="tok:a", now=T0)
    assert refused is not None and refused.scope == "token" and refused.retry_after_s == 1
    assert lim.admit(ip="ip:1", token="tok:b", now=T0) is None
    assert lim.admit(ip="ip:2", token="tok:c", now=T0) is None


def test_the_ip_limit_covers_every_token_and_anonymous_calls():
    lim = limiter(token_burst=100, ip_burst=5)
    for i in range(5):
        assert lim.admit(ip="ip:1", token=f"tok:{i}", now=T0) is None
    refused = lim.admit(ip="ip:1", token="tok:fresh", now=T0)
    assert refused is not None and refused.scope == "ip"
    assert lim.admit(ip="ip:1", token=None, now=T0).scope == "ip"
    assert lim.admit(ip="ip:2", token=None, now=T0) is None


def test_a_request_refused_by_one_limit_is_not_counted_in_the_other():
    lim = limiter(token_burst=1, ip_burst=2)
    assert lim.admit(ip="ip:1", token="tok:a", now=T0) is None
    for _ in range(50):
        assert lim.admit(ip="ip:1", token="tok:a", now=T0).scope == "token"
    # The IP spent one of two: another token from it still passes once.
    assert lim.admit(ip="ip:1", token="tok:b", now=T0) is None
    assert lim.admit(ip="ip:1", token="tok:c", now=T0).scope == "ip"


def test_zero_disables_a_limit():
    off = SurfaceLimiter(per_token=Rate(0, 0), per_ip=Rate(0, 0))
    assert not off.enabled
    assert all(off.admit(ip="ip:1", token="tok:a", now=T0) is None for _ in range(10_000))
    ip_only = SurfaceLimiter(per_token=Rate(0, 0), per_ip=Rate(1, 2))
    assert [ip_only.admit(ip="ip:1", token=f"tok:{i}", now=T0) is None for i in range(3)] == [True, True, False]


# --- properties -----------------------------------------------------------------------------------

@given(per_s=st.floats(0.5, 200), burst=st.integers(1, 50),
       gaps=st.lists(st.floats(0, 2), min_size=1, max_size=200))
def test_never_more_than_burst_plus_rate_times_elapsed(per_s, burst, gaps):
    b = Buckets(Rate(per_s, burst))
    now, allowed = T0, []
    for gap in gaps:
        now += gap
        if b.wait("k", now) == 0.0:
            b.take("k", now)
            allowed.append(now)
    # In every window [allowed[i], allowed[j]] at most burst + per_s·(span) requests passed.
    for i in range(len(allowed)):
        for j in range(i, len(allowed)):
            assert j - i + 1 <= burst + per_s * (allowed[j] - allowed[i]) + 1e-3


@given(per_s=st.floats(0.5, 200), burst=st.integers(1, 50), n=st.integers(1, 300))
def test_a_client_within_the_rate_is_never_refused(per_s, burst, n):
    b = Buckets(Rate(per_s, burst))
    for i in range(n):
        now = T0 + i / per_s
        assert b.wait("k", now) == 0.0
        b.take("k", now)
