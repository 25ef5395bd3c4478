"""The platform's Prometheus endpoint after a real run (one slow test, one platform start).

It starts ``incidentfox up --metrics-port M`` in a subprocess through the demo machinery
(:class:`cli.demo.flow.Demo`: its own Ray, Serve and SQLite in a temporary home, the
Slack API recorded in this process), seeds the demo team, sends a signed Slack mention, waits for the
run to succeed through the agent API, then scrapes ``http://127.0.0.1:M/metrics`` and asserts that
our counters moved and that every Ray built-in series the Grafana dashboard uses is exported.
"""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import io
import json
import os
import re
import time
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from cli.demo.flow import Demo, leftover_processes
from cli.demo.slack_recorder import SlackRecorder
from incidentfox.ports import free_port

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 150.0
SCRAPE_TIMEOUT_S = 90.0   # Ray's agent reports custom metrics every few seconds
SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)", re.MULTILINE)


def _builtin_metrics() -> tuple[str, ...]:
    spec = importlib.util.spec_from_file_location("build_dashboard", ROOT / "cluster/grafana/build_dashboard.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return tuple(mod.RAY_BUILTIN_METRICS)


def parse_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text exposition → (name, labels, value) for every sample line."""
    out = []
    for name, labels, value in SAMPLE.findall(text):
        pairs = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or ""))
        try:
            out.append((name, pairs, float(value)))
        except ValueError:
            continue
    return out


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == w for k, w in labels.items()))


def _missing(samples: list[tuple[str, dict[str, str], float]]) -> list[str]:
    names = {n for n, _, _ in samples}
    problems = [f"{n} not exported" for n in _builtin_metrics() if n not in names]
    if total(samples, "ray_incidentfox_webhooks_total", source="slack", outcome="accepted") < 1:
        problems.append("webhooks_total{outcome=accepted} < 1")
    if total(samples, "ray_incidentfox_webhook_ack_seconds_count") < 1:
        problems.append("webhook_ack_seconds_count < 1")
    if total(samples, "ray_incidentfox_runs_total", status="succeeded") < 1:
        problems.append("runs_total{status=succeeded} < 1")
    if total(samples, "ray_incidentfox_run_seconds_count") < 1:
        problems.append("run_seconds_count < 1")
    if total(samples, "ray_incidentfox_tool_call_seconds_count") < 1:
        problems.append("tool_call_seconds_count < 1")
    if "ray_incidentfox_runs_active" not in names:
        problems.append("runs_active not exported")
    return problems


def test_parse_samples_reads_labels_and_values() -> None:
    text = ('# HELP x y\nray_a_total{outcome="accepted",source="slack"} 2.0\n'
            'ray_a_total{outcome="duplicate",source="slack"} 1.0\nray_b_count 3\n')
    samples = parse_samples(text)
    assert total(samples, "ray_a_total", outcome="accepted") == 2.0
    assert total(samples, "ray_a_total") == 3.0 and total(samples, "ray_b_count") == 3.0


def test_llm_usage_is_counted_by_provider_model_and_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from actors.engine.agents.providers import record_usage
    from config_service import LLMConfig as LLMSettings
    from incidentfox import metrics

    calls: list[tuple[str, float, dict[str, str]]] = []
    counter = metrics.LLM_TOKENS_TOTAL
    monkeypatch.setattr(counter, "inc", lambda value=1.0, **tags: calls.append((counter.name, value, tags)))
    llm = LLMSettings(provider="openai", model="gpt-4.1", base_url=None, api_key="k", request_timeout_s=5)
    result = SimpleNamespace(context_wrapper=SimpleNamespace(usage=SimpleNamespace(input_tokens=120, output_tokens=7)))
    record_usage(llm, "gpt-4.1-mini", result)
    metrics.record_llm_tokens(provider="anthropic", model="claude", input_tokens=0, output_tokens=3)
    assert calls == [
        ("incidentfox_llm_tokens_total", 120.0, {"provider": "openai", "model": "gpt-4.1-mini", "kind": "input"}),
        ("incidentfox_llm_tokens_total", 7.0, {"provider": "openai", "model": "gpt-4.1-mini", "kind": "output"}),
        ("incidentfox_llm_tokens_total", 3.0, {"provider": "anthropic", "model": "claude", "kind": "output"}),
    ]


async def _scenario(home: Path, killed: list[int]) -> tuple[str, list[str], str]:
    """The metrics text, what is missing from it, and the run id; ``killed`` receives the pids the
    shutdown had to kill."""
    metrics_port = free_port()
    demo = Demo(keep=False, console=Console(file=io.StringIO()), metrics_port=metrics_port)
    assert demo.home == home
    recorder = SlackRecorder()
    slack_url = await recorder.start()
    try:
        await demo.start_platform(slack_url)
        async with httpx.AsyncClient(timeout=30.0) as http:
            await demo.seed(http)
            run_id = await demo.mention(http, "checkout is failing for customers - what happened?")
            hdr = {"Authorization": f"Bearer {demo.admin}"}
            deadline = time.monotonic() + RUN_TIMEOUT_S
            run: dict = {}
            while run.get("status") not in ("succeeded", "failed", "cancelled"):
                assert time.monotonic() < deadline, f"run {run_id} did not finish: {run}"
                resp = await http.get(f"{demo.base}/api/v1/agent/runs/{run_id}", headers=hdr)
                if resp.status_code == 200:
                    run = resp.json()
                await asyncio.sleep(0.5)   # polling the run API of a subprocess
            assert run["status"] == "succeeded", run.get("error")
            # Ray's agent exports what the workers reported at its last interval: poll, bounded.
            deadline = time.monotonic() + SCRAPE_TIMEOUT_S
            problems: list[str] = ["not scraped yet"]
            text = ""
            while problems and time.monotonic() < deadline:
                try:
                    resp = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
                    text = resp.text if resp.status_code == 200 else ""
                    problems = _missing(parse_samples(text)) if text else [f"HTTP {resp.status_code}"]
                except httpx.HTTPError as exc:
                    problems = [f"scrape failed: {type(exc).__name__}"]
                if problems:
                    await asyncio.sleep(2.0)   # waiting for Ray's next metrics report
            return text, problems, run_id
    finally:
        killed += await demo.stop_platform()
        await recorder.stop()


def _run_log_records(run_id: str, since: float) -> list[dict]:
    """JSON log records naming ``run_id`` in Ray worker stderr files written since ``since``."""
    records = []
    for path in glob.glob("/tmp/ray/session_*/logs/worker-*.err"):
        if os.path.getmtime(path) < since:
            continue
        with open(path, errors="replace") as fh:
            for line in fh:
                if run_id in line and line.startswith("{"):
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue
    return records


@pytest.mark.platform
@pytest.mark.timeout(420)
def test_metrics_export_after_a_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    for key in list(os.environ):
        if key.startswith(("INCIDENTFOX_", "SLACK_")) or key == "RAY_ADDRESS":
            monkeypatch.delenv(key)
    monkeypatch.setenv("INCIDENTFOX_HOME", str(home))
    started = time.time()
    killed: list[int] = []
    text, problems, run_id = asyncio.run(_scenario(home, killed))
    ours = "\n".join(line for line in text.splitlines() if "incidentfox_" in line and not line.startswith("#"))
    assert problems == [], (problems, ours[-3000:])
    # Ray's processes exit by themselves within the shutdown's grace period; none had to be killed.
    assert killed == [] and leftover_processes(home) == [], "the platform left processes running"
    # The pool actor's logs are JSON lines carrying the run's bound context.
    finished = [r for r in _run_log_records(run_id, started) if r.get("msg") == "run finished: succeeded"]
    assert finished and finished[0]["run_id"] == run_id, _run_log_records(run_id, started)
    assert (finished[0]["org_id"], finished[0]["team_id"]) == ("demo", "sre")
