"""One command in a pod through the Kubernetes exec API (blocking; callers run it in a thread).

Why the exec API and not an agent in the pod: nothing in the sandbox listens (the NetworkPolicy
denies all ingress), the API server authenticates and authorises every command (``pods/exec`` in
the sandbox namespace only, cluster/sandbox/role.yaml), and the pod runs a stock image with no
IncidentFox code in it. The cost is that the API server and kubelet carry the bytes, which is why
output is capped and workspaces are synced as compressed tars.

The ``kubernetes`` client's websocket (``kubernetes.stream``) speaks ``v5``/``v4.channel.k8s.io``:
channel 0 stdin, 1 stdout, 2 stderr, 3 the exit status. ``v4`` cannot close stdin, so input is
length-prefixed by the caller (``head -c N``), never waited on for EOF.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import yaml

from actors.sandbox.backends.pod_spec import CONTAINER

STDIN_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExecOutcome:
    exit_code: int | None       # None: stopped by us, or no status received
    output: bytes               # stdout then stderr chunks in arrival order, first ``keep`` bytes
    total: int                  # bytes received
    stopped: str | None         # "timeout" | "output_limit" | "cancelled"


def _exit_code(ws: Any) -> int | None:
    try:
        raw = ws.read_channel(3)
        status = yaml.safe_load(raw) if raw else None
    except (yaml.YAMLError, ValueError):
        return None
    if not isinstance(status, dict):
        return None
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                return None
    return None


def exec_in_pod(core: Any, *, namespace: str, pod: str, argv: list[str], stdin: bytes | None = None,
                deadline: float, keep: int, hard: int, cancel: threading.Event,
                connect_timeout_s: float = 30.0) -> ExecOutcome:
    """Run ``argv`` in the pod's sandbox container until it exits, ``deadline`` (monotonic) passes,
    more than ``hard`` bytes come out, or ``cancel`` is set; the connection is always closed."""
    from kubernetes.stream import stream

    ws = stream(core.connect_get_namespaced_pod_exec, pod, namespace, command=argv, container=CONTAINER,
                stdin=stdin is not None, stdout=True, stderr=True, tty=False, binary=True,
                _preload_content=False, _request_timeout=connect_timeout_s)
    buf = bytearray()
    total = 0
    stopped: str | None = None
    try:
        if stdin is not None:
            for i in range(0, len(stdin), STDIN_CHUNK):
                ws.write_stdin(stdin[i:i + STDIN_CHUNK])
        while True:
            ws.update(timeout=0.2)
            for channel in (1, 2):
                chunk = ws.read_channel(channel)
                if chunk:
                    total += len(chunk)
                    if len(buf) < keep:
                        buf.extend(chunk[: keep - len(buf)])
            if total > hard:
                stopped = "output_limit"
            elif cancel.is_set():
                stopped = "cancelled"
            elif time.monotonic() > deadline:
                stopped = "timeout"
            if stopped or not ws.is_open():
                break
        code = None if stopped else _exit_code(ws)
    finally:
        ws.close()
    return ExecOutcome(exit_code=code, output=bytes(buf), total=total, stopped=stopped)
