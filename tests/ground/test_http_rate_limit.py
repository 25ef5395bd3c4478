"""incidentfox/http_rate_limit.py: the ASGI middleware over a small app, on an injected clock.

What callers see: 429 with ``Retry-After`` and the shared error body naming the limit, for one token
or one address only; an X-Forwarded-For from an untrusted peer buys no fresh bucket; a trusted
proxy's clients are told apart; the body of a refused request is never read; and the defaults let
a busy script through.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request

from incidentfox import metrics
from incidentfox.http_rate_limit import install_rate_limits
from incidentfox.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def small_app(settings: Settings, clock: Clock, *, surface="api", path_prefix="") -> FastAPI:
    app = FastAPI()
    app.state.bodies = 0

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def echo(request: Request) -> dict:
        if request.method == "POST":
            await request.body()
            app.state.bodies += 1
        return {"ok": True}

    install_rate_limits(app, surface=surface, settings=settings, path_prefix=path_prefix, clock=clock)
    return app


def client(app: FastAPI, ip: str = "198.51.100.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url="http://t")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def limits(tmp_path, **kw) -> Settings:
    base = {"rate_limit_api_token_per_s": 1, "rate_limit_api_token_burst": 3,
            "rate_limit_api_ip_per_s": 1, "rate_limit_api_ip_burst": 10,
            "rate_limit_webhooks_token_per_s": 1, "rate_limit_webhooks_token_burst": 3,
            "rate_limit_webhooks_ip_per_s": 1, "rate_limit_webhooks_ip_burst": 2}
    return Settings(home=tmp_path, **{**base, **kw})


@pytest.fixture
def counted(monkeypatch):
    seen: list[dict[str, str]] = []
    real = metrics.RATE_LIMITED_TOTAL.inc

    def inc(value: float = 1.0, **tags: str) -> None:
        real(value, **tags)          # still checks the declared tags
        seen.append(tags)

    monkeypatch.setattr(metrics.RATE_LIMITED_TOTAL, "inc", inc)
    return seen


async def test_past_the_token_limit_429_with_retry_after_others_unaffected(tmp_path, counted):
    clock = Clock()
    app = small_app(limits(tmp_path), clock)
    async with client(app) as c, client(app, "203.0.113.50") as other_ip:
        for _ in range(3):
            assert (await c.get("/x", headers=bearer("token-a"))).status_code == 200
        r = await c.get("/x", headers=bearer("token-a"))
        assert r.status_code == 429
        assert r.headers["retry-after"] == "1"
        assert r.json() == {"error": {"code": "rate_limited",
                                      "message": "too many requests for this token; retry in 1 s",
                                      "details": {"scope": "token", "retry_after_s": 1}}}
        assert "token-a" not in r.text
        # Another token from the same address, and other addresses, go on.
        assert (await c.get("/x", headers=bearer("token-b"))).status_code == 200
        assert (await other_ip.get("/x", headers=bearer("token-c"))).status_code == 200
        assert (await other_ip.get("/x")).status_code == 200
        # The token's limit follows the token to any address.
        assert (await other_ip.get("/x", headers=bearer("token-a"))).status_code == 429
        clock.now += 1.0                                   # Retry-After later: one more passes
        assert (await c.get("/x", headers=bearer("token-a"))).status_code == 200
    assert counted == [{"surface": "api", "scope": "token"}] * 2


async def test_past_the_ip_limit_every_token_from_that_address_waits(tmp_path, counted):
    app = small_app(limits(tmp_path, rate_limit_api_ip_burst=4, rate_limit_api_ip_per_s=0.5), Clock())
    async with client(app) as c, client(app, "203.0.113.50") as other_ip:
        for i in range(4):
            assert (await c.get("/x", headers=bearer(f"t{i}"))).status_code == 200
        r = await c.get("/x", headers=bearer("fresh"))
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert r.json()["error"]["details"] == {"scope": "ip", "retry_after_s": 2}
        assert r.json()["error"]["message"] == "too many requests for this address; retry in 2 s"
        assert (await other_ip.get("/x", headers=bearer("fresh"))).status_code == 200
    assert counted == [{"surface": "api", "scope": "ip"}]


async def test_x_forwarded_for_from_an_untrusted_peer_buys_no_fresh_bucket(tmp_path):
    app = small_app(limits(tmp_path, rate_limit_api_ip_burst=3), Clock())
    async with client(app) as c:
        codes = [(await c.get("/x", headers={"X-Forwarded-For": f"192.0.2.{i}"})).status_code for i in range(6)]
    assert codes == [200, 200, 200, 429, 429, 429]


async def test_a_trusted_proxys_clients_each_have_their_own_bucket(tmp_path):
    app = small_app(limits(tmp_path, rate_limit_api_ip_burst=2, trusted_proxies="10.0.0.0/8"), Clock())
    async with client(app, "10.1.2.3") as via_proxy:
        def hop(ip: str) -> dict[str, str]:
            # The client may prepend anything; the proxy appends what it saw.
            return {"X-Forwarded-For": f"6.6.6.6, {ip}, 10.9.9.9"}
        assert [(await via_proxy.get("/x", headers=hop("192.0.2.1"))).status_code for _ in range(3)] == [200, 200, 429]
        assert (await via_proxy.get("/x", headers=hop("192.0.2.2"))).status_code == 200
        # Without a header the proxy itself is the client.
        assert [(await via_proxy.get("/x")).status_code for _ in range(3)] == [200, 200, 429]


async def test_a_refused_request_body_is_never_read(tmp_path):
    app = small_app(limits(tmp_path, rate_limit_api_ip_burst=1), Clock())
    pulled = []

    async def body():
        pulled.append(1)
        yield b"{}"

    async with client(app) as c:
        assert (await c.post("/x", content=b"{}")).status_code == 200
        assert (await c.post("/x", content=body())).status_code == 429
    assert pulled == [] and app.state.bodies == 1


async def test_the_prefix_limits_only_its_paths(tmp_path):
    app = small_app(limits(tmp_path, rate_limit_api_ip_burst=1), Clock(), path_prefix="/api/")
    async with client(app) as c:
        assert [(await c.get("/health")).status_code for _ in range(5)] == [200] * 5
        assert [(await c.get("/api/v1/x")).status_code for _ in range(2)] == [200, 429]


async def test_webhooks_have_their_own_limits(tmp_path):
    app = small_app(limits(tmp_path), Clock(), surface="webhooks")
    async with client(app) as c:
        assert [(await c.post("/slack/events", content=b"{}")).status_code for _ in range(3)] == [200, 200, 429]


async def test_zero_turns_the_limits_off(tmp_path):
    off = limits(tmp_path, rate_limit_api_token_per_s=0, rate_limit_api_ip_burst=0)
    app = small_app(off, Clock())
    async with client(app) as c:
        for _ in range(50):
            assert (await c.get("/x", headers=bearer("t"))).status_code == 200


async def test_defaults_let_a_busy_script_through(tmp_path):
    """One token from one address: 1,000 calls in the same instant, then 1,000 more at 90 a second
    (a script looping as fast as its round trips allow), none throttled."""
    clock = Clock()
    defaults = Settings(home=tmp_path)
    app = small_app(defaults, clock)
    async with client(app) as c:
        for _ in range(1000):
            assert (await c.get("/x", headers=bearer("busy-script"))).status_code == 200
        for _ in range(1000):
            clock.now += 1 / 90
            assert (await c.get("/x", headers=bearer("busy-script"))).status_code == 200
        # The limit is still there: a runaway loop at thousands a second is refused.
        assert (await c.get("/x", headers=bearer("busy-script"))).status_code == 200
        codes = [(await c.get("/x", headers=bearer("busy-script"))).status_code for _ in range(1000)]
        assert 429 in codes


def test_defaults_are_the_documented_ones(tmp_path):
    s = Settings(home=tmp_path)
    assert (s.rate_limit_api_token_per_s, s.rate_limit_api_token_burst) == (100, 1000)
    assert (s.rate_limit_api_ip_per_s, s.rate_limit_api_ip_burst) == (200, 2000)
    assert (s.rate_limit_webhooks_token_per_s, s.rate_limit_webhooks_token_burst) == (100, 1000)
    assert (s.rate_limit_webhooks_ip_per_s, s.rate_limit_webhooks_ip_burst) == (200, 2000)
    assert s.trusted_proxies == []
