"""Benchmark: routing lookup and effective-config reads through the config service layer.

Seeds 100 orgs × 10 teams (1,000 teams), each team claiming 10 routing identifiers, through the
real service functions (so claims, versions and audit rows exist as in production), then measures
in-process, one session per call as the API does:

* ``routing``: :func:`config_service.services.routing.lookup` with two identifiers (one hit, one miss);
* ``effective_cached``: :func:`get_effective_config` with a warm cache (still reads the org epoch);
* ``effective_uncached``: the same with the cache cleared before each call;
* ``baseline_select``: a single indexed ``SELECT`` (org epoch by primary key) on the same database.

The four are interleaved round-robin, so a busy shared machine slows them alike and the ratios stay
meaningful even when the absolute numbers are not. The uncached series evicts only its own entry
(untimed) before each call; ``effective_cached_hit_rate`` reports how warm the cached series was.

Prints one JSON line: ``*_p50_ms``/``*_p99_ms`` for each, ``*_p99_ratio`` against the baseline, and
whether the target (cached effective config and routing p99 ≤ 2 ms on SQLite) is met.

    .venv/bin/python bench/config_routing.py [--database-url URL] [--samples N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from config_service.db.models import Org
from config_service.services import config as config_svc
from config_service.services import nodes, orgs, routing
from config_service.services.cache import EFFECTIVE_CACHE
from incidentfox.db import make_async_engine, session_factory, upgrade
from incidentfox.settings import Settings

TARGET_P99_MS = 2.0


def team_claims(org: int, team: int) -> dict[str, list[str]]:
    tag = f"{org:03d}{team:02d}"
    return {  # 10 identifiers per team
        "slack_channel_ids": [f"C{tag}A", f"C{tag}B"],
        "github_repos": [f"org{org}/svc{team}-api", f"org{org}/svc{team}-web"],
        "pagerduty_service_ids": [f"P{tag}X", f"P{tag}Y"],
        "incidentio_team_ids": [f"01INC{tag}"],
        "alertmanager_receivers": [f"am-{tag}"],
        "services": [f"svc-{tag}-a", f"svc-{tag}-b"],
    }


async def seed(factory, settings: Settings, n_orgs: int, n_teams: int) -> list[tuple[str, str, dict]]:
    teams = []
    for o in range(n_orgs):
        org_id = f"org-{o:03d}"
        async with factory() as s:
            await orgs.create_org(s, org_id=org_id, name=f"Org {o}", actor="bench")
            await config_svc.patch_config(s, settings=settings, org_id=org_id, node_id=org_id, actor="bench",
                                          patch={"llm": {"provider": "openai", "model": "gpt-4o-mini"},
                                                 "investigation": {"deadline_s": 240},
                                                 "locked_paths": ["llm.provider"]})
            await nodes.create_node(s, org_id=org_id, node_id="eng", parent_id=None, kind="unit", name="Eng",
                                    actor="bench")
            await config_svc.patch_config(s, settings=settings, org_id=org_id, node_id="eng", actor="bench",
                                          patch={"quotas": {"max_concurrent_runs": 8}, "tools": {"k8s": True}})
            for t in range(n_teams):
                team_id = f"team-{t:02d}"
                claims = team_claims(o, t)
                await nodes.create_node(s, org_id=org_id, node_id=team_id, parent_id="eng", kind="team",
                                        name=team_id, actor="bench")
                await config_svc.patch_config(s, settings=settings, org_id=org_id, node_id=team_id, actor="bench",
                                              patch={"routing": claims, "slack": {"default_channel": claims[
                                                  "slack_channel_ids"][0]},
                                                  "integrations": {"slack": {"bot_token": "xoxb-bench"}}})
                teams.append((org_id, team_id, claims))
    return teams


async def measure(factory, fns: dict, samples: int, every: dict[str, int] | None = None) -> dict[str, list[float]]:
    """Time each ``(prepare, fn)`` ``samples`` times, interleaved round-robin so every series sees the
    same machine load (the box is shared; sequential phases would compare different moments).
    ``prepare()`` runs untimed and returns ``fn``'s arguments; ``every[name]=k`` runs a series only
    every k-th round."""
    gc.collect()
    out: dict[str, list[float]] = {name: [] for name in fns}
    every = every or {}
    for i in range(samples):
        for name, (prepare, fn) in fns.items():
            if i % every.get(name, 1):
                continue
            args = prepare()
            start = time.perf_counter_ns()
            async with factory() as s:
                await fn(s, *args)
            out[name].append((time.perf_counter_ns() - start) / 1e6)
    return out


def pct(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 4)


async def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temp dir")
    ap.add_argument("--orgs", type=int, default=100)
    ap.add_argument("--teams-per-org", type=int, default=10)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(home=Path(tmp.name), database_url=url, token_pepper=SecretStr(secrets.token_hex(32)),
                        secret_key=SecretStr(Fernet.generate_key().decode()))
    engine = make_async_engine(url)
    factory = session_factory(engine)
    try:
        t0 = time.perf_counter()
        teams = await seed(factory, settings, args.orgs, args.teams_per_org)
        seed_s = time.perf_counter() - t0
        org_ids = sorted({o for o, _, _ in teams})

        keys = list(routing.ROUTING_CLAIM_KEYS.items())

        def pick_org():
            return (rng.choice(org_ids),)

        def pick_identifiers():
            org_id, team_id, claims = rng.choice(teams)
            plural, kind = rng.choice(keys)
            miss = "github_repo" if kind == "service" else "service"
            return {kind: rng.choice(claims[plural]), miss: "no/such-thing"}, (org_id, team_id)

        def pick_team():
            return rng.choice(teams)[:2]

        def pick_evicted_team():
            org_id, team_id = pick_team()
            EFFECTIVE_CACHE.invalidate(org_id, team_id)  # untimed: only this entry goes cold
            return org_id, team_id

        async def baseline(s, org_id):
            (await s.execute(select(Org.epoch).where(Org.id == org_id))).scalar_one()

        async def lookup(s, identifiers, expected):
            got = await routing.lookup(s, identifiers=identifiers)
            assert (got["org_id"], got["team_node_id"]) == expected

        async def effective(s, org_id, team_id):
            cfg = await config_svc.get_effective_config(s, org_id=org_id, node_id=team_id)
            assert cfg["quotas"]["max_concurrent_runs"] == 8

        for org_id, team_id, _ in teams:  # warm the effective-config cache
            async with factory() as s:
                await config_svc.get_effective_config(s, org_id=org_id, node_id=team_id)
        fns = {"baseline_select": (pick_org, baseline), "routing": (pick_identifiers, lookup),
               "effective_cached": (pick_team, effective), "effective_uncached": (pick_evicted_team, effective)}
        await measure(factory, fns, 100)  # warm connections and statement caches
        hits = EFFECTIVE_CACHE.hits
        results = await measure(factory, fns, args.samples, every={"effective_uncached": 2})
        cached_hit_rate = (EFFECTIVE_CACHE.hits - hits) / len(results["effective_cached"])
    finally:
        await engine.dispose()
        tmp.cleanup()
    out: dict = {"bench": "config_routing", "database": url.split(":")[0], "orgs": args.orgs,
                 "teams": len(teams), "identifiers": sum(sum(len(v) for v in c.values()) for _, _, c in teams),
                 "samples": args.samples, "seed_s": round(seed_s, 2)}
    for name, values in results.items():
        out[f"{name}_p50_ms"] = pct(values, 50)
        out[f"{name}_p99_ms"] = pct(values, 99)
    for name in ("routing", "effective_cached", "effective_uncached"):
        out[f"{name}_p50_ratio"] = round(out[f"{name}_p50_ms"] / out["baseline_select_p50_ms"], 2)
        out[f"{name}_p99_ratio"] = round(out[f"{name}_p99_ms"] / out["baseline_select_p99_ms"], 2)
    out["effective_cached_hit_rate"] = round(cached_hit_rate, 3)
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    out["target_p99_ms"] = TARGET_P99_MS
    out["meets_target"] = out["routing_p99_ms"] <= TARGET_P99_MS and out["effective_cached_p99_ms"] <= TARGET_P99_MS
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
