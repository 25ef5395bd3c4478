"""Web console budgets (issue 17), measured in Chromium against a real ``incidentfox up``.

1. ``runs_page_first_load_ms``: a fresh browser context (empty cache) with a signed-in session opens
   ``/ui/runs/`` until the page's ``load`` event, its content rendered, and every API call it made
   answered (no fetch in flight; not Playwright's ``networkidle``, which adds 500 ms of silence).
   Median and max of ``--loads`` loads. Budget: 1 s.
   The platform holds demo data first: an org, a team routed to a Slack channel, and ``--runs``
   finished runs sent as signed Slack mentions (``--runner complete``).
2. ``first_load_js_gzip_bytes``: every JavaScript file the browser fetched for that first load,
   gzip-compressed (level 6, what a compressing proxy sends). Budget: 300 KB.
3. Baseline in the same run: ``baseline_health_ms``, the same fresh-context load of ``/health`` (a
   small JSON answer of the same server), so a slow machine shows as a slow baseline.

Prints one JSON line. Skips (``{"skipped": reason}``) without Chromium, Playwright or a console
build. Usage: ``python bench/console.py [--loads 5] [--runs 20]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.console_kit import CHROMIUM, browser_skip_reason, start_platform, stop_platform, wait_for

LOAD_BUDGET_MS = 1000
JS_BUDGET_BYTES = 300 * 1024
SECRET = "bench-console-slack-secret"
TOKEN_KEY = "incidentfox.console.token"   # console/src/lib/session.tsx


def seed_runs(platform, runs: int) -> int:
    """An org and team routed to a channel, then ``runs`` signed Slack mentions; waits until done."""
    from serve_apps.webhooks import slack

    with platform.api() as c:
        assert c.post("/api/v1/orgs", json={"org_id": "demo", "name": "Demo"}).status_code == 201
        assert c.post("/api/v1/orgs/demo/nodes", json={"node_id": "sre", "kind": "team"}).status_code == 201
        r = c.patch("/api/v1/orgs/demo/nodes/sre/config", json={"routing": {"slack_channel_ids": ["CBENCH"]}})
        assert r.status_code == 200, r.text
        ids = []
        for i in range(runs):
            body = json.dumps({"type": "event_callback", "event_id": f"EvConsole{i}", "api_app_id": "A1",
                               "team_id": "T1", "event": {"type": "app_mention", "user": "W2", "channel": "CBENCH",
                                                          "text": f"<@U1> checkout errors #{i}",
                                                          "ts": f"1700000000.{i:06d}"}}).encode()
            headers = {**slack.sign(body=body, secret=SECRET, timestamp=int(time.time())),
                       "Content-Type": "application/json"}
            r = c.post("/webhooks/slack/events", content=body, headers=headers)
            assert r.status_code == 200, r.text
            ids.append(r.json()["run_id"])

        def all_done():
            return all(c.get(f"/api/v1/agent/runs/{rid}").json().get("status") in ("succeeded", "failed")
                       for rid in ids)

        wait_for(all_done, 180, "the demo runs to finish")
    return len(ids)


def fresh_load(browser, url: str, *, token: str | None, ready: str | None) -> tuple[float, list[str]]:
    """Milliseconds to load ``url`` in a new context (cold cache) until its ``load`` event, ``ready``
    visible and no API call in flight; and the JavaScript URLs fetched."""
    context = browser.new_context()
    scripts: list[str] = []
    inflight: set = set()
    try:
        if token:
            context.add_init_script(f"sessionStorage.setItem({json.dumps(TOKEN_KEY)}, {json.dumps(token)})")
        page = context.new_page()
        page.on("response", lambda r: scripts.append(r.url) if r.request.resource_type == "script" else None)
        page.on("request", lambda r: inflight.add(r) if r.resource_type in ("fetch", "xhr") else None)
        page.on("requestfinished", lambda r: inflight.discard(r))
        page.on("requestfailed", lambda r: inflight.discard(r))
        start = time.perf_counter()
        page.goto(url, wait_until="load")
        if ready:
            page.locator(ready).first.wait_for()
            while inflight:   # the page's own API calls (React Query starts them on mount)
                page.wait_for_timeout(5)
        return (time.perf_counter() - start) * 1000, scripts
    finally:
        context.close()


def measure(loads: int, runs: int) -> dict:
    import httpx
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        platform = start_platform(Path(tmp), runner="complete", env={"SLACK_SIGNING_SECRET": SECRET})
        try:
            seeded = seed_runs(platform, runs)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
                try:
                    runs_url = f"{platform.base_url}/ui/runs/"
                    fresh_load(browser, runs_url, token=platform.admin_token, ready="#content")   # warm the server
                    fresh_load(browser, f"{platform.base_url}/health", token=None, ready=None)
                    page_ms, base_ms, js_urls = [], [], []
                    for _ in range(loads):
                        ms, js_urls = fresh_load(browser, runs_url, token=platform.admin_token, ready="#content")
                        page_ms.append(ms)
                        base_ms.append(fresh_load(browser, f"{platform.base_url}/health", token=None, ready=None)[0])
                finally:
                    browser.close()
            raw = gz = 0
            with httpx.Client(timeout=30) as c:
                for url in sorted(set(js_urls)):
                    body = c.get(url).content
                    raw += len(body)
                    gz += len(gzip.compress(body, compresslevel=6))
        finally:
            stop_platform(platform)
    median = statistics.median(page_ms)
    return {"bench": "console", "runs_seeded": seeded, "loads": loads,
            "runs_page_first_load_ms": round(median, 1), "runs_page_first_load_max_ms": round(max(page_ms), 1),
            "baseline_health_ms": round(statistics.median(base_ms), 1),
            "first_load_js_files": len(set(js_urls)), "first_load_js_bytes": raw, "first_load_js_gzip_bytes": gz,
            "load_budget_ms": LOAD_BUDGET_MS, "js_budget_bytes": JS_BUDGET_BYTES,
            "load_within_budget": median < LOAD_BUDGET_MS, "js_within_budget": gz < JS_BUDGET_BYTES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    reason = browser_skip_reason()
    if reason:
        print(json.dumps({"bench": "console", "skipped": reason}))
        return
    print(json.dumps(measure(args.loads, args.runs)))


if __name__ == "__main__":
    main()
