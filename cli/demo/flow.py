"""``incidentfox demo``: the whole product path on this machine, end to end, in under two minutes.

1. start a local Slack-compatible recorder (the platform's Slack API) in this process;
2. start ``incidentfox up`` in a subprocess on free ports (embedded default: local Ray, SQLite in
   ``./.incidentfox/``), with a demo Slack signing secret and an admin token (generated into
   ``./.incidentfox/`` when none is set);
3. seed an org, a unit and a team that claims the demo Slack channel, with ``integrations.demo``
   on, through the config-service HTTP API with the admin token (idempotent: reruns reuse them);
4. send a real signed Slack ``app_mention`` over HTTP to the gateway;
5. show the recorded Slack calls as they arrive and a progress bar, then the final RCA;
6. print the run URL and the Ray dashboard URL, stop the platform (unless ``--keep``) and exit 0.

The last line printed starts with ``Root cause:``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cli.demo.slack_recorder import RecordedCall, SlackRecorder
from incidentfox.contracts import SUBAGENTS
from incidentfox.ports import free_port
from incidentfox.settings import Settings, read_or_create_secret
from serve_apps.webhooks import slack as slack_webhook

ORG, UNIT, TEAM = "demo", "platform", "sre"
CHANNEL = "C0DEMO0001"
BOT_USER = "U0INCFOX"
STARTUP_TIMEOUT_S = 300.0   # generous: a loaded 2-core machine can take minutes to start Serve
RUN_TIMEOUT_S = 240.0
LEFTOVER_GRACE_S = 30.0   # Ray workers exit on their own shortly after the raylet


def leftover_processes(home: Path) -> list[int]:
    """Processes started with ``INCIDENTFOX_HOME=home``: the platform's. Not this process, nor what
    started it (``INCIDENTFOX_HOME=… make demo``: make and its shell carry the variable too, and must
    never be waited for or killed). psutil reads each one's environment on Linux and macOS alike."""
    me = psutil.Process()
    ours = {me.pid, *(p.pid for p in me.parents())}
    found = []
    for proc in psutil.process_iter():
        if proc.pid in ours:
            continue
        try:
            if proc.environ().get("INCIDENTFOX_HOME") == str(home):
                found.append(proc.pid)
        except (psutil.Error, OSError):   # gone, another user's, or a kernel thread
            continue
    return found


def sign_slack(body: bytes, secret: str, ts: int) -> dict[str, str]:
    """Slack's v0 request signature headers for ``body`` at ``ts`` (the gateway's own signer)."""
    return {**slack_webhook.sign(body=body, secret=secret, timestamp=ts), "Content-Type": "application/json"}


def app_mention(*, text: str, now: float) -> dict[str, Any]:
    ts = f"{now:.6f}"
    return {"token": "unused", "team_id": "T0DEMO", "api_app_id": "A0DEMO", "type": "event_callback",
            "event_id": "Ev" + uuid.uuid4().hex[:16].upper(), "event_time": int(now),
            "authorizations": [{"user_id": BOT_USER, "is_bot": True, "team_id": "T0DEMO"}],
            "event": {"type": "app_mention", "user": "U0ALICE", "text": f"<@{BOT_USER}> {text}",
                      "channel": CHANNEL, "ts": ts, "event_ts": ts}}


RUNBOOKS = Path(__file__).resolve().parent / "runbooks"


def team_config(*, bot_token: str) -> dict[str, Any]:
    return {
        "slack": {"default_channel": CHANNEL},
        "routing": {"slack_channel_ids": [CHANNEL], "services": ["checkout", "payments"]},
        "integrations": {"demo": {"enabled": True, "scenario": "bad_deploy"}, "slack": {"bot_token": bot_token}},
    }


