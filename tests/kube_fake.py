"""A local HTTP server speaking the part of the Kubernetes API the sandbox's pod backend uses.

* ``POST /api/v1/namespaces/{ns}/pods``: stores the pod (409 when present), phase ``Pending``; the
  next read shows it ``Running`` and ready (or, with ``fail_image``, waiting in ``ErrImagePull``).
* ``GET`` / ``DELETE /api/v1/namespaces/{ns}/pods/{name}`` (404 when absent); a delete kills what
  runs "in" the pod.
* ``GET …/pods/{name}/exec`` upgraded to a websocket, subprotocol ``v4.channel.k8s.io``: channel 0
  stdin, 1 stdout, 2 stderr, 3 the final ``Status`` (``NonZeroExitCode`` with an ``ExitCode``
  cause), like the kubelet. The command runs as a local process in the pod's folder, ``/workspace``
  in its arguments standing for that folder. As in a real pod, a command keeps running when the
  client goes away; ``kill -KILL -1`` (the backend's cleanup) kills every process of that pod only,
  which is what a pod's own PID namespace gives.

``forbid`` makes every call 403 (RBAC missing). Requests are logged for assertions.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from aiohttp import WSMsgType, web

from actors.sandbox.backends.pod import KILL_ALL


@dataclass
class FakePod:
    body: dict[str, Any]
    folder: Path
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    reads: int = 0
    procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def alive(self) -> list[int]:
        """Live (non-zombie) processes started in this pod, their children included."""
        groups = {proc.pid for proc in self.procs}
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) in groups:
                out.append(int(entry))
        return out


def _status(code: int, reason: str, message: str = "") -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                              "reason": reason, "message": message}, status=code)


class FakeKubeApi:
    def __init__(self) -> None:
        self.pods: dict[str, FakePod] = {}
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.execs: list[list[str]] = []
        self.forbid = False
        self.fail_image = False
        self.base = Path(tempfile.mkdtemp(prefix="ifx-fake-kube-"))
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            for pod in self.pods.values():
                pod.kill_all()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        shutil.rmtree(self.base, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        pods = "/api/v1/namespaces/{ns}/pods"
        app.router.add_post(pods, self._create)
        app.router.add_get(pods + "/{name}", self._read)
        app.router.add_delete(pods + "/{name}", self._delete)
        app.router.add_get(pods + "/{name}/exec", self._exec)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    # -- pods ----------------------------------------------------------------------------------------

    def _view(self, pod: FakePod) -> dict[str, Any]:
        meta = dict(pod.body["metadata"], uid=pod.uid, creationTimestamp="2026-03-01T12:00:00Z")
        container = pod.body["spec"]["containers"][0]
        if pod.reads == 0:
            status: dict[str, Any] = {"phase": "Pending"}
        elif self.fail_image:
            status = {"phase": "Pending", "containerStatuses": [{
                "name": container["name"], "ready": False, "restartCount": 0, "image": container["image"],
                "imageID": "", "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}]}
        else:
            status = {"phase": "Running", "containerStatuses": [{
                "name": container["name"], "ready": True, "restartCount": 0, "image": container["image"],
                "imageID": "sha256:0", "state": {"running": {"startedAt": "2026-03-01T12:00:01Z"}}}]}
        return {**pod.body, "metadata": meta, "status": status}

    async def _create(self, request: web.Request) -> web.Response:
        if self.forbid:
            return _status(403, "Forbidden", "pods is forbidden")
        body = await request.json()
        self.created.append(body)
        name = body["metadata"]["name"]
        if name in self.pods:
            return _status(409, "AlreadyExists", f'pods "{name}" already exists')
        folder = self.base / name
        folder.mkdir()
        os.chmod(folder, 0o777)
        self.pods[name] = FakePod(body=body, folder=folder)
        return web.json_response(self._view(self.pods[name]), status=201)

    async def _read(self, request: web.Request) -> web.Response:
        if self.forbid:
            return _status(403, "Forbidden", "pods is forbidden")
        pod = self.pods.get(request.match_info["name"])
        if pod is None:
            return _status(404, "NotFound", "pod not found")
        view = self._view(pod)
        pod.reads += 1
        return web.json_response(view)

    async def _delete(self, request: web.Request) -> web.Response:
        if self.forbid:
            return _status(403, "Forbidden", "pods is forbidden")
        name = request.match_info["name"]
        self.deleted.append(name)
        pod = self.pods.pop(name, None)
        if pod is None:
            return _status(404, "NotFound", "pod not found")
        pod.kill_all()
        shutil.rmtree(pod.folder, ignore_errors=True)
        return web.json_response(self._view(pod))

    # -- exec ----------------------------------------------------------------------------------------

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        pod = self.pods.get(request.match_info["name"])
        if self.forbid:
            return _status(403, "Forbidden", "pods/exec is forbidden")
        if pod is None:
            return _status(404, "NotFound", "pod not found")
        argv = request.query.getall("command")
        self.execs.append(argv)
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        if argv == KILL_ALL:
            pod.kill_all()
            await ws.send_bytes(b"\x03" + json.dumps({"status": "Success"}).encode())
            await ws.close()
            return ws
        local = [a.replace("/workspace", str(pod.folder)) for a in argv]
        want_stdin = request.query.get("stdin") == "true"
        proc = await asyncio.create_subprocess_exec(
            *local, stdin=asyncio.subprocess.PIPE if want_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=pod.folder,
            start_new_session=True)
        pod.procs.append(proc)

        async def pump(stream: asyncio.StreamReader, channel: int) -> None:
            while chunk := await stream.read(65536):
                if ws.closed:
                    continue  # the client left; the command goes on, its output is dropped
                await ws.send_bytes(bytes([channel]) + chunk)

        async def feed() -> None:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY and msg.data[:1] == b"\x00" and proc.stdin is not None:
                    proc.stdin.write(msg.data[1:])
                    await proc.stdin.drain()

        feeder = asyncio.ensure_future(feed())
        assert proc.stdout is not None and proc.stderr is not None
        await asyncio.gather(pump(proc.stdout, 1), pump(proc.stderr, 2))
        code = await proc.wait()
        if not ws.closed:
            status = ({"status": "Success"} if code == 0 else
                      {"status": "Failure", "reason": "NonZeroExitCode",
                       "details": {"causes": [{"reason": "ExitCode", "message": str(code if code >= 0 else 128 - code)}]}})
            await ws.send_bytes(b"\x03" + json.dumps(status).encode())
            await ws.close()
        feeder.cancel()
        return ws
