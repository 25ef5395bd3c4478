"""The pod backend against a local server speaking the Kubernetes API (tests/kube_fake.py): the pod
spec it sends (service account, no token, restricted security context, runtime class, limits,
labels), commands through the exec websocket with the workspace synced both ways, timeouts that
leave nothing running, pods deleted with the session (DELETE and TTL), adoption by a new host, and
clear refusals (image pull failure, RBAC). No bubblewrap needed."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from actors.sandbox.backends.pod import PodBackend, pod_status
from actors.sandbox.backends.pod_spec import PodConfig, label_value, pod_name, session_pod
from actors.sandbox.client import LocalSandboxBackend
from actors.sandbox.config import SandboxLimits, SandboxRuntime
from actors.sandbox.store import SandboxStore
from actors.sandbox.testing import Reply, ScriptedAnthropicServer, Text, ToolUse
from cluster.validate import KUBERNETES_VERSION
from tests.kube_fake import FakeKubeApi

NS = "incidentfox-sandbox"


@pytest.fixture
def kube() -> Iterator[FakeKubeApi]:
    with FakeKubeApi() as api:
        yield api


def runtime(db: str, root: Path, api: FakeKubeApi, **pod: Any) -> SandboxRuntime:
    cfg = PodConfig(api_host=api.url, namespace=NS, runtime_class=pod.pop("runtime_class", "gvisor"),
                    cpu="500m", memory="1Gi", ephemeral_storage="2Gi", start_timeout_s=20, **pod)
    return SandboxRuntime(root=root, db_url=db, uid_base=390_000, uid_count=5_000, sweep_interval_s=3600,
                          backend="pod", pod=cfg, limits=SandboxLimits(default_timeout_s=20))


def llm(server: ScriptedAnthropicServer) -> dict[str, Any]:
    return {"provider": "anthropic", "model": "claude-test", "base_url": server.url, "api_key": "sk-test"}


async def collect(agen: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [ev async for ev in agen]


async def until(condition: Any, timeout_s: float = 10.0) -> None:
    """Wait for ``condition()`` (SIGKILLed processes die asynchronously), failing after ``timeout_s``."""
    import asyncio

    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


def ends(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "tool_end"]


# -- the manifest ------------------------------------------------------------------------------------


def test_pod_spec_is_restricted_and_valid() -> None:
    cfg = PodConfig(runtime_class="gvisor", cpu="500m", memory="1Gi", ephemeral_storage="2Gi")
    pod = session_pod(cfg, session_id="sbx_0a1b", org_id="acme", team_id="sre team/1", uid=201_234, network=False)
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "incidentfox-sandbox-session"
    assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False
    assert spec["runtimeClassName"] == "gvisor"
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 201_234, "runAsGroup": 201_234,
                                       "fsGroup": 201_234, "seccompProfile": {"type": "RuntimeDefault"}}
    (c,) = spec["containers"]
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "privileged": False,
                                    "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    limits = {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "2Gi"}
    assert c["resources"] == {"requests": limits, "limits": limits}
    assert not any("hostPath" in v for v in spec["volumes"])
    labels = pod["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "sandbox-session"
    assert labels["incidentfox.ai/sandbox-network"] == "none"
    assert labels["incidentfox.ai/org"] == "acme" and labels["incidentfox.ai/team"] == label_value("sre team/1")
    assert pod["metadata"]["name"] == pod_name("sbx_0a1b") == "ifx-sbx-0a1b"
    no_rc = session_pod(PodConfig(), session_id="sbx_1", org_id="o", team_id="t", uid=1000, network=True)
    assert "runtimeClassName" not in no_rc["spec"]
    assert no_rc["metadata"]["labels"]["incidentfox.ai/sandbox-network"] == "team"


@pytest.mark.parametrize("value", ["acme", "a" * 80, "Ünïcode team", "-x-", ""])
def test_label_values_are_always_valid(value: str) -> None:
    out = label_value(value)
    assert len(out) <= 63
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "x", "labels": {"k": out}}}, KUBERNETES_VERSION, strict=True)


# -- sessions on the fake API server -----------------------------------------------------------------


async def test_session_commands_run_in_their_pod(sqlite_url: str, root: Path, kube: FakeKubeApi) -> None:
    b = LocalSandboxBackend(runtime(sqlite_url, root, kube))
    with ScriptedAnthropicServer() as server:
        server.add(Reply([ToolUse("Write", {"file_path": "in.txt", "content": "hello from the host\n"})]),
                   Reply([ToolUse("Bash", {"command": "cat in.txt; echo made > out.txt; chmod 640 out.txt; "
                                                      "ln -s out.txt link; mkdir -p d/e; exit 3"})]),
                   Reply([ToolUse("Read", {"file_path": "out.txt"})]),
                   Reply([ToolUse("Bash", {"command": "sleep 30 & echo started; sleep 60", "timeout": 3000})]),
                   Reply([Text("done")]))
        created = await b.create_session(org_id="acme", team_id="sre")
        sid = created["session_id"]
        events = await collect(b.send_message(sid, text="go", llm=llm(server)))
    assert events[-1]["type"] == "result"
    _write, bash, read, slow = ends(events)
    assert bash["output"] == "hello from the host\n[exit code 3]" and bash["is_error"]
    assert read["output"] == "     1\tmade"                      # the pod's files came back to the host
    assert "started" in slow["output"] and "timed out" in slow["output"]

    ws = root / sid
    assert stat.S_IMODE(os.stat(ws / "out.txt").st_mode) == 0o640 and os.readlink(ws / "link") == "out.txt"
    assert (ws / "d" / "e").is_dir()
    row = await SandboxStore(sqlite_url).get_session(session_id=sid)

    (body,) = kube.created                                        # one pod for the whole session
    assert body["metadata"]["name"] == pod_name(sid) and body["metadata"]["namespace"] == NS
    assert body["spec"]["serviceAccountName"] == "incidentfox-sandbox-session"
    assert body["spec"]["automountServiceAccountToken"] is False
    assert body["spec"]["runtimeClassName"] == "gvisor"
    assert body["spec"]["securityContext"]["runAsUser"] == row.uid
    assert body["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi",
                                                                     "ephemeral-storage": "2Gi"}
    assert body["metadata"]["labels"]["incidentfox.ai/sandbox-session"] == sid
    kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
    pod = kube.pods[pod_name(sid)]
    await until(lambda: pod.alive() == [])                        # the background `sleep 30` was killed
    assert kube.execs.count(["/bin/sh", "-c", "kill -KILL -1 2>/dev/null; true"]) == 2

    assert await b.delete_session(sid)
    assert pod_name(sid) in kube.deleted and pod_name(sid) not in kube.pods


async def test_ttl_expiry_deletes_the_pod_and_a_new_host_adopts_it(sqlite_url: str, root: Path,
                                                                    kube: FakeKubeApi) -> None:
    rt = runtime(sqlite_url, root, kube)
    b = LocalSandboxBackend(rt)
    with ScriptedAnthropicServer() as server:
        server.add(Reply([ToolUse("Bash", {"command": "echo one > one.txt"})]), Reply([Text("ok")]),
                   Reply([ToolUse("Bash", {"command": "cat one.txt"})]), Reply([Text("ok")]))
        sid = (await b.create_session(org_id="acme", team_id="sre"))["session_id"]
        await collect(b.send_message(sid, text="1", llm=llm(server)))
        # The host is gone: a fresh backend (another host) takes the session and adopts its pod.
        b2 = LocalSandboxBackend(rt)
        events = await collect(b2.send_message(sid, text="2", llm=llm(server)))
    assert ends(events)[0]["output"] == "one"
    assert len(kube.pods) == 1 and [c["metadata"]["name"] for c in kube.created] == [pod_name(sid)]  # adopted
    pushes = [argv for argv in kube.execs if "head -c" in argv[-1]]
    assert len(pushes) == 2  # each host pushed its copy once into the pod it found
    row = await SandboxStore(sqlite_url).get_session(session_id=sid)
    assert await b2.manager.sweep(now=row.expires_at + timedelta(seconds=1)) == [sid]
    assert kube.pods == {} and pod_name(sid) in kube.deleted


async def test_a_pod_that_cannot_start_is_reported_and_removed(sqlite_url: str, root: Path,
                                                                kube: FakeKubeApi) -> None:
    kube.fail_image = True
    b = LocalSandboxBackend(runtime(sqlite_url, root, kube))
    with ScriptedAnthropicServer() as server:
        server.add(Reply([ToolUse("Bash", {"command": "true"})]), Reply([Text("ok")]))
        sid = (await b.create_session(org_id="acme", team_id="sre"))["session_id"]
        events = await collect(b.send_message(sid, text="go", llm=llm(server)))
    (bash,) = ends(events)
    assert bash["is_error"] and "ErrImagePull" in bash["output"]
    assert pod_name(sid) in kube.deleted and kube.pods == {}


async def test_missing_rbac_is_said_plainly(sqlite_url: str, root: Path, kube: FakeKubeApi) -> None:
    kube.forbid = True
    b = LocalSandboxBackend(runtime(sqlite_url, root, kube))
    with ScriptedAnthropicServer() as server:
        server.add(Reply([ToolUse("Bash", {"command": "true"})]), Reply([Text("ok")]))
        sid = (await b.create_session(org_id="acme", team_id="sre"))["session_id"]
        events = await collect(b.send_message(sid, text="go", llm=llm(server)))
    (bash,) = ends(events)
    assert bash["is_error"] and "RBAC" in bash["output"] and NS in bash["output"]


def test_status_says_where_commands_run(kube: FakeKubeApi) -> None:
    status = pod_status(PodConfig(api_host=kube.url, runtime_class="gvisor"))
    assert status.mode == "pod" and status.available and "gvisor" in status.reason
    assert PodBackend.name == "pod"
