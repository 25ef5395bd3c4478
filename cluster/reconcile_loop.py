"""Running the worker-group reconciler (:mod:`cluster.reconcile`) without manual runs.

:class:`ReconcileLoop` runs a pass, then waits ``interval_s`` seconds or until :meth:`~ReconcileLoop.trigger`
is called, whichever comes first; a pass that raises is logged and the loop goes on. The wait is
injectable, so tests drive the schedule without sleeping.

:class:`WorkerGroupReconciler` is that loop in a detached Ray actor (name
``incidentfox-worker-groups``, ``num_cpus=0``, a sliver of the ``shared`` resource so it never lands on
a dedicated team's node, whose pods have no Kubernetes token). The loop runs on a thread of its own,
started in ``__init__``, so an actor restarted by Ray resumes it without being asked.
:func:`ensure_reconciler` gets or creates it; the config service's Serve replicas call it
(``serve_apps/builder.py``) when :func:`enabled` says the process runs inside a Kubernetes pod and
``INCIDENTFOX_WORKER_GROUPS_RECONCILE_S`` is above 0. ``incidentfox cluster reconcile`` runs the same
pass (``--once``) or loop in the foreground.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import ray

from incidentfox.settings import Settings

if TYPE_CHECKING:   # imported where used: the kubernetes client is not loaded where the loop is off
    from cluster.reconcile import Reconciler, ReconcileResult

log = logging.getLogger("incidentfox.reconciler")

ACTOR_NAME = "incidentfox-worker-groups"
Wait = Callable[[asyncio.Event, float], Awaitable[None]]


async def wait_or_trigger(kick: asyncio.Event, interval_s: float) -> None:
    """Return after ``interval_s`` seconds, or as soon as ``kick`` is set."""
    try:
        async with asyncio.timeout(interval_s):
            await kick.wait()
    except TimeoutError:
        pass


class ReconcileLoop:
    def __init__(self, run_once: Callable[[], Awaitable[ReconcileResult]], *, interval_s: float,
                 wait: Wait = wait_or_trigger,
                 on_result: Callable[[ReconcileResult], None] | None = None) -> None:
        if not interval_s > 0:
            raise ValueError("interval_s must be > 0")
        self._run_once, self.interval_s, self._wait, self._on_result = run_once, interval_s, wait, on_result
        self._kick = asyncio.Event()
        self._stopping = False
        self.passes = 0
        self.last: ReconcileResult | None = None

    def trigger(self) -> None:
        """Run the next pass now (from the loop's own thread; see the actor for other threads)."""
        self._kick.set()

    def stop(self) -> None:
        self._stopping = True
        self._kick.set()

    async def run(self, *, max_passes: int | None = None) -> None:
        while not self._stopping:
            self._kick.clear()   # a trigger during the pass below asks for one more pass
            try:
                self.last = await self._run_once()
                if self._on_result is not None:
                    self._on_result(self.last)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker-group reconcile pass failed")
            self.passes += 1
            if self._stopping or (max_passes is not None and self.passes >= max_passes):
                return
            await self._wait(self._kick, self.interval_s)


def enabled(settings: Settings) -> bool:
    """Only inside a Kubernetes pod (in-cluster credentials), and only with an interval above 0."""
    return settings.worker_groups_reconcile_s > 0 and bool(settings.kubernetes_service_host)


def build_reconciler(settings: Settings, *, api_client: Any = None,
                     dry_run: bool = False) -> tuple[Reconciler, Callable[[], Awaitable[None]]]:
    """A :class:`Reconciler` on the platform database (teams' configs, audit log) and the RayService
    named by ``settings``, through ``api_client`` (default: in-cluster credentials); and a close."""
    from kubernetes.client import CoreV1Api, CustomObjectsApi

    from cluster.provisioner import Provisioner
    from cluster.reconcile import Reconciler, database_audit
    from config_service import TeamConfigReader
    from incidentfox.db import make_async_engine, session_factory

    if api_client is None:
        from kubernetes import client, config

        config.load_incluster_config()
        api_client = client.ApiClient()
    engine = make_async_engine(settings.resolved_database_url())
    sessions = session_factory(engine)
    provisioner = Provisioner(CustomObjectsApi(api_client), core=CoreV1Api(api_client),
                              namespace=settings.worker_groups_namespace, name=settings.worker_groups_rayservice,
                              drain_s=settings.worker_groups_drain_s, dry_run=dry_run)
    reconciler = Reconciler(provisioner, TeamConfigReader(sessions, settings=settings),
                            audit=database_audit(sessions))
    return reconciler, engine.dispose


@ray.remote(num_cpus=0, resources={"shared": 0.001}, max_restarts=-1, max_task_retries=0)
class WorkerGroupReconciler:
    """The reconcile loop as a detached actor (see the module docstring)."""

    def __init__(self) -> None:
        from incidentfox.logs import configure_process_logging

        configure_process_logging()
        self._settings = Settings()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rl: ReconcileLoop | None = None
        threading.Thread(target=self._main, name="worker-group-reconciler", daemon=True).start()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception:
            log.exception("the worker-group reconciler stopped")

    async def _serve(self) -> None:
        try:
            reconciler, close = build_reconciler(self._settings)
            self._rl = ReconcileLoop(reconciler.run_once, interval_s=self._settings.worker_groups_reconcile_s)
            self._loop = asyncio.get_running_loop()
        finally:
            self._ready.set()
        try:
            await self._rl.run()
        finally:
            await close()

    def trigger(self) -> bool:
        """Run a pass now (e.g. right after a team's deployment changed)."""
        self._ready.wait(30)
        if self._loop is None or self._rl is None:
            return False
        self._loop.call_soon_threadsafe(self._rl.trigger)
        return True

    def status(self) -> dict[str, Any]:
        rl = self._rl
        last = rl.last if rl is not None else None
        return {"passes": rl.passes if rl is not None else 0,
                "interval_s": self._settings.worker_groups_reconcile_s,
                "last": None if last is None else {**last.summary(),
                                                   "outcomes": [o.as_dict() for o in last.outcomes
                                                                if o.status != "unchanged"]}}


def ensure_reconciler(*, namespace: str = "incidentfox", settings: Settings | None = None) -> Any | None:
    """Get or create the detached reconciler (idempotent); None where :func:`enabled` says no."""
    if not enabled(settings or Settings()):
        return None
    return WorkerGroupReconciler.options(name=ACTOR_NAME, namespace=namespace, lifetime="detached",
                                         get_if_exists=True).remote()
