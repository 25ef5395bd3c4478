"""Secrets out of memory (issue 12): a run's decrypted integrations are dropped from the shared tool
executors when the run ends, so an executor serving many teams holds only live runs' credentials."""

from __future__ import annotations

import asyncio

import pytest
import ray
from engine_support import demo_config, engine  # noqa: F401 - the module's engine fixture

from actors.engine.pool import NAMESPACE

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _tool_executors() -> list:
    # actors/engine/pool.py names them "{pool}-tools-{placement key}-{i}" in its namespace.
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
             if a["namespace"] == NAMESPACE and "-tools-" in a["name"]]
    return [ray.get_actor(n, namespace=NAMESPACE) for n in names]


async def test_a_finished_runs_credentials_leave_the_tool_executors(engine):  # noqa: F811
    team = await engine.add_team(demo_config())
    run_id = await engine.start(team)
    run = await engine.wait_terminal(run_id)
    assert run.status == "succeeded"
    assert await engine.tool_calls(run_id), "the run used the executors (else this would prove nothing)"
    executors = _tool_executors()
    assert executors

    async def held() -> bool:
        return any([run_id in await e.held_runs.remote() for e in executors])

    # The status turns terminal before the run's coroutine unwinds (its `finally` drops the context):
    # wait on that condition, bounded, as ray's wait_for_condition does.
    deadline = asyncio.get_running_loop().time() + 30
    while await held():
        assert asyncio.get_running_loop().time() < deadline, "the executor still holds the run's credentials"
        await asyncio.sleep(0.05)
