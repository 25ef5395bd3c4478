"""The sub-agent workers and tool executors of a placement key: started by name, replaced when dead.

Each placement key has ``subagent_workers`` :class:`SubAgentWorker` s and ``tool_executors``
:class:`ToolExecutor` s, named ``<name>-subagents-<key>-<i>`` and ``<name>-tools-<key>-<i>`` and
carrying the key's scheduling constraint. The pool's maintenance loop calls :func:`heal`, which pings
each and starts a replacement under the same name for one that died; a run whose call hit the dead
one has already retried on a live one (:mod:`actors.engine.fanout`, :mod:`actors.engine.subagent_worker`).
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import Any

from actors.engine.placement import options_for_key
from actors.engine.pool_config import CALL_TIMEOUT_S, NAMESPACE, PoolConfig
from actors.engine.subagent_worker import SubAgentWorker
from actors.engine.tool_executor import ToolExecutor
from actors.ray_util import is_actor_gone

log = logging.getLogger(__name__)


class HelperKind(StrEnum):
    SUBAGENTS = "subagents"
    TOOLS = "tools"


def helper_name(cfg: PoolConfig, kind: HelperKind, key: str, index: int) -> str:
    return f"{cfg.name}-{kind.value}-{key.replace('_', '-')}-{index}"


def start_helper(cfg: PoolConfig, kind: HelperKind, key: str, index: int) -> Any:
    """The named helper actor (the running one if it exists, else a new one)."""
    opts = dict(name=helper_name(cfg, kind, key, index), namespace=NAMESPACE, get_if_exists=True,
                **options_for_key(key))
    if kind is HelperKind.SUBAGENTS:
        return SubAgentWorker.options(**opts).remote()
    from incidentfox.object_store import object_store_config

    return ToolExecutor.options(**opts).remote(cfg.database_url, cfg.slack_api_url,
                                               object_store_config(cfg.settings))


def start_helpers(cfg: PoolConfig, key: str) -> tuple[list[Any], list[Any]]:
    """``(workers, executors)`` of placement ``key``."""
    return ([start_helper(cfg, HelperKind.SUBAGENTS, key, i) for i in range(cfg.subagent_workers)],
            [start_helper(cfg, HelperKind.TOOLS, key, i) for i in range(cfg.tool_executors)])


async def heal(cfg: PoolConfig, key: str, *, workers: list[Any], executors: list[Any]) -> list[str]:
    """Replace (in place, in the two lists) every helper of ``key`` that died; returns their names."""
    replaced: list[str] = []
    for kind, handles in ((HelperKind.SUBAGENTS, workers), (HelperKind.TOOLS, executors)):
        for i, handle in enumerate(handles):
            try:
                async with asyncio.timeout(CALL_TIMEOUT_S):
                    await handle.ping.remote()
            except Exception as exc:  # noqa: BLE001 - only a dead actor is replaced; see below
                if not is_actor_gone(exc):
                    continue   # slow or busy, not dead: the next period looks again
                handles[i] = start_helper(cfg, kind, key, i)
                replaced.append(helper_name(cfg, kind, key, i))
                log.warning("replaced dead actor %s", replaced[-1])
    return replaced
