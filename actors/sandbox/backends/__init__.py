"""Where a session's commands run: one interface, two implementations, picked by config
(``INCIDENTFOX_SANDBOX_BACKEND``, :attr:`SandboxRuntime.backend`).

* ``bwrap`` (:class:`actors.sandbox.backends.bwrap.BwrapBackend`, the local default): bubblewrap +
  rlimits + a per-session UID on the host's node (:mod:`actors.sandbox.isolation`).
* ``pod`` (:class:`actors.sandbox.backends.pod.PodBackend`, production on Kubernetes): a pod per
  session, created by the sandbox actors through the Kubernetes API, commands run in it through the
  exec API.

A backend is shared by every session of a host (and the manager, which ends sessions whose host is
gone). :meth:`CommandBackend.bind` gives a session its :class:`SessionCommands`, whose ``run`` has
the signature of :func:`actors.sandbox.isolation.run_command`, so the Bash tool calls either alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from actors.sandbox.config import SandboxLimits, SandboxRuntime
    from actors.sandbox.isolation import CommandResult, IsolationStatus
    from actors.sandbox.workspace import Workspace


@dataclass(frozen=True)
class SessionRef:
    """What a backend needs to know about a session to run its commands."""

    session_id: str
    org_id: str
    team_id: str
    uid: int
    network: bool


class SessionCommands(Protocol):
    async def run(self, command: str, *, workspace: Workspace, limits: SandboxLimits, status: IsolationStatus,
                  timeout_s: float, network: bool = False) -> CommandResult: ...


class CommandBackend(Protocol):
    name: str

    async def status(self) -> IsolationStatus:
        """Whether commands can run, and how (``/health``, the Bash tool's refusal)."""

    def bind(self, session: SessionRef) -> SessionCommands:
        """The command runner of one session on this host."""

    async def release(self, session_id: str) -> None:
        """The session left this host (closed or moved): drop per-session state here."""

    async def destroy(self, session_id: str) -> None:
        """The session ended: remove what it holds outside this process (its pod). Idempotent."""


def command_backend(runtime: SandboxRuntime) -> CommandBackend:
    if runtime.backend == "pod":
        from actors.sandbox.backends.pod import PodBackend

        return PodBackend(runtime)
    from actors.sandbox.backends.bwrap import BwrapBackend

    return BwrapBackend(runtime)


def isolation_status(settings: Any) -> IsolationStatus:
    """The isolation this process's settings give sandbox Bash (blocking: a bwrap probe)."""
    from actors.sandbox.isolation import sandbox_isolation_status

    if settings.sandbox_backend == "pod":
        from actors.sandbox.backends.pod import pod_status
        from actors.sandbox.backends.pod_spec import PodConfig

        return pod_status(PodConfig.from_settings(settings))
    from actors.sandbox.workspace_root import workspace_root

    return sandbox_isolation_status(settings.sandbox_allow_rlimit_only, root=workspace_root(settings))
