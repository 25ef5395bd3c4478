"""Pure parts of the sandbox: transcript repair, config parsing, SSE encoding, the Slack throttle."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.sandbox.config import check_scheduling, parse_llm_config, parse_team_sandbox
from actors.sandbox.errors import McpNotAllowed
from actors.sandbox.events import SandboxEvent, result, tool_start
from actors.sandbox.mcp import McpServerSpec, public_view, select_servers, tool_name
from actors.sandbox.mirror import ThrottledMessage, TurnMirror
from actors.sandbox.testing import validate_request
from actors.sandbox.transcript import MISSING_RESULT, api_messages, pending_tool_uses, user_text
from incidentfox.errors import Unprocessable
from serve_apps.sandbox.api import sse_event


def use(i: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": i, "name": "Bash", "input": {"command": "ls"}}


def res(i: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": i, "content": "ok", "is_error": False}


def test_api_messages_merges_and_fills_missing_results() -> None:
    raw = [user_text("q1"),
           {"role": "assistant", "content": [{"type": "text", "text": "running"}, use("a"), use("b")]},
           {"role": "user", "content": [res("a")]},          # the host died before b finished
           user_text("q2")]
    out = api_messages(raw)
    assert [m["role"] for m in out] == ["user", "assistant", "user"]
    assert out[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "b", "content": MISSING_RESULT, "is_error": True},
        res("a"), {"type": "text", "text": "q2"}]
    assert validate_request({"messages": out}) is None
    assert raw[2]["content"] == [res("a")]  # input untouched


def test_trailing_tool_use_gets_a_result_and_leading_assistant_is_dropped() -> None:
    out = api_messages([{"role": "assistant", "content": "stray"}, user_text("q"),
                        {"role": "assistant", "content": [use("x")]}])
    assert [m["role"] for m in out] == ["user", "assistant", "user"]
    assert out[-1]["content"][0]["tool_use_id"] == "x"
    assert pending_tool_uses([user_text("q"), {"role": "assistant", "content": [use("x"), use("y")]},
                              {"role": "user", "content": [res("x")]}]) == [use("y")]


_msg = st.one_of(
    st.builds(lambda t: user_text(t), st.text(min_size=1, max_size=5)),
    st.builds(lambda ids: {"role": "assistant", "content": [use(i) for i in ids] or [{"type": "text", "text": "a"}]},
              st.lists(st.sampled_from(["t1", "t2", "t3"]), unique=True, max_size=3)),
    st.builds(lambda ids: {"role": "user", "content": [res(i) for i in ids]},
              st.lists(st.sampled_from(["t1", "t2", "t3"]), unique=True, min_size=1, max_size=3)),
)


@given(st.lists(_msg, max_size=12))
def test_api_messages_is_always_valid_when_results_follow_their_uses(msgs: list[dict[str, Any]]) -> None:
    # Only transcripts our loop can write: a tool_result message directly follows the assistant
    # message whose ids it answers (prefix of them). Build that shape from the random draw.
    fixed: list[dict[str, Any]] = [user_text("start")]
    for m in msgs:
        if m["role"] == "user" and m["content"][0]["type"] == "tool_result":
            prev = fixed[-1]
            ids = [b["id"] for b in prev["content"] if b.get("type") == "tool_use"] if prev["role"] == "assistant" else []
            if not ids:
                continue
            m = {"role": "user", "content": [res(i) for i in ids[: len(m["content"])]]}
        fixed.append(m)
    out = api_messages(fixed)
    assert validate_request({"messages": out}) is None, out


def test_team_config_names_only() -> None:
    assert parse_team_sandbox({"mcp_servers": ["grafana"], "ttl_s": 60}).mcp_servers == ["grafana"]
    for bad in ({"mcp_servers": [{"command": ["sh"]}]}, {"mcp_servers": "grafana"},
                {"mcp_servers": ["../x"]}, {"ttl_s": -1}):
        with pytest.raises(Unprocessable):
            parse_team_sandbox(bad)
    with pytest.raises(Unprocessable):
        check_scheduling({"runtime_env": {"pip": ["evil"]}})
    assert check_scheduling({"resources": {"shared": 0.001}}) == {"resources": {"shared": 0.001}}


def test_llm_config_requires_anthropic_and_model() -> None:
    cfg = parse_llm_config({"provider": "anthropic", "model": "claude", "api_key": "sk-x", "extra": 1})
    assert cfg.model == "claude" and "sk-x" not in repr(cfg)
    for bad in ({"provider": "openai", "model": "gpt"}, {"provider": "anthropic"}, None):
        with pytest.raises(Unprocessable):
            parse_llm_config(bad)


def test_allowlist_entries_and_selection() -> None:
    McpServerSpec(name="grafana", transport="http", url="https://mcp.example/mcp")
    for bad in ({"name": "x", "transport": "stdio"}, {"name": "x", "transport": "http", "command": ["a"],
                                                       "url": "http://a"},
                {"name": "x y", "transport": "http", "url": "http://a"}):
        with pytest.raises(ValueError):
            McpServerSpec(**bad)
    entry = {"name": "g", "transport": "stdio", "command": ["/opt/g"], "env": {"TOKEN": "enc"}}
    assert public_view(entry, full=False) == {"name": "g", "transport": "stdio", "description": "",
                                              "tool_timeout_s": 30.0}
    assert public_view(entry, full=True)["env_keys"] == ["TOKEN"] and "enc" not in str(public_view(entry, full=True))
    assert select_servers(["g"], {"g": entry}) == [entry]
    with pytest.raises(McpNotAllowed):
        select_servers(["g", "h"], {"g": entry})
    assert tool_name("my.server", "get status") == "mcp__my_server__get_status"


def test_sse_encoding() -> None:
    ev = tool_start("toolu_1", "Bash", {"command": "ls"})
    assert sse_event(ev).encode() == (b'event: tool_start\ndata: {"type": "tool_start", "id": "toolu_1", "name": "Bash", '
                           b'"input": {"command": "ls"}}\n\n')
    assert SandboxEvent.from_dict(ev.to_dict()) == ev and result("x", stop_reason="end_turn").terminal


class FakeReporter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, str]] = []
        self.posted = asyncio.Event()

    async def post(self, channel: str, thread_ts: str | None, text: str, blocks: Any) -> str:
        self.calls.append(("post", time.monotonic(), text))
        return "111.222"

    async def update(self, channel: str, ts: str, text: str, blocks: Any) -> None:
        assert ts == "111.222"
        self.calls.append(("update", time.monotonic(), text))


async def test_throttle_spaces_updates_and_delivers_the_last_state() -> None:
    rep = FakeReporter()
    msg = ThrottledMessage(rep, channel="C1", thread_ts="1.0", min_interval_s=0.2)
    for i in range(30):
        await msg.set(f"state {i}")
        await asyncio.sleep(0.01)
    await msg.close()
    kinds = [c[0] for c in rep.calls]
    assert kinds[0] == "post" and rep.calls[0][2] == "state 0"
    assert rep.calls[-1][2] == "state 29"           # the final state always lands
    gaps = [b[1] - a[1] for a, b in zip(rep.calls, rep.calls[1:])]
    assert all(g >= 0.2 - 0.005 for g in gaps), gaps  # never two edits closer than the interval
    assert 2 <= len(rep.calls) <= 4                   # 30 changes in ~0.3 s coalesced


async def test_default_interval_is_half_a_second_and_mirror_renders_events() -> None:
    rep = FakeReporter()
    msg = ThrottledMessage(rep, channel="C1", thread_ts=None)
    assert msg.min_interval_s == 0.5
    mirror = TurnMirror(msg, session_id="sbx_1", question="why is checkout slow?")
    await mirror.on_event(tool_start("t1", "Bash", {"command": "kubectl get pods"}))
    await mirror.on_event(SandboxEvent("tool_end", {"id": "t1", "name": "Bash", "output": "", "is_error": False,
                                                    "duration_s": 1.2}))
    await mirror.on_event(result("It is the DB pool.", stop_reason="end_turn"))
    await msg.close()
    final = rep.calls[-1][2]
    assert "✅ `Bash` kubectl get pods (1.2s)" in final and final.endswith("✅ It is the DB pool.")
    assert len(rep.calls) == 2 and rep.calls[1][1] - rep.calls[0][1] >= 0.495


async def test_reporter_failures_never_raise() -> None:
    class Broken(FakeReporter):
        async def update(self, *a: Any) -> None:
            raise RuntimeError("slack down")

    msg = ThrottledMessage(Broken(), channel="C1", thread_ts=None, min_interval_s=0.01)
    await msg.set("a")
    await msg.set("b")
    await msg.close()
    assert msg.failures == 1


async def test_thread_locks_are_fifo_per_thread_and_forgotten_when_free() -> None:
    from actors.sandbox.slack_dispatch import ThreadLocks

    locks = ThreadLocks()
    order: list[str] = []
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def turn(name: str, key: tuple[str, str]) -> None:
        async with locks.hold(key):
            order.append(name)
            if name == "first":
                first_in.set()
                await release.wait()

    first = asyncio.create_task(turn("first", ("C1", "1.0")))
    await first_in.wait()
    queued = [asyncio.create_task(turn(n, ("C1", "1.0"))) for n in ("second", "third")]
    other = asyncio.create_task(turn("other thread", ("C2", "2.0")))
    await other   # another thread never waits behind this one
    assert order == ["first", "other thread"] and len(locks) == 1
    release.set()
    await asyncio.gather(first, *queued)
    assert order == ["first", "other thread", "second", "third"]
    assert len(locks) == 0   # nothing kept for threads nobody holds or waits on


def test_a_sandbox_host_never_loads_httpx() -> None:
    """The host speaks httpx2 only (the Anthropic SDK, the egress-checked tenant client); importing
    ``httpx`` would also load click and rich, ~5 MB per host process for nothing (docs/sandbox.md,
    Measurement, run 5); nor does structlog's optional rich (incidentfox/logs.py). A fresh
    interpreter, so what other tests imported does not count."""
    code = ("import sys\n"
            "from actors.sandbox import agent, host, session\n"
            "agent.preload(); agent.shared_http_client(); agent.tenant_http_client()\n"
            "from incidentfox.logs import configure_process_logging\n"
            "configure_process_logging()\n"   # every actor process configures structlog's JSON logs
            "print(sorted({'httpx', 'click', 'rich'} & set(sys.modules)))\n")
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         cwd=repo, env=env)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]
