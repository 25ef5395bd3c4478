"""The scheduler as a detached, named Ray actor, and the batch of Ray tasks each tick produces.

``SchedulerActor`` (name ``incidentfox-scheduler``, ``num_cpus=0``) ticks every ``tick_s`` seconds.
Jobs it wins are run as Ray tasks named ``schedule-batch-<minute>/<kind>/<org>/<team>`` with the
team's placement options (shared or dedicated resource), at most the team's quota at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray

from actors.scheduler.service import ClaimedJob, SchedulerService, run_batch
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs.runner import RunnerFactory
from incidentfox.settings import Settings

log = logging.getLogger("incidentfox.scheduler")
ACTOR_NAME = "incidentfox-scheduler"


def placement_options(org_id: str, team_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """Ray options carrying the team's scheduling constraint (see :mod:`actors.engine.placement`)."""
    from actors.engine.placement import scheduling_options

    return scheduling_options(config, org_id=org_id, team_id=team_id)


@ray.remote(num_cpus=0, max_retries=0)
def run_scheduled_job(claimed: ClaimedJob, database_url: str, slack_api_url: str,
                      runner: RunnerFactory, public_url: str = "") -> dict[str, Any]:
    """One job of a batch (a sync Ray task driving the async job code on its own loop)."""
    from actors.scheduler.execute import execute_claimed
    from incidentfox.logs import configure_process_logging

    configure_process_logging()

    return asyncio.run(execute_claimed(claimed, database_url=database_url, slack_api_url=slack_api_url,
                                       runner=runner, public_url=public_url))


async def dispatch_batch(claimed: list[ClaimedJob], *, database_url: str, slack_api_url: str,
                         runner: RunnerFactory, public_url: str = "") -> list[Any]:
    async def submit(c: ClaimedJob, name: str) -> Any:
        s = c.job.schedule
        opts = placement_options(s.org_id, s.team_id, c.config)
        return await run_scheduled_job.options(name=name, **opts).remote(c, database_url, slack_api_url, runner,
                                                                         public_url)

    return await run_batch(claimed, submit=submit)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class SchedulerActor:
    def __init__(self, *, runner: RunnerFactory, tick_s: float = 30.0) -> None:
        from actors.scheduler.teams import team_config_provider
        from incidentfox.logs import configure_process_logging

        configure_process_logging()

        self.settings = Settings()
        url = self.settings.resolved_database_url()
        self._engine = make_async_engine(url)
        self.service = SchedulerService(database_url=url, tick_s=tick_s,
                                        team_configs=team_config_provider(session_factory(self._engine),
                                                                          self.settings))
        self.runner = runner
        self._task: asyncio.Task | None = None
        self.ticks = 0

    async def start(self) -> bool:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())
        return True

    async def tick_once(self) -> int:
        claimed = await self.service.tick()
        if claimed:
            await dispatch_batch(claimed, database_url=self.service.database_url,
                                 slack_api_url=self.settings.slack_api_url, runner=self.runner,
                                 public_url=self.settings.public_url)
        self.ticks += 1
        return len(claimed)

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed")
            await asyncio.sleep(self.service.tick_s)


def ensure_scheduler(*, namespace: str, runner: RunnerFactory, tick_s: float = 30.0):
    """Get or create the detached scheduler actor and start its loop (idempotent). ``runner`` builds
    the runner for scheduled investigations (the composition root's registry picks it)."""
    actor = SchedulerActor.options(name=ACTOR_NAME, namespace=namespace, lifetime="detached",
                                   get_if_exists=True).remote(tick_s=tick_s, runner=runner)
    actor.start.remote()
    return actor