class Demo:
    def __init__(self, *, keep: bool, console: Console, metrics_port: int | None = None) -> None:
        self.keep = keep
        self.metrics_port = metrics_port     # Ray's Prometheus export port (``up --metrics-port``)
        self.console = console
        self.settings = Settings()
        self.home = self.settings.home.resolve()
        self.port = free_port()
        self.dashboard_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.log_lines: list[str] = []
        self.dashboard_url = ""

    # ------------------------------------------------------------------ platform
    async def start_platform(self, slack_url: str) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        given = self.settings
        admin = (given.admin_token.get_secret_value() if given.admin_token else "") or read_or_create_secret(
            self.home / "admin_token", lambda: "ifx-admin-" + uuid.uuid4().hex + uuid.uuid4().hex)
        self.admin = admin
        signing = given.slack_signing_secret.get_secret_value() if given.slack_signing_secret else ""
        self.signing_secret = signing or read_or_create_secret(
            self.home / "demo_slack_signing_secret", lambda: uuid.uuid4().hex)
        # The child's environment: this one passed on (not read here), with the demo's values over it.
        env = {**os.environ, "INCIDENTFOX_HOME": str(self.home), "INCIDENTFOX_ADMIN_TOKEN": admin,
               "INCIDENTFOX_SLACK_API_URL": slack_url, "SLACK_SIGNING_SECRET": self.signing_secret,
               "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
        env.pop("RAY_ADDRESS", None)
        exe = Path(sys.executable).with_name("incidentfox")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]
        cmd += ["up", "--port", str(self.port), "--dashboard-port", str(self.dashboard_port)]
        if self.metrics_port is not None:
            cmd += ["--metrics-port", str(self.metrics_port)]
        self.proc = await asyncio.create_subprocess_exec(*cmd, env=env, stdout=asyncio.subprocess.PIPE,
                                                         stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        asyncio.create_task(self._pump())
        async with httpx.AsyncClient(timeout=2.0) as http:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError("`incidentfox up` exited early:\n" + "\n".join(self.log_lines[-30:]))
                try:
                    if (await http.get(f"{self.base}/health")).status_code == 200 and \
                            any("IncidentFox is up" in line for line in self.log_lines):
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the platform did not become healthy in time:\n" + "\n".join(self.log_lines[-30:]))
                await asyncio.sleep(0.5)   # waiting for a subprocess to listen

    async def _pump(self) -> None:
        assert self.proc and self.proc.stdout
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.log_lines.append(line)
            if "Ray dashboard:" in line:
                self.dashboard_url = line.split("Ray dashboard:", 1)[1].strip()

    async def stop_platform(self) -> list[int]:
        """Stop ``incidentfox up`` and wait until every process it started has exited.

        ``ray.shutdown()`` returns before Ray's workers are gone (they exit when they notice the
        raylet died), so the demo waits for them, bounded, and kills what is still there after
        that, so that it never leaves processes behind. Returns the pids it had to kill (none
        when the platform shut down cleanly)."""
        if self.proc is None or self.proc.returncode is not None:
            return []
        self.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        deadline = time.monotonic() + LEFTOVER_GRACE_S
        while (left := leftover_processes(self.home)) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)   # waiting for other processes to exit
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if left:
            self.console.print(f"[yellow]killed {len(left)} platform process(es) still running "
                               f"{LEFTOVER_GRACE_S:g}s after shutdown[/yellow]")
        return left

    # ------------------------------------------------------------------ seeding and trigger
    async def seed(self, http: httpx.AsyncClient) -> None:
        hdr = {"Authorization": f"Bearer {self.admin}"}
        steps = [
            ("POST", "/api/v1/orgs", {"org_id": ORG, "name": "Demo Org"}),
            ("POST", f"/api/v1/orgs/{ORG}/nodes", {"node_id": UNIT, "kind": "unit", "name": "Platform"}),
            ("POST", f"/api/v1/orgs/{ORG}/nodes", {"node_id": TEAM, "parent_id": UNIT, "kind": "team", "name": "SRE"}),
            ("PATCH", f"/api/v1/orgs/{ORG}/nodes/{TEAM}/config",
             team_config(bot_token="xoxb-demo-" + uuid.uuid5(uuid.NAMESPACE_DNS, str(self.home)).hex)),
        ]
        for method, path, body in steps:
            resp = await http.request(method, self.base + path, json=body, headers=hdr)
            if resp.status_code not in (200, 201, 409):   # 409: already there from an earlier demo
                raise RuntimeError(f"{method} {path} → {resp.status_code}: {resp.text[:300]}")
        await self.seed_runbooks(http)

    async def seed_runbooks(self, http: httpx.AsyncClient) -> None:
        """The demo team's runbooks (cli/demo/runbooks) through the knowledge API, and its index built,
        so the investigation can cite one."""
        hdr = {"Authorization": f"Bearer {self.admin}"}
        scope = {"org": ORG, "team": TEAM}
        for path in sorted(RUNBOOKS.glob("*.md")):
            resp = await http.post(f"{self.base}/api/v1/knowledge/documents", params=scope, headers=hdr,
                                   json={"name": path.name, "text": path.read_text(), "kind": "runbook"})
            if resp.status_code != 201:
                raise RuntimeError(f"uploading runbook {path.name} → {resp.status_code}: {resp.text[:300]}")
        resp = await http.post(f"{self.base}/api/v1/knowledge/rebuild", params=scope, headers=hdr, timeout=300)
        if resp.status_code != 200:
            raise RuntimeError(f"building the knowledge index → {resp.status_code}: {resp.text[:300]}")

    async def mention(self, http: httpx.AsyncClient, text: str) -> str:
        now = time.time()
        body = json.dumps(app_mention(text=text, now=now)).encode()
        resp = await http.post(f"{self.base}/webhooks/slack/events", content=body,
                               headers=sign_slack(body, self.signing_secret, int(now)))
        if resp.status_code != 200 or "run_id" not in resp.json():
            raise RuntimeError(f"the gateway did not start a run: {resp.status_code} {resp.text[:300]}")
        return resp.json()["run_id"]


