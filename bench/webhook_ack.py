"""Webhook acknowledgement benchmark (issue 3): how fast the gateway answers signed Slack events.

Three targets, measured one after another in the same run on the same machine:

1. ``plain``: uvicorn + FastAPI doing verify → parse → insert (delivery + run in one transaction),
   no Ray. The practical limit of this machine.
2. ``naive_serve``: the same FastAPI app as a Serve ingress with default settings (separate Ray).
3. ``ours``: the real stack, ``incidentfox up --runner null`` (config service, gateway + router,
   agent API), org secret lookup and routing through the config service included.

Each gets 2,000 signed ``app_mention`` events with distinct ids plus 10% exact retries
(``X-Slack-Retry-Num: 1``, same body and signature), shuffled, from 50 concurrent aiohttp clients,
after a 100-event warm-up. ``runs_created`` (ours) must equal the distinct events. Prints one JSON
line. Usage: ``python bench/webhook_ack.py [--events 2000] [--concurrency 50]``.
"""


import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# No `from __future__ import annotations` in this file: the baseline app is pickled by value into Serve,
# where FastAPI could not resolve string annotations.
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from incidentfox.ports import free_port

SECRET = "bench-slack-signing-secret"
CHANNEL = "CBENCH"


# --- the baseline app (plain and naive Serve) -----------------------------------------------------

def baseline_app(database_url: str):
    """FastAPI app: verify, parse, and record delivery + run in one transaction (static route)."""
    from incidentfox.db import make_async_engine, session_factory
    from incidentfox.errors import install_error_handlers
    from serve_apps import deliveries
    from serve_apps.webhooks import slack

    app = FastAPI()
    install_error_handlers(app)
    state: dict = {}

    def sessions():
        if "s" not in state:
            state["s"] = session_factory(make_async_engine(database_url))
        return state["s"]

    @app.post("/webhooks/slack/events")
    async def events(request: Request) -> JSONResponse:
        body = await request.body()
        slack.verify(headers=request.headers, body=body, secret=SECRET, now=time.time())
        result = slack.parse(headers=request.headers, body=body, now=time.time())
        res = await deliveries.intake(sessions(), trigger=result.trigger,
                                      route=deliveries.Route(True, "bench", "team"), payload=body.decode())
        return JSONResponse(res.response())

    return app


def child(kind: str, port: int, database_url: str) -> None:
    if kind == "plain":
        import uvicorn

        uvicorn.run(baseline_app(database_url), host="127.0.0.1", port=port, log_level="warning",
                    access_log=False)
        return
    import ray
    from ray import serve

    ray.init(include_dashboard=False, log_to_driver=False, namespace="bench-naive")
    serve.start(http_options={"host": "127.0.0.1", "port": port})

    def build():
        return baseline_app(database_url)

    serve.run(serve.deployment(serve.ingress(build)()).bind(), name="naive", route_prefix="/")
    print("READY", flush=True)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    serve.shutdown()
    ray.shutdown()


# --- load generation ------------------------------------------------------------------------------

