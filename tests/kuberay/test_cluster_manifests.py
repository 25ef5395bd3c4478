"""The overlays as a platform team applies them (`kubectl apply -k cluster/overlays/<name>` after
filling values.env): the committed serveConfigV2 is current, every value reaches its fields, every
container is restricted, requests fit the documented node, the worker budget and the namespace's
NetworkPolicies select what they mean to."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.kustomize import KustomizeError, build
from cluster.render import (
    CLUSTER_DIR,
    DEFAULT_SERVE_CONFIG,
    SERVE_CONFIG_PATCH,
    render,
    serve_config_patch,
    write_serve_config_patch,
)
from tests.kuberay.manifest_walk import labels_match, pod_templates, ray_cluster_spec

ROOT = CLUSTER_DIR.parent
OVERLAYS = ["eks", "local-kind"]
RESTRICTED = {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
              "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def by_name(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


# ------------------------------------------------------------------------------ serveConfigV2
def test_committed_serve_config_v2_is_generated_from_serve_config() -> None:
    assert SERVE_CONFIG_PATCH.read_text() == serve_config_patch(), \
        "serve_apps/serve_config.yaml changed: run `make manifests` and commit the result"


def test_a_changed_serve_config_makes_the_committed_copy_stale(tmp_path: Path) -> None:
    config = yaml.safe_load(DEFAULT_SERVE_CONFIG.read_text())
    config["applications"][1]["args"]["max_replicas"] = 5
    changed = tmp_path / "serve.yaml"
    changed.write_text(yaml.safe_dump(config))
    assert serve_config_patch(changed) != SERVE_CONFIG_PATCH.read_text()
    out = tmp_path / "patch.yaml"
    assert write_serve_config_patch(changed, out) is True
    assert write_serve_config_patch(changed, out) is False
    patch = yaml.safe_load(out.read_text())
    assert yaml.safe_load(patch["spec"]["serveConfigV2"]) == config
    assert "&id" not in out.read_text()   # no YAML anchors: each deployment's options read alone


# ------------------------------------------------------------------------------ values.env
def _values(overlay: str) -> dict[str, str]:
    lines = (CLUSTER_DIR / "overlays" / overlay / "values.env").read_text().splitlines()
    return dict(ln.split("=", 1) for ln in lines if ln.strip() and not ln.startswith("#"))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_value_is_used_and_none_is_left_unreplaced(overlay: str) -> None:
    kust = yaml.safe_load((CLUSTER_DIR / "overlays" / overlay / "kustomization.yaml").read_text())
    sources = {r["source"]["fieldPath"].removeprefix("data.") for r in kust["replacements"]}
    assert sources == set(_values(overlay))
    text = yaml.safe_dump_all(build(CLUSTER_DIR / "overlays" / overlay))
    for key in _values(overlay):
        assert not re.search(rf"\b{key}\b", text), f"{key} placeholder left in the output"
    assert "incidentfox-values" not in text   # the values ConfigMap is local-config, never applied


def test_filled_eks_values_reach_their_fields(tmp_path: Path) -> None:
    for part in ("base", "sandbox", "monitoring", "overlays"):
        shutil.copytree(CLUSTER_DIR / part, tmp_path / part)
    filled = {"IMAGE": "999.dkr.ecr.eu-west-1.amazonaws.com/if:9.9", "IRSA_ROLE_ARN": "arn:aws:iam::9:role/r",
              "ALB_CERTIFICATE_ARN": "arn:aws:acm:eu-west-1:9:certificate/c", "ALB_SCHEME": "internal",
              "GCS_REDIS_ADDRESS": "rediss://gcs.example:6379", "SANDBOX_BUCKET": "my-bucket",
              "AWS_REGION": "eu-west-1", "VPC_CIDR": "172.20.0.0/16",
              "RUNBOOK_BASE_URL": "https://git.example.com/sre/incidentfox/-/blob/main"}
    assert set(filled) == set(_values("eks"))
    (tmp_path / "overlays" / "eks" / "values.env").write_text(
        "# filled\n" + "".join(f"{k}={v}\n" for k, v in filled.items()))
    objects = build(tmp_path / "overlays" / "eks")
    images = [c["image"] for _, t, _ in pod_templates(objects)
              for c in [*t["spec"]["containers"], *t["spec"].get("initContainers", [])]]
    assert len(images) == 6 and set(images) == {filled["IMAGE"]}
    sa = by_name(objects, "ServiceAccount", "incidentfox")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == filled["IRSA_ROLE_ARN"]
    ingress = by_name(objects, "Ingress", "incidentfox")["metadata"]["annotations"]
    assert ingress["alb.ingress.kubernetes.io/certificate-arn"] == filled["ALB_CERTIFICATE_ARN"]
    assert ingress["alb.ingress.kubernetes.io/scheme"] == "internal"
    rs = by_name(objects, "RayService", "incidentfox")
    assert rs["spec"]["rayClusterConfig"]["gcsFaultToleranceOptions"]["redisAddress"] == filled["GCS_REDIS_ADDRESS"]
    data = by_name(objects, "ConfigMap", "incidentfox-sandbox")["data"]
    assert (data["INCIDENTFOX_OBJECT_STORE_BUCKET"], data["INCIDENTFOX_OBJECT_STORE_REGION"]) == \
        ("my-bucket", "eu-west-1")
    serve_in = by_name(objects, "NetworkPolicy", "incidentfox-serve-ingress")["spec"]["ingress"]
    assert serve_in == [{"from": [{"ipBlock": {"cidr": "172.20.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 8000}]}]
    data_out = by_name(objects, "NetworkPolicy", "incidentfox-data-egress")["spec"]["egress"]
    assert data_out[0]["to"] == [{"ipBlock": {"cidr": "172.20.0.0/16"}}]
    rules = by_name(objects, "PrometheusRule", "incidentfox-alerts")["spec"]["groups"]
    urls = [r["annotations"]["runbook_url"] for g in rules for r in g["rules"]]
    assert urls and all(u.startswith(filled["RUNBOOK_BASE_URL"] + "/docs/operations.md#") for u in urls)


def test_kustomize_subset_generators_and_replacements(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\n"
                                      "data: {url: 'https://old.example/docs/x.md#a'}\n")
    kust = {"resources": ["cm.yaml"],
            "configMapGenerator": [{"name": "v", "literals": ["BASE=https://new.example"],
                                    "options": {"disableNameSuffixHash": True,
                                                "annotations": {"config.kubernetes.io/local-config": "true"}}}],
            "replacements": [{"source": {"kind": "ConfigMap", "name": "v", "fieldPath": "data.BASE"},
                              "targets": [{"select": {"kind": "ConfigMap", "name": "t"},
                                           "options": {"delimiter": "/docs/", "index": 0},
                                           "fieldPaths": ["data.url"]}]}]}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kust))
    (out,) = build(tmp_path)
    assert out["data"]["url"] == "https://new.example/docs/x.md#a"
    kust["replacements"][0]["targets"][0]["fieldPaths"] = ["data.missing"]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kust))
    with pytest.raises(KustomizeError, match="data.missing not found"):
        build(tmp_path)
    kust["configMapGenerator"][0]["options"] = {}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kust))
    with pytest.raises(KustomizeError, match="disableNameSuffixHash"):
        build(tmp_path)


# ------------------------------------------------------------------------------ security context
def _containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    spec = template["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_restricted(overlay: str) -> None:
    objects = render(overlay=overlay)
    checked = 0
    for where, template, owner in pod_templates(objects):
        pod_sc = template["spec"].get("securityContext") or {}
        assert pod_sc.get("runAsNonRoot") is True, where
        assert pod_sc.get("seccompProfile") == {"type": "RuntimeDefault"}, where
        for c in _containers(template):
            sc = c.get("securityContext") or {}
            assert {k: sc.get(k) for k in RESTRICTED} == RESTRICTED, f"{where}/{c['name']}"
            assert not sc.get("privileged") and not (sc.get("capabilities") or {}).get("add")
            checked += 1
        if owner["kind"] in ("RayService", "RayCronJob") and where.endswith("head"):
            auto = ray_cluster_spec(owner)["autoscalerOptions"]   # the sidecar KubeRay adds
            assert {k: auto["securityContext"].get(k) for k in RESTRICTED} == RESTRICTED, where
    assert checked >= 6


def test_the_image_runs_as_the_user_the_manifests_name() -> None:
    users = re.findall(r"^USER\s+(\S+)", (CLUSTER_DIR / "Dockerfile").read_text(), re.MULTILINE)
    assert users, "cluster/Dockerfile must end with a numeric USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or int(gid) != 0)
    for _, template, owner in pod_templates(render(overlay="eks")):
        for c in _containers(template):
            assert c["securityContext"]["runAsUser"] == int(uid), c["name"]


# ------------------------------------------------------------------------------ node sizes
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


def cpu_m(q: str) -> int:
    return int(q[:-1]) if str(q).endswith("m") else int(float(q) * 1000)


def mem_b(q: str) -> int:
    q = str(q)
    for suffix, factor in _UNITS.items():
        if q.endswith(suffix):
            return int(float(q[: -len(suffix)]) * factor)
    return int(q)


def documented_node() -> dict[str, str]:
    """The node-size row of docs/operations.md ("Node sizes")."""
    text = (ROOT / "docs" / "operations.md").read_text()
    m = re.search(r"^\|\s*`(?P<type>[a-z0-9.]+)`\s*\|\s*(?P<cpu>\d+m)\s*\|\s*(?P<mem>\d+Gi)\s*\|"
                  r"\s*(?P<ds_cpu>\d+m)\s*\|\s*(?P<ds_mem>\d+Mi)\s*\|", text, re.MULTILINE)
    assert m, "docs/operations.md lacks the node-size table"
    return m.groupdict()


def pod_requests(template: dict[str, Any], sidecars: list[dict[str, Any]]) -> tuple[int, int]:
    """The scheduler's view: max(any init container, sum of containers) plus sidecars."""
    spec = template["spec"]

    def req(c: dict[str, Any]) -> tuple[int, int]:
        r = (c.get("resources") or {}).get("requests") or {}
        return cpu_m(r.get("cpu", "0")), mem_b(r.get("memory", "0"))

    main = [req(c) for c in [*spec["containers"], *sidecars]]
    init = [req(c) for c in spec.get("initContainers", [])]
    cpu = max([sum(c for c, _ in main), *(c for c, _ in init)])
    mem = max([sum(m for _, m in main), *(m for _, m in init)])
    return cpu, mem


