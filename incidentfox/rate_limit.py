"""Inbound rate limits: a GCRA token bucket per key, and the pair of them (token, IP) per surface.

**The algorithm** is GCRA, the generic cell rate algorithm: a token bucket kept as one number per
key, its *theoretical arrival time* (TAT). A bucket of ``burst`` requests refilling at ``per_s``
has an emission interval ``T = 1/per_s``; a request at ``now`` is allowed when
``max(TAT, now) + T - burst·T <= now`` and then moves TAT to ``max(TAT, now) + T``. A fresh key
allows ``burst`` requests at once and ``per_s`` a second after that. A refused request changes
nothing, so a client that waits the ``Retry-After`` it was given gets in. Time is passed in
(``now``, a monotonic clock in seconds), so the arithmetic is tested without sleeping.

**Memory is bounded.** A key whose TAT is in the past holds no state (it is a full bucket), so it
can be forgotten at no cost: each request drops up to two such idle keys from the least recently
used end, and when ``max_keys`` keys are held the least recently used one goes (which forgives
what it owed). Idle keys therefore live about ``burst/per_s`` seconds after their last request.

**Per process.** Each Serve replica (and a standalone config service) holds its own buckets; with
``n`` replicas behind a load balancer a client may get up to ``n`` times the limit. That is
intended: these limits guard a replica against one runaway client, they are not quotas.

Why not the ``limits`` package: its in-memory storage reads the wall clock itself (tests would have
to patch time), expires keys with a background timer, has no bound on keys, and its window
strategies are not a rate plus a burst; GCRA is the few lines below.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

Scope = Literal["token", "ip"]
DEFAULT_MAX_KEYS = 100_000
_IDLE_SWEEP = 2          # idle keys dropped per request, from the least recently used end
# Summing the interval burst times carries float error; a microsecond's grace keeps the
# burst-th request of an instant allowed.
_EPSILON_S = 1e-6


@dataclass(frozen=True)
class Rate:
    """``per_s`` sustained requests a second with bursts of ``burst``; either 0 disables it."""

    per_s: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_s < 0 or self.burst < 0 or not math.isfinite(self.per_s):
            raise ValueError(f"a rate needs per_s >= 0 and burst >= 0, got {self.per_s}/{self.burst}")

    @property
    def enabled(self) -> bool:
        return self.per_s > 0 and self.burst > 0


class Buckets:
    """GCRA buckets of one :class:`Rate`, one per key, at most ``max_keys`` of them."""

    def __init__(self, rate: Rate, *, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        if not rate.enabled:
            raise ValueError("Buckets need an enabled rate")
        if max_keys < 1:
            raise ValueError("max_keys must be ≥ 1")
        self.rate = rate
        self._interval = 1.0 / rate.per_s
        self._tolerance = rate.burst * self._interval
        self._max_keys = max_keys
        self._tat: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tat)

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may make a request (0.0: now). Changes nothing."""
        tat = max(self._tat.get(key, now), now)
        wait = tat + self._interval - self._tolerance - now
        return wait if wait > _EPSILON_S else 0.0

    def take(self, key: str, now: float) -> None:
        """Count one request of ``key`` at ``now`` (call after :meth:`wait` said 0)."""
        self._tat[key] = max(self._tat.get(key, now), now) + self._interval
        self._tat.move_to_end(key)
        self._forget_idle(now)
        while len(self._tat) > self._max_keys:
            self._tat.popitem(last=False)

    def _forget_idle(self, now: float) -> None:
        for _ in range(_IDLE_SWEEP):
            oldest = next(iter(self._tat.items()), None)
            if oldest is None or oldest[1] > now:
                return
            del self._tat[oldest[0]]


@dataclass(frozen=True)
class Throttled:
    """A refused request: which limit (``token`` or ``ip``) and how long until it would pass."""

    scope: Scope
    wait_s: float

    @property
    def retry_after_s(self) -> int:
        """Whole seconds for ``Retry-After``: rounded up, at least 1."""
        return max(1, math.ceil(self.wait_s))


class SurfaceLimiter:
    """The limits of one surface (``api`` or ``webhooks``): per token and per client IP.

    A request passes when every limit that applies has room, and only then is it counted in
    each, so a request refused by one limit costs nothing in the other."""

    def __init__(self, *, per_token: Rate, per_ip: Rate, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self._token = Buckets(per_token, max_keys=max_keys) if per_token.enabled else None
        self._ip = Buckets(per_ip, max_keys=max_keys) if per_ip.enabled else None

    @property
    def enabled(self) -> bool:
        return self._token is not None or self._ip is not None

    def admit(self, *, ip: str, token: str | None, now: float) -> Throttled | None:
        """``None`` when the request may go on (and is counted), else why it may not."""
        checks: list[tuple[Scope, Buckets, str]] = []
        if self._token is not None and token is not None:
            checks.append(("token", self._token, token))
        if self._ip is not None:
            checks.append(("ip", self._ip, ip))
        for scope, buckets, key in checks:
            wait = buckets.wait(key, now)
            if wait > 0:
                return Throttled(scope, wait)
        for _, buckets, key in checks:
            buckets.take(key, now)
        return None
