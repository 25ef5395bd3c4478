"""The runner interface: how a queued run reaches whatever executes it.

The gateway and the agent API persist a queued run, then call :meth:`Runner.submit`, which must
return quickly (it hands the run off; it never investigates inline). Everything a runner needs is in
the run row, so a submit that is lost (crash, actor death) is repaired by re-submitting from the
database: the gateway's recovery sweep and the engine's lease recovery both do that.

Runners are chosen by name (:func:`make_runner`), so a Serve config can say which one an
application uses: ``null`` (benchmarks: leave runs queued), ``complete`` (tests: finish at once),
``investigation`` (the engine's Ray actor pool, :mod:`actors.engine.runner`). This module knows only
the first two; the composition roots (:mod:`serve_apps.runners`, used by the Serve builder and the
CLI) register the engine's, so the ground floor never imports, or names, a package above it.

Sandbox deliveries (a Slack ``/incidentfox sandbox …`` or a reply in a sandbox session's thread) are
handed off the same way, to a :class:`SandboxRunner`: the delivery row holds everything the sandbox
side needs, so an undispatched one is re-submitted by the same sweep and redrive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from incidentfox.contracts import RunStatus, Trigger
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs import store


@runtime_checkable
class Runner(Protocol):
    async def submit(self, *, run_id: str, org_id: str, team_id: str) -> None:
        """Hand a queued run to the executor. Returns once handed off; idempotent per run id."""

    async def cancel(self, *, run_id: str) -> None:
        """Stop a running run's work (the store already records the cancel request)."""

    async def attach(self, *, run_id: str, trigger: Trigger) -> None:
        """Deliver added context to a live run: an absorbed alert, or a human reply in its thread
        (a turn, :func:`incidentfox.runs.turns.attach_entry` says which)."""


@runtime_checkable
class SandboxRunner(Protocol):
    async def submit(self, *, delivery_pk: int) -> None:
        """Hand a recorded sandbox delivery (``webhook_deliveries.id``) to the sandbox side, which
        opens the session or runs the turn. Returns once handed off; idempotent per delivery (the
        sandbox side claims the row before it acts, so a re-submitted delivery acts once)."""


class NullRunner:
    """Accepts runs and leaves them queued (webhook benchmarks: no investigation competes for CPU)."""

    def __init__(self, database_url: str = "") -> None:
        self.submitted: list[str] = []

    async def submit(self, *, run_id: str, org_id: str, team_id: str) -> None:
        self.submitted.append(run_id)

    async def cancel(self, *, run_id: str) -> None:
        return None

    async def attach(self, *, run_id: str, trigger: Trigger) -> None:
        return None


class CompletingRunner:
    """A minimal runner that completes each run at once with a placeholder result (tests only)."""

    def __init__(self, database_url: str) -> None:
        self._engine = make_async_engine(database_url)
        self._sessions = session_factory(self._engine)

    async def submit(self, *, run_id: str, org_id: str, team_id: str) -> None:
        async with self._sessions() as s:
            if await store.claim(s, run_id=run_id, owner="completing-runner", lease_s=30):
                await store.transition(s, run_id=run_id, to=RunStatus.SUCCEEDED,
                                       result={"summary": "completed by the minimal test runner"})
            await s.commit()

    async def cancel(self, *, run_id: str) -> None:
        async with self._sessions() as s:
            await store.transition(s, run_id=run_id, to=RunStatus.CANCELLED)
            await s.commit()

    async def attach(self, *, run_id: str, trigger: Trigger) -> None:
        return None


RunnerFactory = Callable[..., Runner]
"""Builds a runner: called as ``factory(database_url=...)`` (a runner class is one)."""

BUILTIN_RUNNERS: dict[str, RunnerFactory] = {"null": NullRunner, "complete": CompletingRunner}


class UnknownRunner(ValueError):
    """A runner name that the registry does not hold."""


def make_runner(name: str, *, database_url: str, registry: Mapping[str, RunnerFactory]) -> Runner:
    """Build the runner registered as ``name`` in ``registry`` (see :mod:`serve_apps.runners`)."""
    try:
        factory = registry[name]
    except KeyError:
        raise UnknownRunner(f"unknown runner {name!r}; registered: {', '.join(sorted(registry))}") from None
    return factory(database_url=database_url)
