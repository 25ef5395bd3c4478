"""The bubblewrap backend: commands run on the host's node (:mod:`actors.sandbox.isolation`)."""

from __future__ import annotations

import asyncio

from actors.sandbox.backends import SessionRef
from actors.sandbox.config import SandboxRuntime
from actors.sandbox.isolation import IsolationStatus, run_command, sandbox_isolation_status


class _Commands:
    async def run(self, command: str, **kwargs):  # type: ignore[no-untyped-def]
        return await run_command(command, **kwargs)


class BwrapBackend:
    name = "bwrap"

    def __init__(self, runtime: SandboxRuntime) -> None:
        self.runtime = runtime
        self._status: IsolationStatus | None = None

    async def status(self) -> IsolationStatus:
        """Kept once available; while unavailable, asked again (the probe retries after a while)."""
        if self._status is None or not self._status.available:
            self._status = await asyncio.to_thread(sandbox_isolation_status, self.runtime.allow_rlimit_only,
                                                   probe_uid=self.runtime.uid_base - 1, root=self.runtime.root)
        return self._status

    def bind(self, session: SessionRef) -> _Commands:
        return _Commands()

    async def release(self, session_id: str) -> None:
        pass  # nothing outlives a command

    async def destroy(self, session_id: str) -> None:
        pass
