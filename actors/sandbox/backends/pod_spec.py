"""The pod a session's commands run in (pure: config in, manifest out).

The spec meets the Pod Security Standards' *restricted* profile (the sandbox namespace enforces it,
cluster/sandbox/namespace.yaml): non-root (the session's own UID), no privilege escalation, every
capability dropped, seccomp ``RuntimeDefault``, a read-only root filesystem with two ``emptyDir``
volumes (``/workspace``, ``/tmp``). Its service account has no permissions and no token is mounted;
service links are off. ``runtimeClassName`` (e.g. ``gvisor``) is set when configured, omitted
otherwise. Labels let the sandbox NetworkPolicies select the pod: every session pod is denied all
egress but DNS; ``incidentfox.ai/sandbox-network: team`` plus the org/team labels is what a team's
own allowance policy selects (docs/sandbox.md, "Network").
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

WORKSPACE_MOUNT = "/workspace"
CONTAINER = "sandbox"
SESSION_LABEL = "incidentfox.ai/sandbox-session"
NETWORK_LABEL = "incidentfox.ai/sandbox-network"
ORG_LABEL, TEAM_LABEL = "incidentfox.ai/org", "incidentfox.ai/team"
COMPONENT = "sandbox-session"
_LABEL_OK = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


class PodConfig(BaseModel):
    """Platform settings for session pods (``INCIDENTFOX_SANDBOX_*``); picklable."""

    model_config = ConfigDict(frozen=True)
    namespace: str = "incidentfox-sandbox"
    image: str = "debian:bookworm-slim"
    service_account: str = "incidentfox-sandbox-session"
    runtime_class: str = ""
    cpu: str = "1"
    memory: str = "2Gi"
    ephemeral_storage: str = "4Gi"
    tmp_size: str = "64Mi"
    start_timeout_s: float = 120.0
    max_lifetime_s: int = 8 * 24 * 3600     # activeDeadlineSeconds: a leaked pod dies anyway
    api_host: str | None = None             # tests: a local API server; else in-cluster/kubeconfig
    request_timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any) -> PodConfig:
        return cls(namespace=settings.sandbox_namespace, image=settings.sandbox_pod_image,
                   service_account=settings.sandbox_pod_service_account,
                   runtime_class=settings.sandbox_runtime_class, cpu=settings.sandbox_pod_cpu,
                   memory=settings.sandbox_pod_memory, ephemeral_storage=settings.sandbox_pod_ephemeral_storage,
                   start_timeout_s=settings.sandbox_pod_start_timeout_s)


def label_value(value: str) -> str:
    """``value`` as a valid label value; anything else becomes a readable prefix plus a hash."""
    if _LABEL_OK.match(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    clean = re.sub(r"[^A-Za-z0-9_.-]", "-", value).strip("-_.")[:40].rstrip("-_.")
    return f"{clean}-{digest}" if clean else f"h-{digest}"


def pod_name(session_id: str) -> str:
    """A DNS-1123 name for the session's pod (session ids are ``sbx_<hex>``)."""
    clean = re.sub(r"[^a-z0-9-]", "-", session_id.lower()).strip("-")
    return f"ifx-{clean}"[:63].rstrip("-")


def session_labels(*, session_id: str, org_id: str, team_id: str, network: bool) -> dict[str, str]:
    return {"app.kubernetes.io/part-of": "incidentfox", "app.kubernetes.io/component": COMPONENT,
            SESSION_LABEL: label_value(session_id), ORG_LABEL: label_value(org_id),
            TEAM_LABEL: label_value(team_id), NETWORK_LABEL: "team" if network else "none"}


def session_pod(cfg: PodConfig, *, session_id: str, org_id: str, team_id: str, uid: int,
                network: bool) -> dict[str, Any]:
    """The Pod manifest for one session."""
    resources = {"cpu": cfg.cpu, "memory": cfg.memory, "ephemeral-storage": cfg.ephemeral_storage}
    spec: dict[str, Any] = {
        "serviceAccountName": cfg.service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 0,
        "activeDeadlineSeconds": cfg.max_lifetime_s,
        "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": CONTAINER,
            "image": cfg.image,
            # PID 1 only waits (and reaps what commands orphan); commands arrive through the exec
            # API, one at a time.
            "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"],
            "workingDir": WORKSPACE_MOUNT,
            "env": [{"name": "HOME", "value": WORKSPACE_MOUNT}, {"name": "LANG", "value": "C.UTF-8"},
                    {"name": "TMPDIR", "value": "/tmp"}],
            "securityContext": {"allowPrivilegeEscalation": False, "privileged": False,
                                "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "resources": {"requests": dict(resources), "limits": dict(resources)},
            "volumeMounts": [{"name": "workspace", "mountPath": WORKSPACE_MOUNT},
                             {"name": "tmp", "mountPath": "/tmp"}],
        }],
        "volumes": [{"name": "workspace", "emptyDir": {"sizeLimit": cfg.ephemeral_storage}},
                    {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": cfg.tmp_size}}],
    }
    if cfg.runtime_class:
        spec["runtimeClassName"] = cfg.runtime_class
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name(session_id), "namespace": cfg.namespace,
                         "labels": session_labels(session_id=session_id, org_id=org_id, team_id=team_id,
                                                  network=network),
                         "annotations": {"incidentfox.ai/session-id": session_id}},
            "spec": spec}