def _describe(call: RecordedCall) -> str:
    text = str(call.args.get("text", ""))
    first = text.splitlines()[0] if text else ""
    where = call.args.get("channel", "")
    return f"[slack] {call.method} {where} {first[:100]}".rstrip()


def _done_agents(calls: list[RecordedCall]) -> set[str]:
    done: set[str] = set()
    for call in calls:
        # Progress edits carry the lines in `text`; the final Block Kit in a context block.
        for line in json.dumps(call.args, ensure_ascii=False).replace("\\n", "\n").replace(" · ", "\n").splitlines():
            for name in SUBAGENTS:
                if f"*{name}*:" in line and any(w in line for w in (": ok", ": failed", ": skipped", ": timeout")):
                    done.add(name)
    return done


async def run_demo(*, keep: bool, question: str, metrics_port: int | None = None) -> int:
    console = Console()
    demo = Demo(keep=keep, console=console, metrics_port=metrics_port)
    recorder = SlackRecorder()
    slack_url = await recorder.start()
    started = time.monotonic()
    console.print(f"[bold]IncidentFox demo[/bold] - state in {demo.home}")
    try:
        with console.status("Starting the local platform (Ray, Serve, config service)…"):
            await demo.start_platform(slack_url)
        console.print(f"Platform up at {demo.base} in {time.monotonic() - started:.0f}s")
        async with httpx.AsyncClient(timeout=30.0) as http:
            await demo.seed(http)
            console.print(f"Seeded org [cyan]{ORG}[/cyan] → unit [cyan]{UNIT}[/cyan] → team [cyan]{TEAM}[/cyan] "
                          f"with {len(list(RUNBOOKS.glob('*.md')))} runbooks, "
                          f"claiming Slack channel {CHANNEL}")
            queue = recorder.subscribe()
            run_id = await demo.mention(http, question)
            console.print(f"Sent a signed Slack app_mention → run [bold]{run_id}[/bold]")
            run = await follow(console, demo, http, queue, recorder, run_id)
        show_result(console, demo, run, run_id)
        console.print(f"Done in {time.monotonic() - started:.0f}s.")
        top = (run.get("result") or {}).get("root_causes") or []
        if keep:
            console.print(f"Platform kept running (pid {demo.proc.pid}); stop it with: kill -INT {demo.proc.pid}")
        if run.get("status") != "succeeded":
            print(f"Root cause: none - the run ended {run.get('status')}: {run.get('error')}")
            return 1
        line = f"{top[0]['entity']} - {top[0]['description']}" if top else (run["result"].get("summary") or "none")
        print(f"Root cause: {line}")
        return 0
    finally:
        if not keep:
            with console.status("Stopping the platform…"):
                await demo.stop_platform()
        await recorder.stop()


