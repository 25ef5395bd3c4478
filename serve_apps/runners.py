"""The runner registry: the composition root names every runner a Serve config or the CLI may pick.

``null`` leaves runs queued (webhook benchmarks), ``complete`` finishes them at once (tests), and
``investigation`` hands them to the engine's actor pool. The gateway, the agent API, the scheduler
(through the reports app) and ``incidentfox deliveries redrive`` all build runners from here.
"""

from __future__ import annotations

from actors.engine.runner import InvestigationRunner
from incidentfox.runs.runner import BUILTIN_RUNNERS, Runner, RunnerFactory
from incidentfox.runs.runner import make_runner as _make_runner

RUNNERS: dict[str, RunnerFactory] = {**BUILTIN_RUNNERS, "investigation": InvestigationRunner}


def make_runner(name: str, *, database_url: str) -> Runner:
    """The runner registered as ``name``; :class:`incidentfox.runs.runner.UnknownRunner` otherwise."""
    return _make_runner(name, database_url=database_url, registry=RUNNERS)
