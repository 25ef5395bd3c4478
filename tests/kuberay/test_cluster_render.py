"""Rendered KubeRay manifests: valid offline, built from the one Serve config, safe by construction."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from cluster.crd_schemas.extract import extract
from cluster.groups import annotation_key, worker_groups
from cluster.kustomize import KustomizeError, build
from cluster.render import (
    CLUSTER_DIR,
    DEFAULT_SERVE_CONFIG,
    RenderError,
    carry_live_groups,
    render,
    serve_config_v2,
    write,
)
from cluster.validate import SCHEMA_DIR, validate_objects, validate_ray_object

OVERLAYS = ["eks", "local-kind"]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def rayservice(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (rs,) = by_kind(objects, "RayService")
    return rs


def ray_containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for obj in objects:
        if obj["kind"] == "RayService":
            spec = obj["spec"]["rayClusterConfig"]
        elif obj["kind"] == "RayCronJob":
            spec = obj["spec"]["jobTemplate"]["rayClusterSpec"]
        else:
            continue
        for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
            out.extend(group["template"]["spec"]["containers"])
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_manifest_validates_offline(overlay: str) -> None:
    objects = render(overlay=overlay)
    assert {"RayService", "RayCronJob", "ServiceAccount"} <= {o["kind"] for o in objects}
    assert validate_objects(objects) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serve_config_v2_is_the_one_serve_config(overlay: str) -> None:
    text = rayservice(render(overlay=overlay))["spec"]["serveConfigV2"]
    assert isinstance(text, str)
    assert yaml.safe_load(text) == yaml.safe_load(DEFAULT_SERVE_CONFIG.read_text())


def test_validator_catches_mistakes() -> None:
    objects = render(overlay="eks")
    rs = rayservice(objects)
    shared = rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    shared["maxReplica"] = 3                                   # CRD field typo
    shared["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"  # pod field typo
    shared["rayStartParams"] = {"num-cpus": 2}                 # must be a string
    rs["spec"]["serveConfigV2"] = "applications:\n- name: x\n"  # no import_path
    (ingress,) = by_kind(objects, "Ingress")
    ingress["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = 7
    problems = "\n".join(validate_objects(objects))
    assert "'maxReplica' was unexpected" in problems
    assert "'imagePullPolice' was unexpected" in problems
    assert "rayStartParams.num-cpus: 2 is not of type 'string'" in problems
    assert "ServeDeploySchema" in problems and "import_path" in problems
    assert "Ingress/incidentfox" in problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_plain_kustomize_build_is_the_render(overlay: str) -> None:
    """`kubectl apply -k cluster/overlays/<name>` applies what `incidentfox cluster render` writes:
    the committed serveConfigV2 is the rendered one, and nothing else differs."""
    built = build(CLUSTER_DIR / "overlays" / overlay)
    assert built == render(overlay=overlay)
    assert validate_objects(built) == []


def test_a_serve_config_override_changes_only_serve_config_v2(tmp_path: Path) -> None:
    config = yaml.safe_load(DEFAULT_SERVE_CONFIG.read_text())
    config["applications"][1]["args"]["max_replicas"] = 3
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    custom, plain = render(overlay="eks", serve_config=path), build(CLUSTER_DIR / "overlays" / "eks")
    assert yaml.safe_load(rayservice(custom)["spec"]["serveConfigV2"]) == config
    rayservice(custom)["spec"]["serveConfigV2"] = rayservice(plain)["spec"]["serveConfigV2"]
    assert custom == plain


def test_secrets_never_enter_serve_config(tmp_path: Path) -> None:
    config = yaml.safe_load(DEFAULT_SERVE_CONFIG.read_text())
    for leak in ({"database_url": "postgresql://u:p@db/x"},
                 {"cache": "redis://:hunter2@cache:6379/0"},
                 {"slack_signing_secret": "abc"}):
        bad = copy.deepcopy(config)
        bad["applications"][0]["args"] = leak
        path = tmp_path / "serve.yaml"
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(RenderError, match="secret-looking"):
            serve_config_v2(path)
    ok = copy.deepcopy(config)
    ok["applications"][0]["args"] = {"signature_header": "X-Grafana-Signature", "token_ttl_s": 60}
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(ok))
    assert yaml.safe_load(serve_config_v2(tmp_path / "ok.yaml")) == ok


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ray_pods_share_env_sources_and_set_requests_and_limits(overlay: str) -> None:
    containers = ray_containers(render(overlay=overlay))
    assert len(containers) == 4  # service head + shared, report head + worker
    for c in containers:
        assert set(c["resources"]) == {"requests", "limits"}
        assert c["resources"]["limits"]["memory"] == c["resources"]["requests"]["memory"]
        assert {"name": "INCIDENTFOX_DATABASE_URL", "valueFrom": {"secretKeyRef": {
            "name": "incidentfox-db", "key": "url"}}} in c["env"]
        assert c["envFrom"] == [{"secretRef": {"name": "incidentfox-app"}},
                                {"secretRef": {"name": "incidentfox-webhooks"}},
                                {"configMapRef": {"name": "incidentfox-sandbox"}}]
        literal = {e["name"] for e in c["env"] if "value" in e}
        assert not literal


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_placement_resources_and_autoscaling(overlay: str) -> None:
    spec = rayservice(render(overlay=overlay))["spec"]["rayClusterConfig"]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["idleTimeoutSeconds"] > 0
    head = spec["headGroupSpec"]
    assert head["resources"] == {"CPU": "0"} and head["serviceType"] == "ClusterIP"
    (shared,) = spec["workerGroupSpecs"]
    assert shared["groupName"] == "shared"
    assert shared["resources"] == {"shared": "1000"}
    assert shared["labels"] == {"incidentfox.ai/pool": "shared"}
    assert 1 <= shared["minReplicas"] <= shared["replicas"] <= shared["maxReplicas"]
    for group in [head, shared]:
        assert group["template"]["spec"]["serviceAccountName"] == "incidentfox"


def test_eks_overlay_specifics() -> None:
    objects = render(overlay="eks")
    (sa,) = [o for o in by_kind(objects, "ServiceAccount") if o["metadata"]["name"] == "incidentfox"]
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    spec = rayservice(objects)["spec"]["rayClusterConfig"]
    assert spec["gcsFaultToleranceOptions"]["redisPassword"] == {
        "valueFrom": {"secretKeyRef": {"name": "incidentfox-redis", "key": "password"}}}
    assert all(".dkr.ecr." in c["image"] for c in ray_containers(objects))
    # The platform's objects in its namespace; the sandbox's in theirs (tests/kuberay/test_cluster_sandbox.py).
    assert {o["metadata"].get("namespace") for o in objects
            if o["kind"] not in ("Namespace", "RuntimeClass")} == {"incidentfox", "incidentfox-sandbox"}
    assert {o["metadata"]["namespace"] for o in objects
            if o["metadata"].get("namespace") == "incidentfox-sandbox"} == {"incidentfox-sandbox"}
    # Only /webhooks and /api are public, through the ALB; nothing exposes the dashboard.
    (ingress,) = by_kind(objects, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "alb"
    paths = [(p["path"], p["pathType"], p["backend"]["service"]["port"]["number"])
             for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths == [("/webhooks", "Prefix", 8000), ("/api", "Prefix", 8000)]
    assert not by_kind(objects, "Service")
    assert "8265" not in json.dumps(ingress)


def test_local_kind_overlay_is_self_contained() -> None:
    objects = render(overlay="local-kind")
    secrets = {s["metadata"]["name"] for s in by_kind(objects, "Secret")}
    assert {"incidentfox-db", "incidentfox-app", "incidentfox-webhooks"} <= secrets
    assert all(c["image"] == "incidentfox:dev" and c["imagePullPolicy"] == "IfNotPresent"
               for c in ray_containers(objects))
    assert "gcsFaultToleranceOptions" not in rayservice(objects)["spec"]["rayClusterConfig"]
    assert not by_kind(objects, "Ingress")


def test_report_cron_job() -> None:
    (cron,) = by_kind(render(overlay="eks"), "RayCronJob")
    spec = cron["spec"]
    assert spec["schedule"] == "*/15 * * * *" and spec["timeZone"] == "Etc/UTC"
    job = spec["jobTemplate"]
    assert job["entrypoint"] == "incidentfox report run-due"
    assert job["shutdownAfterJobFinishes"] is True and job["activeDeadlineSeconds"] > 0
    workers = job["rayClusterSpec"]["workerGroupSpecs"]
    assert [w["resources"] for w in workers] == [{"shared": "1000"}]


def _live_with_team_groups() -> dict[str, Any]:
    live = copy.deepcopy(rayservice(render(overlay="eks")))
    live["metadata"]["resourceVersion"] = "4242"
    groups = live["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    groups[0]["maxReplicas"] = 99  # the base's value wins for base-owned groups
    for name, state in (("team-acme-pay", "retired"), ("team-acme-pay-v2", "active")):
        g = copy.deepcopy(groups[0])
        g.update(groupName=name, resources={"CPU": "0", "team_acme_pay": "1000"})
        groups.append(g)
        rec = {"org": "acme", "team": "pay", "version": 2 if name.endswith("v2") else 1,
               "state": state, "since": "2026-01-01T00:00:00Z", "shape": "abc"}
        live["metadata"].setdefault("annotations", {})[annotation_key(name)] = json.dumps(rec)
    old = copy.deepcopy(groups[0])
    old["groupName"] = "legacy"
    groups.insert(1, old)
    return live


def test_render_keeps_live_groups_in_order() -> None:
    live = _live_with_team_groups()
    rendered = rayservice(render(overlay="eks", live=live))
    names = [g["groupName"] for g in worker_groups(rendered)]
    assert names == ["shared", "legacy", "team-acme-pay", "team-acme-pay-v2"]
    assert worker_groups(rendered)[0]["maxReplicas"] == 10
    assert worker_groups(rendered)[3] == worker_groups(live)[3]
    assert rendered["metadata"]["resourceVersion"] == "4242"
    assert set(rendered["metadata"]["annotations"]) == {
        annotation_key("team-acme-pay"), annotation_key("team-acme-pay-v2")}
    assert validate_ray_object(rendered) == []


def test_compacting_render_drops_retired_and_unknown_groups() -> None:
    rendered = rayservice(render(overlay="eks", live=_live_with_team_groups(), compact=True))
    assert [g["groupName"] for g in worker_groups(rendered)] == ["shared", "team-acme-pay-v2"]
    assert set(rendered["metadata"]["annotations"]) == {annotation_key("team-acme-pay-v2")}


def test_new_base_groups_are_appended_after_live_ones() -> None:
    live = _live_with_team_groups()
    base = rayservice(render(overlay="eks"))
    extra = copy.deepcopy(worker_groups(base)[0])
    extra["groupName"] = "shared-large"
    base["spec"]["rayClusterConfig"]["workerGroupSpecs"].append(extra)
    merged = carry_live_groups(base, live)
    assert [g["groupName"] for g in worker_groups(merged)][-1] == "shared-large"


def test_render_refuses_a_foreign_live_object() -> None:
    with pytest.raises(RenderError, match="not this overlay's RayService"):
        render(overlay="eks", live={"kind": "RayService", "metadata": {"name": "other"}})


def test_written_directory_is_a_kustomization_of_the_same_objects(tmp_path: Path) -> None:
    objects = render(overlay="eks")
    paths = write(objects, tmp_path)
    assert (tmp_path / "kustomization.yaml") in paths
    assert build(tmp_path) == objects


def test_cli_render_writes_manifests(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["cluster", "render", "--overlay", "eks", "--out",
                                      str(tmp_path / "out"), "--validate"])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "rayservice-incidentfox.yaml" in files and "ingress-incidentfox.yaml" in files
    rs = yaml.safe_load((tmp_path / "out" / "rayservice-incidentfox.yaml").read_text())
    assert isinstance(rs["spec"]["serveConfigV2"], str)


def test_cli_render_with_live_file(tmp_path: Path) -> None:
    live = tmp_path / "live.yaml"
    live.write_text(yaml.safe_dump(_live_with_team_groups()))
    result = CliRunner().invoke(app, ["cluster", "render", "--overlay", "eks", "--out",
                                      str(tmp_path / "out"), "--live", str(live)])
    assert result.exit_code == 0, result.output
    rs = yaml.safe_load((tmp_path / "out" / "rayservice-incidentfox.yaml").read_text())
    assert len(worker_groups(rs)) == 4


def test_cli_render_reports_a_bad_serve_config(tmp_path: Path) -> None:
    bad = tmp_path / "serve.yaml"
    bad.write_text("applications: []\n")
    result = CliRunner().invoke(app, ["cluster", "render", "--overlay", "eks", "--out",
                                      str(tmp_path / "o"), "--serve-config", str(bad)])
    assert result.exit_code == 1 and "not a Serve config" in result.stderr


def test_kustomize_subset_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(KustomizeError, match="commonLabels"):
        build(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [d.yaml]\npatches:\n- patch: |\n    apiVersion: apps/v1\n    kind: Deployment\n"
        "    metadata: {name: d}\n    spec: {template: {spec: {containers: [{name: c}]}}}\n")
    (tmp_path / "d.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
    with pytest.raises(KustomizeError, match="use a JSON patch"):
        build(tmp_path)


@pytest.mark.parametrize("ops", [
    "[{op: replace, path: /spec/missing, value: 1}]",        # no such member
    "[{op: test, path: /metadata/name, value: other}]",      # a failing test
    "[{op: remove, path: /spec/items/5}]",                   # index out of range
    "[{op: frobnicate, path: /spec}]",                       # not an RFC 6902 operation
    "[{path: /spec}]",                                       # no op at all
])
def test_a_json_patch_that_does_not_apply_is_a_kustomize_error(tmp_path: Path, ops: str) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [r.yaml]\npatches:\n- target: {kind: RayService, name: r}\n  patch: |\n    " + ops + "\n")
    (tmp_path / "r.yaml").write_text(
        "apiVersion: ray.io/v1\nkind: RayService\nmetadata: {name: r}\nspec: {items: [1]}\n")
    with pytest.raises(KustomizeError, match="JSON patch does not apply"):
        build(tmp_path)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed")
@pytest.mark.parametrize("path", ["base", "overlays/eks", "overlays/local-kind", "sandbox", "monitoring"])
def test_python_build_matches_kubectl_kustomize(path: str) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(CLUSTER_DIR / path)], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    theirs = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(out) if o}
    ours = {(o["kind"], o["metadata"]["name"]): o for o in build(CLUSTER_DIR / path)}
    assert ours == theirs


def test_committed_schema_subsets_match_the_shared_crds(shared_dir: Path, tmp_path: Path) -> None:
    crds = shared_dir / "kuberay-crds"
    if not crds.is_dir():
        pytest.skip("../shared/kuberay-crds is absent")
    for fresh in extract(crds, tmp_path):
        assert fresh.read_text() == (SCHEMA_DIR / fresh.name).read_text(), fresh.name
