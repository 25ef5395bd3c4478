"""The demo backend: serves every tool name from the seeded world instead of a live API.

``integrations.demo`` (``true`` or a dict): ``scenario`` (``bad_deploy`` | ``oom_kill`` |
``image_pull`` | ``dependency_failure``; default ``bad_deploy``), ``seed`` (default 7),
``latency_ms`` (simulated I/O per call: a number or ``[min, max]``; default ``[50, 150]``, use 0 in
unit tests and e.g. 500 for the fan-out benchmark) and ``anchor`` (RFC 3339 instant the world is
built around; default: the context clock, floored to the minute).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolFn, ToolResult, ToolSpec
from actors.tools.convert import parse_time
from actors.tools.demo.handlers import HANDLERS
from actors.tools.demo.scenarios import DEFAULT_SCENARIO, SCENARIOS
from actors.tools.demo.world import World, build_world, world_anchor

DEFAULT_LATENCY_MS = (50.0, 150.0)


def demo_config(ctx: ToolContext) -> dict[str, Any]:
    value = ctx.integrations.get("demo")
    return dict(value) if isinstance(value, Mapping) else {}


def latency_s(config: Mapping[str, Any]) -> float:
    """Simulated I/O for one call, in seconds."""
    value = config.get("latency_ms", DEFAULT_LATENCY_MS)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        lo, hi = float(value[0]), float(value[1])
        return max(0.0, random.uniform(min(lo, hi), max(lo, hi))) / 1000.0
    return max(0.0, float(value or 0)) / 1000.0


def world_for(ctx: ToolContext) -> World:
    config = demo_config(ctx)
    scenario = config.get("scenario") or DEFAULT_SCENARIO
    if scenario not in SCENARIOS:
        raise ToolError(
            "not_configured", f"integrations.demo.scenario {scenario!r} is not one of {sorted(SCENARIOS)}"
        )
    anchor = parse_time(config.get("anchor")) or world_anchor(ctx.now())
    return build_world(scenario, now=anchor, seed=int(config.get("seed", 7)))


def answer(tool: str, args: dict[str, Any], world: World) -> ToolResult:
    """The world's answer to one call (no latency). Omitted nullable arguments count as null."""
    from actors.tools.registry import TOOLS

    spec = TOOLS.get(tool)
    if spec is None or tool not in HANDLERS:
        raise ToolError("unknown_tool", f"the demo world does not serve {tool!r}")
    full = {name: None for name in s.nullable_properties(spec.parameters)} | dict(args)
    return HANDLERS[tool](full, world)


def demo_backend(tool: str) -> ToolFn | None:
    """An async backend answering ``tool`` from the demo world, or None if the world cannot."""
    if tool not in HANDLERS:
        return None

    async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        world = world_for(ctx)
        delay = latency_s(demo_config(ctx))
        if delay:
            await asyncio.sleep(delay)  # simulated I/O; cancellable like a real request
        return answer(tool, args, world)

    run.__name__ = f"demo_{tool}"
    return run


async def _service_map(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    fn = demo_backend("demo_service_map")
    assert fn is not None
    return await fn(args, ctx)


SPECS: list[ToolSpec] = [
    ToolSpec(
        name="demo_service_map",
        category="observability",
        integration="demo",
        fn=_service_map,
        timeout_s=10.0,
        description="Show which services call which (the service dependency graph from traces). Use it to "
        "tell a failing dependency from the services that merely suffer from it.",
        parameters=s.obj(),
    ),
]
