"""Burst benchmark: N investigations (default 1,000) submitted at once through the AgentAPI.

Starts the real local platform (``incidentfox up`` in a subprocess, fresh state in a temporary home,
the Slack API served by the in-process recorder), seeds a team whose runs use the offline planner
on the demo backend with simulated tool latency, then fires N ``POST /api/v1/agent/run`` requests
concurrently and waits until every run is terminal. Reports:

* ``completed`` (succeeded), ``failed``, ``lost`` (not terminal by the time limit, or never created);
* ``wall_s``: first submit → last run terminal;
* ``ttfm_p50_s`` / ``ttfm_p99_s``: run created → its first Slack message;
* ``peak_rss_gib``: peak resident memory of the platform's whole process tree (Ray's GCS, raylet,
  dashboard, Serve and every worker/actor), each physical page counted once: the sum of the
  processes' PSS, which for pages shared only inside the tree is exactly the tree's resident set
  (what a container's memory accounting sees). Sampled every 0.5 s from ``/proc``.
* ``peak_rss_sum_gib``: the peak of the per-process RSS figures added up, which counts every shared
  page (Ray's core library, the interpreter, the dashboard's forked module processes) once per
  process that maps it; ``peak_rss_mib_by_process`` is that sample's breakdown.

Targets: lost = 0, peak RSS ≤ 4 GiB, all done within 120 s on 2 cores. Prints one JSON line.

``--postgres`` runs the platform on a throwaway database of the local PostgreSQL (production's
database; the default is the embedded SQLite) and adds ``pg_peak_connections``, the most connections
the platform held to it at once (``pg_stat_activity``, sampled with the memory).

    .venv/bin/python bench/burst.py [--runs N] [--latency-ms 100] [--timeout 240] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import httpx

from cli.demo.flow import CHANNEL, ORG, TEAM, Demo
from cli.demo.slack_recorder import SlackRecorder

PAGE = os.sysconf("SC_PAGE_SIZE")
# investigation.followup_rounds of the bench team (--followup-rounds): the team-config default unless given.
FOLLOWUP_ROUNDS: int | None = None


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def tree_cpu_seconds(root: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far per process name in ``root``'s tree."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline") as fh:
                cmd = fh.read().split("\0")[0]
        except OSError:
            continue
        name = cmd.split(" ")[0].rsplit("/", 1)[-1] if not cmd.startswith("ray::") else cmd.split(".")[0]
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def largest(values: dict[str, float], n: int | None = None, *, scale: float = 1.0,
            digits: int | None = 1) -> dict[str, float]:
    """The ``n`` largest of ``values`` (all with None), largest first, divided by ``scale`` and rounded
    to ``digits`` (None: to a whole number)."""
    ranked = sorted(values.items(), key=lambda kv: -kv[1])[:n]
    return {k: round(v / scale, digits) for k, v in ranked}


def tree_memory(root: int) -> dict[str, tuple[int, int]]:
    """``(RSS, PSS)`` in bytes of ``root`` and each of its descendants (from /proc), by process label."""
    out: dict[str, tuple[int, int]] = {}
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/statm") as fh:
                resident = int(fh.read().split()[1]) * PAGE
            with open(f"/proc/{pid}/cmdline") as fh:
                cmd = fh.read().split("\0")
        except (OSError, IndexError, ValueError):
            continue
        out[f"{_label(cmd)}#{pid}"] = (resident, _pss(pid))
    return out


def _label(cmd: list[str]) -> str:
    head = cmd[0]
    if head.startswith("ray::"):
        return head.split(" ")[0]
    for part in cmd[1:3]:
        if part.endswith(".py") or "ray/" in part:
            return part.rsplit("/", 1)[-1]
    return head.rsplit("/", 1)[-1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[k]


def _dt(value: str | None) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value)
    return dt


RUNS_QUERY = "SELECT id, status, created_at, first_message_at, finished_at FROM runs"


def sqlite_rows(db: Path, ids: list[str]) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return [r for r in con.execute(RUNS_QUERY).fetchall() if r[0] in set(ids)]
    finally:
        con.close()


class Postgres:
    """A throwaway database for the platform, and one connection of the bench's own to watch it
    (opened before the burst, so the bench never competes with the platform for a connection)."""

    def __init__(self) -> None:
        import psycopg

        from incidentfox.throwaway_db import create_pg_database

        self.name, self.url = create_pg_database("ifx_burst")
        self.con = psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True)

    def rows(self, ids: list[str]) -> list[tuple]:
        wanted = set(ids)
        return [(r[0], r[1], *(v.isoformat() if v else None for v in r[2:]))
                for r in self.con.execute(RUNS_QUERY).fetchall() if r[0] in wanted]

    def connections(self) -> int:
        q = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        return int(self.con.execute(q, (self.name,)).fetchone()[0])

    def close(self) -> None:
        from incidentfox.throwaway_db import drop_pg_database

        self.con.close()
        drop_pg_database(self.name)


async def main(n: int, latency_ms: float, timeout_s: float, max_actors: int, postgres: bool = False) -> dict:
    home = Path(tempfile.mkdtemp(prefix="ifx-burst-"))
    os.environ["INCIDENTFOX_HOME"] = str(home)
    # A 2-core node gains nothing from more investigation processes than cores (they share the CPU).
    os.environ["INCIDENTFOX_POOL_MAX_ACTORS"] = str(max_actors)
    pg = Postgres() if postgres else None
    try:
        return await _burst(n, latency_ms, timeout_s, max_actors, home, pg)
    finally:
        if pg is not None:
            pg.close()


async def _burst(n: int, latency_ms: float, timeout_s: float, max_actors: int, home: Path,
                 pg: Postgres | None) -> dict:
    if pg is not None:
        os.environ["INCIDENTFOX_DATABASE_URL"] = pg.url
    else:
        os.environ.pop("INCIDENTFOX_DATABASE_URL", None)
    pg_peak = 0
    os.environ.pop("INCIDENTFOX_ADMIN_TOKEN", None)
    recorder = SlackRecorder()
    slack_url = await recorder.start()
    from rich.console import Console

    demo = Demo(keep=False, console=Console(stderr=True))
    peak = peak_sum = 0
    peak_by_process: dict[str, int] = {}
    sampling = True

    async def sample() -> None:
        nonlocal peak, peak_sum, peak_by_process, pg_peak
        while sampling:
            if pg is not None:
                pg_peak = max(pg_peak, await asyncio.to_thread(pg.connections))
            if demo.proc is not None and demo.proc.returncode is None:
                memory = await asyncio.to_thread(tree_memory, demo.proc.pid)
                peak = max(peak, sum(pss for _, pss in memory.values()))
                rss = {k: r for k, (r, _) in memory.items()}
                if sum(rss.values()) > peak_sum:
                    peak_sum, peak_by_process = sum(rss.values()), rss
            await asyncio.sleep(0.5)   # sampling period

    sampler = asyncio.create_task(sample())
    try:
        await demo.start_platform(slack_url)
        hdr = {"Authorization": f"Bearer {demo.admin}"}
        async with httpx.AsyncClient(timeout=60) as http:
            await demo.seed(http)
            # One team sends the whole burst: lift its concurrent-run quota so the engine, not the
            # per-team fairness queue, is what is measured.
            patch = {"integrations": {"demo": {"enabled": True, "latency_ms": latency_ms}},
                     "investigation": {"deadline_s": 300}, "quotas": {"max_concurrent_runs": max(n, 1)}}
            if FOLLOWUP_ROUNDS is not None:
                patch["investigation"]["followup_rounds"] = FOLLOWUP_ROUNDS
            resp = await http.patch(f"{demo.base}/api/v1/orgs/{ORG}/nodes/{TEAM}/config", json=patch, headers=hdr)
            resp.raise_for_status()
        body = {"text": "checkout is failing", "services": ["checkout"], "org": ORG, "team": TEAM,
                "thread_channel": CHANNEL}
        cpu_before = await asyncio.to_thread(tree_cpu_seconds, demo.proc.pid)
        started = time.monotonic()
        ids: list[str] = []
        rejected: list[int] = []
        conn = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=conn, headers=hdr) as session:
            async def submit(i: int) -> None:
                async with session.post(f"{demo.base}/api/v1/agent/run", json={**body, "title": f"burst {i}"}) as r:
                    if r.status == 202:
                        ids.append((await r.json())["run_id"])
                    else:
                        rejected.append(r.status)
            await asyncio.gather(*(submit(i) for i in range(n)))
        submitted_s = time.monotonic() - started
        db = home / "incidentfox.db"
        terminal = ("succeeded", "failed", "cancelled")
        rows: list[tuple] = []
        while time.monotonic() - started < timeout_s:
            rows = await asyncio.to_thread(pg.rows, ids) if pg is not None else \
                await asyncio.to_thread(sqlite_rows, db, ids)
            if len(rows) == len(ids) and all(r[1] in terminal for r in rows):
                break
            await asyncio.sleep(0.5)   # polling the database
        wall = time.monotonic() - started
        cpu = await asyncio.to_thread(tree_cpu_seconds, demo.proc.pid)
        burst_cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu.items()}
        done = {r[0]: r for r in rows}
        succeeded = sum(1 for r in rows if r[1] == "succeeded")
        failed = sum(1 for r in rows if r[1] in ("failed", "cancelled"))
        ttfm = []
        for _, _, created, first, _ in rows:
            if created and first:
                ttfm.append((_dt(first) - _dt(created)).total_seconds())
        finished = [_dt(r[4]) for r in rows if r[4]]
        created = [_dt(r[2]) for r in rows if r[2]]
        span = (max(finished) - min(created)).total_seconds() if finished and created else float("nan")
        lost = n - sum(1 for r in done.values() if r[1] in terminal)
        return {"bench": "burst", "runs": n, "submitted": len(ids), "rejected": len(rejected),
                "rejected_statuses": sorted(set(rejected)),
                "submit_s": round(submitted_s, 2), "completed": succeeded, "failed": failed, "lost": lost,
                "wall_s": round(wall if math.isnan(span) else span, 2), "observed_wall_s": round(wall, 2),
                "ttfm_p50_s": round(statistics.median(ttfm), 3) if ttfm else None,
                "ttfm_p99_s": round(percentile(ttfm, 0.99), 3) if ttfm else None,
                "peak_rss_gib": round(peak / 2**30, 3), "peak_rss_sum_gib": round(peak_sum / 2**30, 3),
                "tool_latency_ms": latency_ms, "max_actors": max_actors,
                "database": "postgresql" if pg is not None else "sqlite",
                **({"pg_peak_connections": pg_peak} if pg is not None else {}),
                "slack_calls": len(recorder.calls),
                "peak_rss_mib_by_process": largest(peak_by_process, scale=2**20, digits=None),
                "cpu_s_by_process": largest(cpu, 12),
                # the burst's own share: from the first submit to the last run terminal (start-up excluded)
                "burst_cpu_s": round(sum(burst_cpu.values()), 1),
                "burst_cpu_s_by_process": largest(burst_cpu, 15),
                "ok": lost == 0 and failed == 0 and peak <= 4 * 2**30 and span <= 120}
    finally:
        sampling = False
        await sampler
        await demo.stop_platform()
        await recorder.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="N investigations at once through the AgentAPI.")
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--latency-ms", type=float, default=100.0, help="simulated I/O per demo tool call")
    p.add_argument("--timeout", type=float, default=300.0, help="give up waiting after this many seconds")
    p.add_argument("--max-actors", type=int, default=os.cpu_count() or 2,
                   help="INCIDENTFOX_POOL_MAX_ACTORS for the platform (default: the CPU count)")
    p.add_argument("--postgres", action="store_true",
                   help="run the platform on a throwaway database of the local PostgreSQL (default: SQLite)")
    p.add_argument("--followup-rounds", type=int, default=None,
                   help="the team's investigation.followup_rounds (default: the team-config default)")
    ns = p.parse_args()
    FOLLOWUP_ROUNDS = ns.followup_rounds
    print(json.dumps(asyncio.run(main(ns.runs, ns.latency_ms, ns.timeout, ns.max_actors, ns.postgres))))