def test_eks_requests_fit_the_documented_node_less_daemonsets() -> None:
    node = documented_node()
    assert node["type"] in (ROOT / "docs" / "deploy-eks.md").read_text()
    budget_cpu = cpu_m(node["cpu"]) - cpu_m(node["ds_cpu"])
    budget_mem = mem_b(node["mem"]) - mem_b(node["ds_mem"])
    for where, template, owner in pod_templates(render(overlay="eks")):
        sidecars = []
        if owner["kind"] in ("RayService", "RayCronJob") and where.endswith("head"):
            sidecars = [ray_cluster_spec(owner)["autoscalerOptions"]]
        cpu, mem = pod_requests(template, sidecars)
        assert cpu <= budget_cpu, f"{where}: requests {cpu}m CPU, a node leaves {budget_cpu}m"
        assert mem <= budget_mem, f"{where}: requests {mem / 2**30:.1f} GiB, a node leaves {budget_mem / 2**30:.1f}"
        for c in [*_containers(template), *sidecars]:
            r = c["resources"]
            assert cpu_m(r["requests"]["cpu"]) <= cpu_m(r["limits"]["cpu"]), f"{where}/{c.get('name')}"
            assert mem_b(r["requests"]["memory"]) <= mem_b(r["limits"]["memory"])