def make_requests(n: int, prefix: str, retry_fraction: float) -> list[tuple[bytes, dict[str, str]]]:
    """Bodies and extra headers; signatures are added at send time (Slack signs every attempt,
    retries included, with the current timestamp), so a slow target never sees stale requests."""
    now = int(time.time())
    reqs = []
    for i in range(n):
        body = json.dumps({"type": "event_callback", "event_id": f"Ev{prefix}{i:06d}", "api_app_id": "ABENCH",
                           "team_id": "TBENCH", "event_time": now,
                           "event": {"type": "app_mention", "text": f"<@UBOT> is checkout down? #{i}",
                                     "user": "WUSER", "ts": f"{now}.{i:06d}", "channel": CHANNEL}}).encode()
        reqs.append((body, {"Content-Type": "application/json"}))
    retries = [(b, {**h, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
               for b, h in random.sample(reqs, int(n * retry_fraction))]
    out = reqs + retries
    random.shuffle(out)
    return out


async def blast(url: str, reqs: list[tuple[bytes, dict[str, str]]], concurrency: int) -> dict:
    import aiohttp

    from serve_apps.webhooks import slack

    queue: asyncio.Queue = asyncio.Queue()
    for r in reqs:
        queue.put_nowait(r)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    duplicates = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal duplicates
        while True:
            try:
                body, headers = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            headers = {**headers, **slack.sign(body=body, secret=SECRET, timestamp=int(time.time()))}
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                data = await resp.read()
            latencies.append(time.perf_counter() - t0)
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            if b'"duplicate":true' in data.replace(b" ", b""):
                duplicates += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*[worker(session) for _ in range(concurrency)])
        wall = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {"p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": round(latencies[-1] * 1000, 2),
            "rps": round(len(latencies) / wall, 1), "statuses": statuses, "duplicates": duplicates}


def _wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            # An unsigned body answers 401 once the app is routed (404/503 while Serve is starting).
            if httpx.post(url, content=b"{}", timeout=2).status_code not in (404, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def run_phase(name: str, url: str, args: argparse.Namespace) -> dict:
    asyncio.run(blast(url, make_requests(100, f"W{name}", 0.0), args.concurrency))      # warm-up
    return asyncio.run(blast(url, make_requests(args.events, f"M{name}", 0.1), args.concurrency))


def count_runs(database_url: str, prefix: str) -> int:
    from sqlalchemy import func, select

    from incidentfox.db import make_sync_engine
    from incidentfox.runs.models import Delivery, Run

    engine = make_sync_engine(database_url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(Run).join(Delivery, Delivery.run_id == Run.id)
                         .where(Delivery.delivery_id.like(f"Ev{prefix}%"))).scalar_one()
    engine.dispose()
    return int(n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--only", choices=["plain", "naive", "ours"], action="append")
    p.add_argument("--access-log", action="store_true", help="keep Serve access logs on for `ours`")
    p.add_argument("--child", choices=["plain", "naive"])
    p.add_argument("--port", type=int)
    p.add_argument("--db")
    args = p.parse_args()
    if args.child:
        child(args.child, args.port, args.db)
        return
    from incidentfox.db import upgrade

    phases = args.only or ["plain", "naive", "ours"]
    tmp = Path(tempfile.mkdtemp(prefix="ifx-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INCIDENTFOX_", "RAY_"))}
    env.update(SLACK_SIGNING_SECRET=SECRET, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(ROOT))
    results: dict[str, dict] = {}
    for kind in [k for k in ("plain", "naive") if k in phases]:
        db = f"sqlite:///{tmp / kind / 'bench.db'}"
        (tmp / kind).mkdir()
        upgrade(db)
        port = free_port()
        proc = subprocess.Popen([sys.executable, __file__, "--child", kind, "--port", str(port), "--db", db],
                                env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}/webhooks/slack/events"
            _wait_http(url, 180, proc)
            results[kind] = run_phase(kind, url, args)
            results[kind]["runs_created"] = count_runs(db, f"M{kind}")
        finally:
            _stop(proc)
    if "ours" in phases:
        results["ours"] = run_ours(tmp, env, args)
    out = {"events": args.events, "concurrency": args.concurrency,
           "requests": int(args.events * 1.1)}
    ours, plain, naive = results.get("ours"), results.get("plain"), results.get("naive")
    if ours:
        out.update({k: ours[k] for k in ("p50_ms", "p99_ms", "max_ms", "rps", "runs_created", "duplicates",
                                         "statuses")})
    if plain:
        out.update(baseline_p99_ms=plain["p99_ms"], plain_rps=plain["rps"], plain_p50_ms=plain["p50_ms"],
                   plain_runs_created=plain["runs_created"])
    if naive:
        out.update(naive_serve_rps=naive["rps"], naive_serve_p99_ms=naive["p99_ms"],
                   naive_serve_p50_ms=naive["p50_ms"], naive_serve_runs_created=naive["runs_created"],
                   naive_serve_statuses=naive["statuses"])
    if ours and plain:
        out["ratio_p99"] = round(ours["p99_ms"] / plain["p99_ms"], 2)
        out["rps_fraction_of_plain"] = round(ours["rps"] / plain["rps"], 3)
    if ours and naive:
        out["rps_vs_naive"] = round(ours["rps"] / naive["rps"], 2)
    print(json.dumps(out))


def run_ours(tmp: Path, env: dict[str, str], args: argparse.Namespace) -> dict:
    import httpx

    home = tmp / "ours" / ".incidentfox"
    port, dash = free_port(), free_port()
    env = {**env, "INCIDENTFOX_HOME": str(home)}
    log = open(tmp / "ours.log", "w")   # noqa: SIM115 - the child's output for its life; closed below
    extra = [] if args.access_log else ["--no-access-log"]
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--port", str(port), "--runner",
                             "null", "--dashboard-port", str(dash), *extra], env=env, cwd=tmp, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while "Press Ctrl-C" not in (tmp / "ours.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("incidentfox up did not start:\n" + (tmp / "ours.log").read_text()[-3000:])
            time.sleep(0.5)
        base = f"http://127.0.0.1:{port}"
        admin = (home / "admin_token").read_text().strip()
        h = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=base, headers=h, timeout=30) as c:
            c.post("/api/v1/orgs", json={"org_id": "bench", "name": "Bench"}).raise_for_status()
            c.post("/api/v1/orgs/bench/nodes", json={"node_id": "team", "kind": "team", "name": "T"}).raise_for_status()
            c.patch("/api/v1/orgs/bench/nodes/team/config",
                    json={"routing": {"slack_channel_ids": [CHANNEL]}}).raise_for_status()
        result = run_phase("ours", f"{base}/webhooks/slack/events", args)
        result["runs_created"] = count_runs(f"sqlite:///{home.resolve() / 'incidentfox.db'}", "Mours")
        return result
    finally:
        _stop(proc)
        log.close()


if __name__ == "__main__":
    main()
