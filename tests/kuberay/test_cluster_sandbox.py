"""The sandbox's manifests in `incidentfox cluster render`: the namespace (Pod Security "restricted"
enforced), the session pods' token-less service account, the sandbox actors' RBAC (pods and
pods/exec in the sandbox namespace, nothing else), the default-deny NetworkPolicy (DNS only), the
runtime class reference, and the settings the Ray pods read. All validate against the Kubernetes
schemas; the pod the backend would create from those settings validates too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from actors.sandbox.backends.pod_spec import PodConfig, session_labels, session_pod
from cluster.render import CLUSTER_DIR, render, write
from cluster.validate import KUBERNETES_VERSION, validate_objects
from incidentfox.settings import Settings

OVERLAYS = ["eks", "local-kind"]
SANDBOX_NS = "incidentfox-sandbox"


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def settings_from(objects: list[dict[str, Any]]) -> Settings:
    """The Settings a Ray pod gets from the rendered ConfigMap (its env)."""
    data = find(objects, "ConfigMap", "incidentfox-sandbox")["data"]
    return Settings(**{k.removeprefix("INCIDENTFOX_").lower(): v for k, v in data.items() if v != ""})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sandbox_objects_render_and_validate(overlay: str) -> None:
    objects = render(overlay=overlay)
    assert validate_objects(objects) == []
    ns = find(objects, "Namespace", SANDBOX_NS)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    sa = find(objects, "ServiceAccount", "incidentfox-sandbox-session")
    assert sa["metadata"]["namespace"] == SANDBOX_NS and sa["automountServiceAccountToken"] is False
    # The session account is bound to nothing.
    bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert all(s["name"] != "incidentfox-sandbox-session" for b in bindings for s in b["subjects"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sandbox_actors_may_manage_pods_in_the_sandbox_namespace_only(overlay: str) -> None:
    objects = render(overlay=overlay)
    role = find(objects, "Role", "incidentfox-sandbox-controller")
    assert role["metadata"]["namespace"] == SANDBOX_NS
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "delete"]},
                             {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]}]
    binding = find(objects, "RoleBinding", "incidentfox-sandbox-controller")
    assert binding["metadata"]["namespace"] == SANDBOX_NS
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "incidentfox-sandbox-controller"}
    # The subject is the account the Ray pods (where the sandbox actors run) use.
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "incidentfox", "namespace": "incidentfox"}]
    rs = find(objects, "RayService", "incidentfox")["spec"]["rayClusterConfig"]
    accounts = {g["template"]["spec"]["serviceAccountName"] for g in [rs["headGroupSpec"], *rs["workerGroupSpecs"]]}
    assert accounts == {"incidentfox"}
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_denies_everything_but_dns(overlay: str) -> None:
    objects = render(overlay=overlay)
    policy = find(objects, "NetworkPolicy", "sandbox-sessions-default-deny")
    spec = policy["spec"]
    pod = session_pod(PodConfig(), session_id="sbx_1", org_id="acme", team_id="sre", uid=200_001, network=False)
    assert spec["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert spec["policyTypes"] == ["Ingress", "Egress"] and spec["ingress"] == []
    (rule,) = spec["egress"]
    assert sorted((p["protocol"], p["port"]) for p in rule["ports"]) == [("TCP", 53), ("UDP", 53)]
    assert rule["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                           "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]


def test_team_egress_example_selects_that_teams_networked_sessions() -> None:
    (example,) = list(yaml.safe_load_all((CLUSTER_DIR / "sandbox" / "examples" / "team-egress.yaml").read_text()))
    assert validate_objects([example]) == []
    selector = example["spec"]["podSelector"]["matchLabels"]
    on = session_labels(session_id="sbx_1", org_id="acme", team_id="sre", network=True)
    off = session_labels(session_id="sbx_1", org_id="acme", team_id="sre", network=False)
    other = session_labels(session_id="sbx_1", org_id="acme", team_id="web", network=True)
    assert selector.items() <= on.items()
    assert not selector.items() <= off.items() and not selector.items() <= other.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ray_pods_run_the_pod_backend_with_the_rendered_names(overlay: str) -> None:
    objects = render(overlay=overlay)
    rs = find(objects, "RayService", "incidentfox")["spec"]["rayClusterConfig"]
    for group in [rs["headGroupSpec"], *rs["workerGroupSpecs"]]:
        for c in group["template"]["spec"]["containers"]:
            assert {"configMapRef": {"name": "incidentfox-sandbox"}} in c["envFrom"]
    settings = settings_from(objects)
    cfg = PodConfig.from_settings(settings)
    assert settings.sandbox_backend == "pod" and cfg.namespace == SANDBOX_NS
    assert cfg.service_account == "incidentfox-sandbox-session"
    runtime_classes = {o["metadata"]["name"] for o in objects if o["kind"] == "RuntimeClass"}
    if overlay == "eks":
        assert cfg.runtime_class == "gvisor" and runtime_classes == {"gvisor"}
        assert settings.object_store == "s3" and settings.object_store_bucket
    else:
        assert cfg.runtime_class == "" and runtime_classes == set()
    pod = session_pod(cfg, session_id="sbx_0123", org_id="acme", team_id="sre", uid=200_123, network=False)
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    assert pod["spec"].get("runtimeClassName", "") == cfg.runtime_class
    assert pod["metadata"]["namespace"] == SANDBOX_NS


def test_written_output_lists_the_sandbox_objects(tmp_path: Path) -> None:
    paths = write(render(overlay="eks"), tmp_path / "out")
    names = {p.name for p in paths}
    assert {"namespace-incidentfox-sandbox.yaml", "role-incidentfox-sandbox-controller.yaml",
            "networkpolicy-sandbox-sessions-default-deny.yaml", "runtimeclass-gvisor.yaml"} <= names
