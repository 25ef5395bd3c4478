"""`incidentfox up` really starts on a free port (subprocess, `--runner complete`), serves /health,
turns a signed Slack event into a run, and shuts down cleanly on SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.console_kit import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
SECRET = "up-smoke-slack-secret"


@pytest.mark.slow
@pytest.mark.platform
def test_up_serves_health_turns_a_slack_event_into_a_run_and_stops_on_sigint(tmp_path):
    from serve_apps.webhooks import slack

    port, dash = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INCIDENTFOX_", "RAY_ADDRESS"))}
    env.update(SLACK_SIGNING_SECRET=SECRET, INCIDENTFOX_HOME=str(tmp_path / ".incidentfox"),
               RAY_USAGE_STATS_ENABLED="0")
    log = open(tmp_path / "up.log", "w+")   # noqa: SIM115 - the child's output for its life; closed below
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--port", str(port),
                             "--runner", "complete", "--dashboard-port", str(dash)],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is not None or "Press Ctrl-C" in (tmp_path / "up.log").read_text(),
                  240, "up to print its URLs")
        out = (tmp_path / "up.log").read_text()
        assert proc.poll() is None, out
        assert f"http://127.0.0.1:{port}/webhooks" in out and "Ray dashboard:" in out
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as c:
            assert c.get("/health").status_code == 200
            admin = (tmp_path / ".incidentfox" / "admin_token").read_text().strip()
            h = {"Authorization": f"Bearer {admin}"}
            assert c.post("/api/v1/orgs", json={"org_id": "acme", "name": "Acme"}, headers=h).status_code == 201
            assert c.post("/api/v1/orgs/acme/nodes", json={"node_id": "payments", "kind": "team",
                                                           "name": "Payments"}, headers=h).status_code == 201
            r = c.patch("/api/v1/orgs/acme/nodes/payments/config",
                        json={"routing": {"slack_channel_ids": ["C111"]}}, headers=h)
            assert r.status_code == 200, r.text
            body = json.dumps({"type": "event_callback", "event_id": "EvUP", "api_app_id": "A1", "team_id": "T1",
                               "event": {"type": "app_mention", "text": "<@U1> checkout is down", "user": "W2",
                                         "ts": "1700000000.000100", "channel": "C111"}}).encode()
            headers = {**slack.sign(body=body, secret=SECRET, timestamp=int(time.time())),
                       "Content-Type": "application/json"}
            r = c.post("/webhooks/slack/events", content=body, headers=headers)
            assert r.status_code == 200, r.text
            run_id = r.json()["run_id"]
            assert run_id and r.json()["outcome"] == "accepted"
            dup = c.post("/webhooks/slack/events", content=body, headers={**headers, "X-Slack-Retry-Num": "1"})
            assert dup.json() == {**r.json(), "duplicate": True}

            def finished():
                v = c.get(f"/api/v1/agent/runs/{run_id}", headers=h).json()
                return v if v.get("status") == "succeeded" else None

            view = wait_for(finished, 60, "the run to complete")
            assert view["team"] == "payments"
            sse = c.get(f"/api/v1/agent/runs/{run_id}/events", headers=h)   # streamed through Serve
            assert sse.status_code == 200 and sse.headers["content-type"].startswith("text/event-stream")
            assert "event: status" in sse.text and "event: end" in sse.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0
        out = (tmp_path / "up.log").read_text()
        assert "stopped." in out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()