def test_the_fit_check_catches_the_old_four_cpu_workers() -> None:
    node = documented_node()
    template = {"spec": {"containers": [{"resources": {"requests": {"cpu": "4", "memory": "8Gi"}}}]}}
    assert pod_requests(template, [])[0] > cpu_m(node["cpu"]) - cpu_m(node["ds_cpu"])


# ------------------------------------------------------------------------------ PDB
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_worker_budget_covers_service_workers_only(overlay: str) -> None:
    objects = render(overlay=overlay)
    pdbs = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    assert [p["metadata"]["name"] for p in pdbs] == ["incidentfox-ray-workers"]
    (pdb,) = pdbs
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    matched = [where for where, t, _ in pod_templates(objects)
               if labels_match(pdb["spec"]["selector"], t.get("metadata", {}).get("labels", {}))]
    assert matched == ["RayService/incidentfox shared"]


# ------------------------------------------------------------------------------ NetworkPolicies
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_of_the_platform_namespace(overlay: str) -> None:
    objects = render(overlay=overlay)
    policies = {o["metadata"]["name"]: o["spec"] for o in objects
                if o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] == "incidentfox"}
    deny = policies["incidentfox-default-deny"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    templates = {where: t.get("metadata", {}).get("labels", {}) for where, t, _ in pod_templates(objects)}
    for name, spec in policies.items():   # no policy selects nothing
        assert any(labels_match(spec["podSelector"], labels) for labels in templates.values()), name
    serve = policies["incidentfox-serve-ingress"]
    assert [p["port"] for rule in serve["ingress"] for p in rule["ports"]] == [8000]
    internet = policies["incidentfox-internet-egress"]["egress"][0]
    assert internet["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}]
    # Everything reaches DNS; Ray pods reach each other on every port.
    dns = policies["incidentfox-dns-and-job-api"]
    assert dns["podSelector"] == {} and {p["port"] for p in dns["egress"][0]["ports"]} == {53}
    internal = policies["incidentfox-ray-internal"]
    assert "ports" not in internal["ingress"][0] and "ports" not in internal["egress"][0]
    ray_pods = [w for w, labels in templates.items() if labels_match(internal["podSelector"], labels)]
    assert sorted(ray_pods) == sorted(w for w in templates if "submitter" not in w and "postgres" not in w)
    if overlay == "local-kind":
        to = policies["incidentfox-data-egress"]["egress"][0]["to"]
        assert to == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "incidentfox-postgres"}}}]
        assert "incidentfox-postgres" in policies
