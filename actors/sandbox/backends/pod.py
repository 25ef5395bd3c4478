"""The pod backend: each session's commands run in its own pod (docs/sandbox.md, "Backends").

* **The pod** (:func:`actors.sandbox.backends.pod_spec.session_pod`) is created on the session's
  first command by the host actor through ``CoreV1Api`` (the ``kubernetes`` client is synchronous:
  every call runs in a thread with a request timeout, never on the actor's loop), then waited for
  until Running (image pull failures end the wait at once). The name is derived from the session
  id, so a host that takes over a session (its old host died) adopts the pod, and the manager can
  delete it by name when the session ends (TTL or ``DELETE``) even if no host holds it.
* **The workspace** stays on the host (the file tools and the snapshots work on it). Before a
  command, the host's copy is pushed into the pod's ``/workspace`` when it changed since the last
  sync (or the pod is new); after the command, the pod's ``/workspace`` is pulled back as a tar and
  unpacked with the snapshot rules (no absolute or ``..`` names, nothing under a symlink; FIFOs and
  devices skipped), replacing the host's copy in one rename.
* **A command** runs as ``bash -c`` under ``ulimit`` (the same per-process limits as on bwrap) and
  ``timeout -s KILL`` inside the pod; the whole pod is bounded by its CPU, memory and
  ephemeral-storage limits. After every command, timeout or interrupt, ``kill -KILL -1`` in the pod
  ends everything the command left running (PID 1 is immune), so nothing outlives a command.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors.sandbox.backends import SessionRef
from actors.sandbox.backends.kube_exec import ExecOutcome, exec_in_pod
from actors.sandbox.backends.pod_spec import PodConfig, pod_name, session_pod
from actors.sandbox.config import SandboxLimits, SandboxRuntime
from actors.sandbox.errors import IsolationUnavailable
from actors.sandbox.isolation import CommandResult, IsolationStatus
from actors.sandbox.snapshot import _replace_dir, fingerprint, pack, unpack
from actors.sandbox.workspace import Workspace

KILL_ALL = ["/bin/sh", "-c", "kill -KILL -1 2>/dev/null; true"]
PULL = ["/bin/sh", "-c", "cd /workspace && tar -c -z -f - --hard-dereference --numeric-owner ."]
_WRAPPER = ("for l in '-c 0' '-t {cpu}' '-v {as_kb}' '-u {nproc}' '-f {fsize_kb}' '-n {nofile}'; do "
            "ulimit $l 2>/dev/null; done; cd /workspace || exit 125; exec 2>&1; "
            "exec timeout -s KILL {backstop} /bin/bash --noprofile --norc -c \"$1\"")
_PULL_LIMIT_S = 300.0
_FATAL_WAITING = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                  "CreateContainerError"}


def pod_status(cfg: PodConfig) -> IsolationStatus:
    """Available when Kubernetes credentials can be loaded here (in-cluster, kubeconfig or a test
    server); RBAC is checked by the first create, whose 403 names the missing permission."""
    try:
        _api_client(cfg)
    except Exception as exc:  # noqa: BLE001 - any config failure means the backend cannot work here
        return IsolationStatus("unavailable", f"pod backend: no Kubernetes credentials ({type(exc).__name__}: {exc})")
    rc = f", runtimeClass {cfg.runtime_class}" if cfg.runtime_class else ""
    return IsolationStatus("pod", f"each session's commands run in its own pod in namespace {cfg.namespace}{rc}")


def _api_client(cfg: PodConfig) -> Any:
    from kubernetes import client, config

    if cfg.api_host:
        conf = client.Configuration(host=cfg.api_host)
        return client.ApiClient(conf)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def command_script(limits: SandboxLimits, timeout_s: float) -> list[str]:
    """The exec argv for a command (the command itself is appended as ``$1``)."""
    script = _WRAPPER.format(cpu=limits.cpu_s, as_kb=limits.memory_bytes // 1024, nproc=limits.nproc,
                             fsize_kb=max(limits.fsize_bytes // 1024, 1), nofile=limits.nofile,
                             backstop=int(timeout_s) + 5)
    return ["/bin/bash", "--noprofile", "--norc", "-c", script, "sandbox"]


def push_script(size: int) -> list[str]:
    script = ("chmod -R u+rwX /workspace 2>/dev/null; find /workspace -mindepth 1 -delete && "
              f"head -c {size} | tar -x -z -p -f - -C /workspace --no-same-owner")
    return ["/bin/sh", "-c", script]


@dataclass
class _PodSession:
    ref: SessionRef
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pod_uid: str | None = None        # the pod we synced with (a new pod needs a full push)
    synced: str | None = None         # fingerprint of the host's workspace at the last sync


class _Commands:
    def __init__(self, backend: PodBackend, state: _PodSession) -> None:
        self.backend, self.state = backend, state

    async def run(self, command: str, *, workspace: Workspace, limits: SandboxLimits, status: IsolationStatus,
                  timeout_s: float, network: bool = False, **options: Any) -> CommandResult:
        # `network` was fixed when the pod was labelled; bwrap-specific options do not apply here.
        return await self.backend.run(self.state, command, workspace=workspace, limits=limits, timeout_s=timeout_s)


class PodBackend:
    name = "pod"

    def __init__(self, runtime: SandboxRuntime) -> None:
        self.runtime, self.cfg = runtime, runtime.pod
        self._core: Any = None
        self._sessions: dict[str, _PodSession] = {}

    # -- the interface ---------------------------------------------------------------------------

    async def status(self) -> IsolationStatus:
        return await asyncio.to_thread(pod_status, self.cfg)

    def bind(self, session: SessionRef) -> _Commands:
        state = self._sessions.get(session.session_id)
        if state is None or state.ref != session:
            state = self._sessions[session.session_id] = _PodSession(session)
        return _Commands(self, state)

    async def release(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    async def destroy(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        await self._call("delete_namespaced_pod", pod_name(session_id), self.cfg.namespace,
                         grace_period_seconds=0, tolerate=(404,))

    # -- Kubernetes calls ------------------------------------------------------------------------

    def core(self) -> Any:
        if self._core is None:
            from kubernetes.client import CoreV1Api

            self._core = CoreV1Api(_api_client(self.cfg))
        return self._core

    async def _call(self, method: str, *args: Any, tolerate: tuple[int, ...] = (), **kwargs: Any) -> Any:
        """``CoreV1Api.<method>`` in a thread; a status in ``tolerate`` returns None, any other
        failure is :class:`IsolationUnavailable` (the Bash tool reports it to the model)."""
        from kubernetes.client.exceptions import ApiException

        def call() -> Any:
            return getattr(self.core(), method)(*args, _request_timeout=self.cfg.request_timeout_s, **kwargs)

        try:
            return await asyncio.to_thread(call)
        except ApiException as exc:
            if exc.status in tolerate:
                return None
            if exc.status == 403:
                raise IsolationUnavailable(f"the sandbox may not {method} in namespace {self.cfg.namespace} "
                                           "(RBAC: cluster/sandbox/role.yaml)") from None
            raise IsolationUnavailable(f"Kubernetes API {method} failed: {exc.status} {exc.reason}") from None
        except (OSError, ValueError) as exc:  # urllib3 connection errors are OSErrors
            raise IsolationUnavailable(f"Kubernetes API unreachable ({type(exc).__name__})") from None

    async def _ensure_pod(self, state: _PodSession) -> str:
        """The running pod's uid, creating (or replacing a finished) pod as needed."""
        ref, name, ns = state.ref, pod_name(state.ref.session_id), self.cfg.namespace
        deadline = time.monotonic() + self.cfg.start_timeout_s
        delay = 0.1
        while True:
            pod = await self._call("read_namespaced_pod", name, ns, tolerate=(404,))
            if pod is None:
                body = session_pod(self.cfg, session_id=ref.session_id, org_id=ref.org_id, team_id=ref.team_id,
                                   uid=ref.uid, network=ref.network)
                # 409: a concurrent create (another host taking the session over) won; read it next round.
                await self._call("create_namespaced_pod", ns, body, tolerate=(409,))
            else:
                phase = pod.status.phase if pod.status else None
                deleting = pod.metadata.deletion_timestamp is not None
                if phase == "Running" and not deleting and _ready(pod):
                    return pod.metadata.uid
                if phase in ("Succeeded", "Failed") and not deleting:
                    await self._call("delete_namespaced_pod", name, ns, grace_period_seconds=0, tolerate=(404,))
                reason = _fatal_reason(pod)
                if reason:
                    await self._call("delete_namespaced_pod", name, ns, grace_period_seconds=0, tolerate=(404,))
                    raise IsolationUnavailable(f"the session pod cannot start: {reason}")
            if time.monotonic() > deadline:
                raise IsolationUnavailable(f"the session pod was not running within {self.cfg.start_timeout_s:.0f}s")
            await asyncio.sleep(delay)  # polling the API server while the pod starts
            delay = min(delay * 2, 1.0)

    async def _exec(self, state: _PodSession, argv: list[str], *, stdin: bytes | None = None, timeout_s: float,
                    keep: int, hard: int) -> ExecOutcome:
        cancel = threading.Event()
        fut = asyncio.ensure_future(asyncio.to_thread(
            exec_in_pod, self.core(), namespace=self.cfg.namespace, pod=pod_name(state.ref.session_id), argv=argv,
            stdin=stdin, deadline=time.monotonic() + timeout_s, keep=keep, hard=hard, cancel=cancel,
            connect_timeout_s=self.cfg.request_timeout_s))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            cancel.set()  # the thread notices within one poll and closes the connection
            await asyncio.wait({fut})
            raise
        except Exception as exc:  # noqa: BLE001 - ApiException(status=0) wraps websocket failures
            raise IsolationUnavailable(f"exec in the session pod failed ({type(exc).__name__}: "
                                       f"{str(exc)[:200]})") from None

    # -- workspace sync --------------------------------------------------------------------------

    async def _push(self, state: _PodSession, workspace: Workspace) -> None:
        fp = await asyncio.to_thread(fingerprint, workspace.path)
        if fp == state.synced:
            return
        data = io.BytesIO()
        await asyncio.to_thread(pack, workspace.path, data)
        payload = data.getvalue()
        out = await self._exec(state, push_script(len(payload)), stdin=payload, timeout_s=_PULL_LIMIT_S,
                               keep=4096, hard=1 << 20)
        if out.exit_code != 0:
            raise IsolationUnavailable("the workspace could not be copied into the session pod: "
                                       + out.output.decode(errors="replace")[-300:])
        state.synced = fp

    async def _pull(self, state: _PodSession, workspace: Workspace) -> None:
        limit = self.runtime.snapshot_max_bytes
        out = await self._exec(state, PULL, timeout_s=_PULL_LIMIT_S, keep=limit, hard=limit)
        if out.stopped or out.exit_code not in (0, 1):  # GNU tar: 1 = "file changed as we read it"
            raise IsolationUnavailable("the workspace could not be copied back from the session pod")

        def apply() -> str:
            staging = Path(tempfile.mkdtemp(prefix=f".pull-{state.ref.session_id}-", dir=workspace.path.parent))
            try:
                unpack(io.BytesIO(out.output), staging, uid=workspace.uid, gid=workspace.gid, max_bytes=limit,
                       skip_special=True)
                if os.geteuid() == 0:
                    os.chown(staging, workspace.uid, workspace.gid)
                os.chmod(staging, 0o700)
                _replace_dir(staging, workspace.path)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            return fingerprint(workspace.path)

        state.synced = await asyncio.to_thread(apply)

    # -- one command -----------------------------------------------------------------------------

    async def run(self, state: _PodSession, command: str, *, workspace: Workspace, limits: SandboxLimits,
                  timeout_s: float) -> CommandResult:
        started = time.monotonic()
        async with state.lock:
            uid = await self._ensure_pod(state)
            if uid != state.pod_uid:
                state.pod_uid, state.synced = uid, None
            await self._push(state, workspace)
            try:
                out = await self._exec(state, [*command_script(limits, timeout_s), command], timeout_s=timeout_s,
                                       keep=limits.output_cap_chars * 4, hard=limits.output_hard_bytes)
            finally:
                # Interrupted or not: stop what the command left, then bring its files back.
                await asyncio.shield(self._settle(state, workspace))
        killed = {"timeout": "timeout", "output_limit": "output_limit", "cancelled": "interrupted"}.get(out.stopped or "")
        text = out.output.decode("utf-8", errors="replace")
        return CommandResult(exit_code=out.exit_code if killed is None else None,
                             output=text[: limits.output_cap_chars],
                             truncated=out.total > len(out.output) or len(text) > limits.output_cap_chars,
                             timed_out=killed == "timeout", killed=killed, duration_s=time.monotonic() - started)

    async def _settle(self, state: _PodSession, workspace: Workspace) -> None:
        await self._exec(state, KILL_ALL, timeout_s=30, keep=0, hard=1 << 16)
        await self._pull(state, workspace)


def _ready(pod: Any) -> bool:
    statuses = (pod.status.container_statuses or []) if pod.status else []
    return all(s.ready for s in statuses) if statuses else True


def _fatal_reason(pod: Any) -> str | None:
    for s in (pod.status.container_statuses or []) if pod.status else []:
        waiting = s.state.waiting if s.state else None
        if waiting is not None and waiting.reason in _FATAL_WAITING:
            return f"{waiting.reason}: {(waiting.message or '')[:200]}"
    return None
