"""How the API (or any caller) drives sandbox sessions: a small backend interface, two ways.

* :class:`RaySandboxBackend`: over the named :class:`SandboxManager` actor. Turns stream straight
  from the hosting actor (a Ray streaming generator); if that actor is dead, the manager is told
  (``host_failed``) and the message is retried once on a new host, which resumes the session from
  the database. A host dying mid-turn ends the stream with ``error host_died``; the next message
  resumes from the persisted history.
* :class:`LocalSandboxBackend`: the same manager and hosts in-process (no Ray), for tests and
  Ray-less local use.

Both raise the package's typed errors (:mod:`actors.sandbox.errors`) unwrapped from Ray's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol

import ray
from ray.exceptions import RayActorError, RayTaskError

from actors.sandbox import events
from actors.sandbox.config import SandboxRuntime
from actors.sandbox.errors import HostUnavailable
from actors.sandbox.manager import LocalSpawner, SandboxManagerCore
from actors.sandbox.mirror import Reporter
from incidentfox.errors import IncidentFoxError

try:  # newer Ray raises this for an actor that is restarting or unreachable
    from ray.exceptions import ActorUnavailableError
except ImportError:  # pragma: no cover
    ActorUnavailableError = RayActorError  # type: ignore[misc,assignment]

_DEAD = (RayActorError, ActorUnavailableError)
CALL_TIMEOUT_S = 60.0


class SandboxBackend(Protocol):
    async def create_session(self, *, org_id: str, team_id: str, created_by: str = "", title: str = "",
                             sandbox: dict[str, Any] | None = None, scheduling: dict[str, Any] | None = None,
                             slack: dict[str, Any] | None = None, key: str | None = None) -> dict[str, Any]: ...

    def send_message(self, session_id: str, *, text: str, llm: dict[str, Any],
                     sandbox: dict[str, Any] | None = None,
                     slack: dict[str, Any] | None = None) -> AsyncIterator[dict[str, Any]]: ...

    async def interrupt(self, session_id: str) -> bool: ...

    async def delete_session(self, session_id: str) -> bool: ...

    async def decide_approval(self, session_id: str, approval_id: str, *, approve: bool, by: str) -> bool: ...

    async def pending_approvals(self, session_id: str) -> list[dict[str, Any]]: ...

    async def stats(self) -> dict[str, Any]: ...


def _unwrap(exc: BaseException) -> BaseException:
    cause = getattr(exc, "cause", None)
    if isinstance(exc, RayTaskError) and isinstance(cause, IncidentFoxError):
        return cause
    return exc


class LocalSandboxBackend:
    def __init__(self, runtime: SandboxRuntime, *, reporter: Reporter | None = None,
                 prewarm: list[dict[str, Any]] | None = None) -> None:
        self.manager = SandboxManagerCore(runtime, spawner=LocalSpawner(runtime, reporter), prewarm=prewarm)

    async def start(self) -> None:
        await self.manager.start()

    async def create_session(self, **kwargs: Any) -> dict[str, Any]:
        return await self.manager.create_session(**kwargs)

    async def send_message(self, session_id: str, *, text: str, llm: dict[str, Any],
                           sandbox: dict[str, Any] | None = None,
                           slack: dict[str, Any] | None = None) -> AsyncIterator[dict[str, Any]]:
        host = self.manager.host_handle(await self.manager.locate(session_id))
        async for ev in host.send_message(session_id, text, llm, sandbox, slack):
            yield ev

    async def interrupt(self, session_id: str) -> bool:
        name = self.manager.where(session_id)
        return await self.manager.host_handle(name).interrupt(session_id) if name else False

    async def delete_session(self, session_id: str) -> bool:
        return await self.manager.delete_session(session_id)

    async def decide_approval(self, session_id: str, approval_id: str, *, approve: bool, by: str) -> bool:
        name = self.manager.where(session_id)
        return bool(name) and await self.manager.host_handle(name).decide_approval(session_id, approval_id,
                                                                                   approve, by)

    async def pending_approvals(self, session_id: str) -> list[dict[str, Any]]:
        name = self.manager.where(session_id)
        return await self.manager.host_handle(name).pending_approvals(session_id) if name else []

    async def stats(self) -> dict[str, Any]:
        return await self.manager.stats()


class RaySandboxBackend:
    def __init__(self, manager: Any, *, namespace: str) -> None:
        self.manager = manager
        self.namespace = namespace
        self._handles: dict[str, Any] = {}

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                return await getattr(self.manager, method).remote(**kwargs)
        except RayTaskError as exc:
            raise _unwrap(exc) from None
        except _DEAD:
            raise HostUnavailable("the sandbox manager is unavailable; retry shortly") from None

    async def _host(self, name: str) -> Any:
        handle = self._handles.get(name)
        if handle is None:
            handle = await asyncio.to_thread(ray.get_actor, name, namespace=self.namespace)
            self._handles[name] = handle
        return handle

    async def create_session(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("create_session", **kwargs)

    async def send_message(self, session_id: str, *, text: str, llm: dict[str, Any],
                           sandbox: dict[str, Any] | None = None,
                           slack: dict[str, Any] | None = None) -> AsyncIterator[dict[str, Any]]:
        for attempt in range(2):
            name = await self._call("locate", session_id=session_id)
            started = False
            try:
                host = await self._host(name)
                stream = host.send_message.options(num_returns="streaming").remote(
                    session_id, text, llm, sandbox, slack)
                async for ref in stream:
                    ev = await ref
                    started = True
                    yield ev
                return
            except RayTaskError as exc:
                raise _unwrap(exc) from None
            except (ValueError, *_DEAD):  # ValueError: ray.get_actor found no such actor
                self._handles.pop(name, None)
                await self._call("host_failed", name=name)
                if started:
                    yield events.error("host_died", "the sandbox host died during this turn; send the "
                                                    "next message to resume from the saved history").to_dict()
                    return
                if attempt == 1:
                    raise HostUnavailable("no sandbox host could take this session; retry shortly") from None

    async def interrupt(self, session_id: str) -> bool:
        name = await self._call("where", session_id=session_id)
        if name is None:
            return False
        try:
            host = await self._host(name)
            async with asyncio.timeout(CALL_TIMEOUT_S):
                return await host.interrupt.remote(session_id)
        except (ValueError, *_DEAD):
            self._handles.pop(name, None)
            await self._call("host_failed", name=name)
            return False  # its turn died with it

    async def delete_session(self, session_id: str) -> bool:
        return await self._call("delete_session", session_id=session_id)

    async def _on_host(self, session_id: str, method: str, *args: Any) -> Any:
        """Call ``method`` on the host holding ``session_id`` (None if no host holds it)."""
        name = await self._call("where", session_id=session_id)
        if name is None:
            return None
        try:
            host = await self._host(name)
            async with asyncio.timeout(CALL_TIMEOUT_S):
                return await getattr(host, method).remote(session_id, *args)
        except (ValueError, *_DEAD):
            self._handles.pop(name, None)
            await self._call("host_failed", name=name)
            return None

    async def decide_approval(self, session_id: str, approval_id: str, *, approve: bool, by: str) -> bool:
        return bool(await self._on_host(session_id, "decide_approval", approval_id, approve, by))

    async def pending_approvals(self, session_id: str) -> list[dict[str, Any]]:
        return list(await self._on_host(session_id, "pending_approvals") or [])

    async def stats(self) -> dict[str, Any]:
        return await self._call("stats")
