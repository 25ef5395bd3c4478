"""Where Slack sandbox opens and turns run in production: the ``sandbox-slack`` named actor.

* :func:`make_slack_dispatch` wires a :class:`~actors.sandbox.slack_dispatch.SlackDispatchCore` from
  ``Settings``: its own database engine, the config service's effective team config (secrets
  revealed), the engine's placement, a Slack web poster, this node's isolation status, and the Ray
  backend over the named ``sandbox-manager`` (created with the same prewarm as the SandboxAPI).
* :class:`SandboxSlack` is that core as a detached async actor (restarted by Ray if it dies, one
  per namespace): opens and hour-long turns run on its loop, never in a gateway replica, so a
  replica scaled down or redeployed loses nothing.
* :class:`RaySandboxRunner` is the gateway's (and the CLI's) :class:`~incidentfox.runs.runner.SandboxRunner`:
  ``submit(delivery_pk=)`` hands the recorded delivery to that actor, creating it on first use.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray
from ray.exceptions import RayActorError

from actors.sandbox.client import SandboxBackend
from actors.sandbox.slack_dispatch import CONFIG_TIMEOUT_S, CREATE_TIMEOUT_S, SlackDispatchCore
from incidentfox.logs import with_process_logging
from incidentfox.settings import Settings

SLACK_ACTOR_NAME = "sandbox-slack"
CALL_TIMEOUT_S = 30.0
# The SandboxAPI's default prewarm (serve_apps.sandbox.api.SandboxApiArgs): shared teams' hosts.
DEFAULT_PREWARM: list[dict[str, Any]] = [{"resources": {"shared": 0.001}}]


def make_slack_dispatch(settings: Settings, *, namespace: str = "incidentfox",
                        prewarm: list[dict[str, Any]] | None = None) -> SlackDispatchCore:
    """The production wiring (see module doc); ``close()`` disposes its engine."""
    from actors.engine.placement import scheduling_options
    from actors.sandbox.backends import isolation_status
    from actors.sandbox.mirror import SlackWebReporter
    from config_service import TeamConfigReader
    from incidentfox.db import make_async_engine, session_factory

    engine = make_async_engine(settings.resolved_database_url())
    sessions = session_factory(engine)
    # Bounded by the dispatch core's own CONFIG_TIMEOUT_S as well; the reader's bound is the same.
    team_config = TeamConfigReader(sessions, settings=settings, timeout_s=CONFIG_TIMEOUT_S).read_doc

    async def ray_backend() -> SandboxBackend:
        from actors.sandbox.client import RaySandboxBackend
        from actors.sandbox.config import SandboxRuntime
        from actors.sandbox.manager import get_or_create_manager

        # The same manager (and prewarm) the SandboxAPI replicas use; get_if_exists may ask the GCS.
        manager = await asyncio.to_thread(get_or_create_manager,
                                          SandboxRuntime.from_settings(settings, namespace=namespace),
                                          prewarm=DEFAULT_PREWARM if prewarm is None else prewarm)
        async with asyncio.timeout(CREATE_TIMEOUT_S):
            await manager.start.remote()
        return RaySandboxBackend(manager, namespace=namespace)

    return SlackDispatchCore(
        sessions=sessions, backend=ray_backend, team_config=team_config, engine=engine,
        reporter_for=lambda token: SlackWebReporter(token, base_url=settings.slack_api_url),
        scheduling_for=lambda cfg, org, team: scheduling_options(cfg, org_id=org, team_id=team),
        isolation=lambda: isolation_status(settings),
        slack_api_url=settings.slack_api_url)


class SandboxSlackActor:
    """The actor body: one :class:`SlackDispatchCore` built from the settings it was created with."""

    def __init__(self, settings: Settings, *, namespace: str = "incidentfox",
                 prewarm: list[dict[str, Any]] | None = None) -> None:
        self._core = make_slack_dispatch(settings, namespace=namespace, prewarm=prewarm)

    async def submit(self, delivery_pk: int) -> None:
        await self._core.submit(delivery_pk=delivery_pk)

    async def ping(self) -> bool:
        return True


# Tenant data passes here: the redacting log filter is installed first (incidentfox.logs).
SandboxSlack = ray.remote(num_cpus=0)(with_process_logging(SandboxSlackActor))


def get_or_create_slack_actor(settings: Settings, *, namespace: str = "incidentfox",
                              prewarm: list[dict[str, Any]] | None = None) -> Any:
    """The named ``sandbox-slack`` actor in ``namespace`` (created on first call; blocking)."""
    # max_restarts: a crashed actor comes back under the same name; deliveries it had not claimed
    # are re-submitted by the gateway's sweep.
    return SandboxSlack.options(name=SLACK_ACTOR_NAME, namespace=namespace, get_if_exists=True,
                                lifetime="detached", max_concurrency=1000, max_restarts=-1).remote(
        settings, namespace=namespace, prewarm=prewarm)


class RaySandboxRunner:
    """Hands recorded sandbox deliveries to the ``sandbox-slack`` actor (see module doc)."""

    def __init__(self, settings: Settings, *, namespace: str = "incidentfox") -> None:
        self._settings, self._namespace = settings, namespace
        self._handle: Any | None = None

    def _get(self) -> Any:   # blocking: run in a thread
        if not ray.is_initialized():   # the CLI: join the running cluster, as the Serve replicas do
            ray.init(address="auto", namespace=self._namespace, log_to_driver=False)
        return get_or_create_slack_actor(self._settings, namespace=self._namespace)

    async def submit(self, *, delivery_pk: int) -> None:
        if self._handle is None:
            self._handle = await asyncio.to_thread(self._get)
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                await self._handle.submit.remote(delivery_pk)
        except RayActorError:
            self._handle = None   # dead for good: ask for it (and so re-create it) next time
            raise