async def follow(console: Console, demo: Demo, http: httpx.AsyncClient, queue: asyncio.Queue,
                 recorder: SlackRecorder, run_id: str) -> dict[str, Any]:
    hdr = {"Authorization": f"Bearer {demo.admin}"}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    steps = 2 + len(SUBAGENTS) + 1
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        task = progress.add_task("investigating", total=steps)
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            while not queue.empty():
                progress.console.print(_describe(queue.get_nowait()), markup=False, highlight=False)
            resp = await http.get(f"{demo.base}/api/v1/agent/runs/{run_id}", headers=hdr)
            if resp.status_code == 200:
                run = resp.json()
            status = run.get("status", "queued")
            done = _done_agents(recorder.calls)
            completed = (status != "queued") + bool(recorder.calls_to("chat.postMessage")) + len(done) + \
                        (status in ("succeeded", "failed", "cancelled"))
            if status in ("succeeded", "failed", "cancelled"):
                completed = steps
            progress.update(task, completed=completed, description=f"{status}: {', '.join(sorted(done)) or '…'}")
            if status in ("succeeded", "failed", "cancelled"):
                # The final Block Kit edit follows the database write; show it too. (Progress edits
                # say "Investigation running"; the final one names the run's terminal status.)
                final = f"Investigation {status}"
                try:
                    await recorder.wait_for(lambda calls, final=final: any(
                        c.method == "chat.update" and final in json.dumps(c.args.get("blocks")) for c in calls),
                        timeout=10)
                except TimeoutError:
                    pass
                while not queue.empty():
                    progress.console.print(_describe(queue.get_nowait()), markup=False, highlight=False)
                return run
            await asyncio.sleep(0.3)   # polling the run API while the recorder streams Slack calls
    raise RuntimeError(f"run {run_id} did not finish within {RUN_TIMEOUT_S:.0f}s")


def show_result(console: Console, demo: Demo, run: dict[str, Any], run_id: str) -> None:
    rca = run.get("result") or {}
    console.rule("Root-cause analysis")
    console.print(f"[bold]Status:[/bold] {run.get('status')}   [bold]Summary:[/bold] {rca.get('summary', '')}",
                  markup=True, highlight=False)
    for i, cause in enumerate(rca.get("root_causes") or [], 1):
        console.print(f"  {i}. {cause['entity']} ({cause['confidence']:.0%}): {cause['description']}", highlight=False)
        for ev in (cause.get("evidence") or [])[:3]:
            console.print(f"       > {ev['quote'][:160]}", markup=False, highlight=False)
    for note in rca.get("notes") or []:
        console.print(f"  ⚠ {note}", markup=False, highlight=False)
    for cite in rca.get("citations") or []:
        if cite.get("used_for") == "seen_before":
            console.print(f"Seen before: {cite['title']} ({cite.get('when') or 'earlier'}), fixed by "
                          f"{cite.get('fixed_by') or 'see the run'}", markup=False, highlight=False)
        else:
            where = f"{cite['title']} › {cite['section']}" if cite.get("section") else cite["title"]
            console.print(f"Cited: {where} ({cite['source']})", markup=False, highlight=False)
    if rca.get("recommended_actions"):
        console.print("[bold]Recommended actions:[/bold]")
        for action in rca["recommended_actions"][:5]:
            console.print(f"  - {action}", markup=False, highlight=False)
    console.print(f"Run URL:        {demo.base}/api/v1/agent/runs/{run_id}  (Authorization: Bearer <admin token>)")
    console.print(f"Console:        {demo.base}/ui/runs/view/?id={run_id}  (sign in with the token in "
                  f"{demo.home / 'admin_token'}; it stays up with --keep)", markup=False, highlight=False)
    console.print(f"Ray dashboard:  {demo.dashboard_url or f'http://127.0.0.1:{demo.dashboard_port}'}")
