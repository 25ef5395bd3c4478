"""The dedicated-mode provisioner against a local HTTP server speaking the CustomObjects API
(tests/kuberay/rayservice_fake.py). Tests assert the exact patches sent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from kubernetes.client import ApiClient, Configuration, CustomObjectsApi

from cluster.groups import provisioned_groups, worker_groups
from cluster.kustomize import apply_json_patch
from cluster.placement import DeploymentConfig, group_base_name, group_name
from cluster.provisioner import AuditRecord, Provisioner, ProvisionError, team_service_account
from cluster.render import carry_live_groups, render
from cluster.validate import validate_objects, validate_ray_object
from tests.kuberay.rayservice_fake import NAME, NS, SA_PATH, T0, Clock, FakeApiServer


@pytest.fixture
def audit() -> list[AuditRecord]:
    return []


@pytest.fixture
def prov(server: FakeApiServer, clock: Clock, audit: list[AuditRecord]) -> Iterator[Provisioner]:
    api_client = ApiClient(Configuration(host=server.url))
    yield Provisioner(CustomObjectsApi(api_client), namespace=NS, name=NAME, drain_s=600,
                      audit=audit.append, clock=clock, sleep=lambda s: None)
    api_client.close()


def dedicated(cpu: str = "2", memory: str = "4Gi", lo: int = 1, hi: int = 3, **extra: Any) -> DeploymentConfig:
    return DeploymentConfig.model_validate({"mode": "dedicated", "resources": {
        "cpu": cpu, "memory": memory, "min_workers": lo, "max_workers": hi, **extra}})


SHARED = DeploymentConfig.model_validate({"mode": "shared"})


def record_json(version: int, state: str, since: datetime, shape: str) -> str:
    return json.dumps({"org": "acme", "team": "payments", "shape": shape,
                       "since": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "state": state,
                       "version": version}, sort_keys=True, separators=(",", ":"))


def expected_group(shared: dict[str, Any], name: str, *, cpu: str, memory: str, lo: int, hi: int,
                   node_selector: dict[str, str] | None = None,
                   tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    group = copy.deepcopy(shared)
    labels = {"incidentfox.ai/pool": "dedicated", "incidentfox.ai/org": "acme",
              "incidentfox.ai/team": "payments"}
    group.update({"groupName": name, "replicas": lo, "minReplicas": lo, "maxReplicas": hi,
                  "resources": {"CPU": "0", "team_acme_payments": "1000"}, "labels": labels})
    # The shared template's labels stay (NetworkPolicies and the worker PDB select on them).
    group["template"].setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    pod = group["template"]["spec"]
    pod["serviceAccountName"] = "team-acme-payments"
    pod["automountServiceAccountToken"] = False
    pod["containers"][0]["resources"] = {"requests": {"cpu": cpu, "memory": memory},
                                         "limits": {"cpu": cpu, "memory": memory}}
    if node_selector:
        pod["nodeSelector"] = node_selector
    if tolerations:
        pod["tolerations"] = tolerations
    return group


ANN = "/metadata/annotations/groups.incidentfox.ai~1"
GROUPS = "/spec/rayClusterConfig/workerGroupSpecs"


def test_adds_a_dedicated_group_with_one_exact_json_patch(server: FakeApiServer, prov: Provisioner,
                                                          audit: list[AuditRecord]) -> None:
    shared = copy.deepcopy(worker_groups(server.obj)[0])
    tolerations = [{"key": "team", "operator": "Equal", "value": "payments", "effect": "NoSchedule"}]
    result = prov.provision(org="acme", team="payments", deployment=dedicated(
        node_selector={"pool": "payments"}, tolerations=tolerations))

    shape = provisioned_groups(server.obj)["team-acme-payments"].shape
    assert server.methods() == ["GET", "PATCH"]
    sent = server.requests[1]
    assert sent["content_type"] == "application/json-patch+json"
    assert "fieldManager=incidentfox-provisioner" in sent["path"]
    assert sent["body"] == [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "100"},
        {"op": "add", "path": "/metadata/annotations", "value": {}},
        {"op": "add", "path": f"{GROUPS}/-", "value": expected_group(
            shared, "team-acme-payments", cpu="2", memory="4Gi", lo=1, hi=3,
            node_selector={"pool": "payments"}, tolerations=tolerations)},
        {"op": "add", "path": ANN + "team-acme-payments", "value": record_json(1, "active", T0, shape)},
    ]
    # Append-only: the shared group is untouched and still first.
    assert [g["groupName"] for g in worker_groups(server.obj)] == ["shared", "team-acme-payments"]
    assert worker_groups(server.obj)[0] == shared
    assert validate_ray_object(server.obj) == []
    assert [(r.action, r.group, r.resource_version) for r in result.actions] == \
        [("add_group", "team-acme-payments", "101")]
    assert audit == result.actions and audit[0].target == "rayservice/incidentfox/incidentfox"


def test_dedicated_group_runs_as_the_teams_own_token_less_account(
        server: FakeApiServer, prov: Provisioner, audit: list[AuditRecord]) -> None:
    shared = worker_groups(server.obj)[0]["template"]["spec"]
    assert shared["serviceAccountName"] == "incidentfox"  # the platform's account (IRSA on EKS)
    result = prov.provision(org="acme", team="payments", deployment=dedicated())

    account = server.service_accounts["team-acme-payments"]
    assert account == team_service_account("acme", team="payments", namespace=NS) == result.service_account
    assert account["automountServiceAccountToken"] is False and "annotations" not in account["metadata"]
    assert account["metadata"]["labels"]["incidentfox.ai/team"] == "payments"
    assert validate_objects([account]) == []
    # Created before the group that needs it was appended.
    assert server.groups_when_account_created == [["shared"]]
    assert server.account_requests == [("POST", SA_PATH)]
    pod = worker_groups(server.obj)[1]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("team-acme-payments", False)
    assert validate_ray_object(server.obj) == []
    assert audit[0].details["service_account"] == "team-acme-payments"

    # Another team gets another account; a new version of a group reuses the team's account.
    prov.provision(org="acme", team="search", deployment=dedicated(cpu="1", memory="2Gi"))
    prov.provision(org="acme", team="payments", deployment=dedicated(cpu="4"))
    assert sorted(server.service_accounts) == ["team-acme-payments", "team-acme-search"]
    by_name = {g["groupName"]: g["template"]["spec"]["serviceAccountName"] for g in worker_groups(server.obj)}
    assert by_name == {"shared": "incidentfox", "team-acme-payments": "team-acme-payments",
                       "team-acme-search": "team-acme-search", "team-acme-payments-v2": "team-acme-payments"}
    assert server.account_requests[-2:] == [("POST", SA_PATH), ("GET", f"{SA_PATH}/team-acme-payments")]


def test_an_account_that_is_not_the_teams_is_never_used(server: FakeApiServer, prov: Provisioner) -> None:
    impostor = team_service_account("acme", team="payments", namespace=NS)
    impostor["metadata"]["annotations"] = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/x"}
    server.service_accounts["team-acme-payments"] = impostor
    with pytest.raises(ProvisionError, match="not acme/payments's token-less account"):
        prov.provision(org="acme", team="payments", deployment=dedicated())
    assert server.methods() == ["GET"]  # the group was not appended


def test_dry_run_creates_no_account(server: FakeApiServer, clock: Clock) -> None:
    api_client = ApiClient(Configuration(host=server.url))
    prov = Provisioner(CustomObjectsApi(api_client), namespace=NS, name=NAME, clock=clock, dry_run=True)
    result = prov.provision(org="acme", team="payments", deployment=dedicated())
    assert result.service_account == team_service_account("acme", team="payments", namespace=NS)
    assert server.account_requests == [] and server.service_accounts == {}
    api_client.close()


def test_second_call_is_a_noop(server: FakeApiServer, prov: Provisioner, audit: list[AuditRecord]) -> None:
    prov.provision(org="acme", team="payments", deployment=dedicated())
    before = copy.deepcopy(server.obj)
    result = prov.provision(org="acme", team="payments", deployment=dedicated())
    assert result.actions == [] and result.resource_version == "101"
    assert server.methods() == ["GET", "PATCH", "GET"]
    assert server.obj == before and len(audit) == 1


def test_conflict_is_retried_on_a_fresh_read(server: FakeApiServer, prov: Provisioner) -> None:
    def other_writer(obj: dict[str, Any]) -> dict[str, Any]:
        obj["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"] = 12
        return obj

    server.before_patch.append(other_writer)
    result = prov.provision(org="acme", team="payments", deployment=dedicated())
    assert server.methods() == ["GET", "PATCH", "GET", "PATCH"]
    assert server.requests[1]["body"][0]["value"] == "100"   # refused: 409
    assert server.requests[3]["body"][0]["value"] == "101"   # re-planned on the fresh object
    assert result.attempts == 2 and server.obj["metadata"]["resourceVersion"] == "102"
    groups = worker_groups(server.obj)
    assert groups[0]["maxReplicas"] == 12  # the other writer's change survived
    assert [g["groupName"] for g in groups] == ["shared", "team-acme-payments"]


def test_conflict_with_a_twin_provisioner_ends_without_a_second_write(
        server: FakeApiServer, prov: Provisioner, audit: list[AuditRecord]) -> None:
    def twin(obj: dict[str, Any]) -> dict[str, Any]:
        return apply_json_patch(obj, server.requests[-1]["body"][1:])  # the same change, first

    server.before_patch.append(twin)
    result = prov.provision(org="acme", team="payments", deployment=dedicated())
    assert server.methods() == ["GET", "PATCH", "GET"]
    assert result.actions == [] and audit == []
    assert [g["groupName"] for g in worker_groups(server.obj)] == ["shared", "team-acme-payments"]


def test_conflicts_that_never_settle_raise(server: FakeApiServer, clock: Clock) -> None:
    api_client = ApiClient(Configuration(host=server.url))
    prov = Provisioner(CustomObjectsApi(api_client), namespace=NS, name=NAME, max_attempts=3,
                       clock=clock, sleep=lambda s: None)
    server.race_every_patch = lambda obj: obj  # another write (a new resourceVersion) every time
    with pytest.raises(ProvisionError, match="409.*did not settle"):
        prov.provision(org="acme", team="payments", deployment=dedicated())
    assert server.methods() == ["GET", "PATCH"] * 3
    api_client.close()


def test_replica_bounds_change_in_place(server: FakeApiServer, prov: Provisioner) -> None:
    prov.provision(org="acme", team="payments", deployment=dedicated(lo=1, hi=3))
    result = prov.provision(org="acme", team="payments", deployment=dedicated(lo=2, hi=6))
    assert server.requests[-1]["body"] == [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "101"},
        {"op": "test", "path": f"{GROUPS}/1/groupName", "value": "team-acme-payments"},
        {"op": "add", "path": f"{GROUPS}/1/minReplicas", "value": 2},
        {"op": "add", "path": f"{GROUPS}/1/maxReplicas", "value": 6},
        {"op": "add", "path": f"{GROUPS}/1/replicas", "value": 2},
    ]
    assert [(a.action, a.details) for a in result.actions] == [
        ("resize_group", {"from": {"minReplicas": 1, "maxReplicas": 3},
                          "to": {"minReplicas": 2, "maxReplicas": 6}})]


def test_shape_change_adds_a_versioned_group_and_drains_the_old(
        server: FakeApiServer, prov: Provisioner, clock: Clock) -> None:
    prov.provision(org="acme", team="payments", deployment=dedicated(cpu="2"))
    old_shape = provisioned_groups(server.obj)["team-acme-payments"].shape
    shared = copy.deepcopy(worker_groups(server.obj)[0])
    clock.now = T0 + timedelta(minutes=1)
    result = prov.provision(org="acme", team="payments", deployment=dedicated(cpu="4", memory="8Gi"))
    new_shape = provisioned_groups(server.obj)["team-acme-payments-v2"].shape
    t1 = clock.now
    assert server.requests[-1]["body"] == [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "101"},
        {"op": "test", "path": f"{GROUPS}/1/groupName", "value": "team-acme-payments"},
        {"op": "add", "path": f"{GROUPS}/1/minReplicas", "value": 0},
        {"op": "add", "path": ANN + "team-acme-payments", "value": record_json(1, "draining", t1, old_shape)},
        {"op": "add", "path": f"{GROUPS}/-", "value": expected_group(
            shared, "team-acme-payments-v2", cpu="4", memory="8Gi", lo=1, hi=3)},
        {"op": "add", "path": ANN + "team-acme-payments-v2", "value": record_json(2, "active", t1, new_shape)},
    ]
    assert [(a.action, a.group) for a in result.actions] == [
        ("drain_group", "team-acme-payments"), ("add_group", "team-acme-payments-v2")]
    # The old group keeps its template (editing it would roll a new Ray cluster) and its max.
    old = worker_groups(server.obj)[1]
    assert old["maxReplicas"] == 3 and old["template"]["spec"]["containers"][0]["resources"][
        "limits"]["cpu"] == "2"

    # Inside the drain window nothing happens; after it, the old group is scaled to zero, retired.
    clock.now = t1 + timedelta(seconds=599)
    assert prov.provision(org="acme", team="payments", deployment=dedicated(cpu="4", memory="8Gi")).actions == []
    clock.now = t1 + timedelta(seconds=600)
    result = prov.provision(org="acme", team="payments", deployment=dedicated(cpu="4", memory="8Gi"))
    assert server.requests[-1]["body"] == [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "102"},
        {"op": "test", "path": f"{GROUPS}/1/groupName", "value": "team-acme-payments"},
        {"op": "add", "path": f"{GROUPS}/1/minReplicas", "value": 0},
        {"op": "add", "path": f"{GROUPS}/1/maxReplicas", "value": 0},
        {"op": "add", "path": f"{GROUPS}/1/replicas", "value": 0},
        {"op": "add", "path": ANN + "team-acme-payments", "value": record_json(1, "retired", clock.now, old_shape)},
    ]
    assert [(a.action, a.details["reason"]) for a in result.actions] == [("retire_group", "drained")]
    assert [g["groupName"] for g in worker_groups(server.obj)] == [
        "shared", "team-acme-payments", "team-acme-payments-v2"]
    assert validate_ray_object(server.obj) == []


def test_back_to_shared_retires_at_once_then_compaction_forgets(
        server: FakeApiServer, prov: Provisioner, clock: Clock) -> None:
    prov.provision(org="acme", team="payments", deployment=dedicated())
    shape = provisioned_groups(server.obj)["team-acme-payments"].shape
    clock.now = T0 + timedelta(seconds=5)
    result = prov.provision(org="acme", team="payments", deployment=SHARED)
    assert server.requests[-1]["body"] == [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "101"},
        {"op": "test", "path": f"{GROUPS}/1/groupName", "value": "team-acme-payments"},
        {"op": "add", "path": f"{GROUPS}/1/minReplicas", "value": 0},
        {"op": "add", "path": f"{GROUPS}/1/maxReplicas", "value": 0},
        {"op": "add", "path": f"{GROUPS}/1/replicas", "value": 0},
        {"op": "add", "path": ANN + "team-acme-payments", "value": record_json(1, "retired", clock.now, shape)},
    ]
    assert [(a.action, a.details["reason"]) for a in result.actions] == [("retire_group", "back_to_shared")]
    assert prov.provision(org="acme", team="payments", deployment=SHARED).actions == []

    # Planned upgrade: the compacting render drops the retired group from the list; the annotation
    # (owned by the provisioner's field manager) is forgotten on the team's next call.
    rendered = next(o for o in render(overlay="eks") if o["kind"] == "RayService")
    compacted = carry_live_groups(rendered, server.obj, compact=True)
    assert [g["groupName"] for g in worker_groups(compacted)] == ["shared"]
    server.obj["spec"] = compacted["spec"]
    result = prov.provision(org="acme", team="payments", deployment=SHARED)
    assert server.requests[-1]["body"][1:] == [
        {"op": "remove", "path": ANN + "team-acme-payments"}]
    assert [a.action for a in result.actions] == ["forget_group"]

    # Dedicated again after compaction: versions keep counting only over remembered groups.
    result = prov.provision(org="acme", team="payments", deployment=dedicated())
    assert [(a.action, a.group) for a in result.actions] == [("add_group", "team-acme-payments")]


def test_two_teams_get_separate_groups_and_resources(server: FakeApiServer, prov: Provisioner) -> None:
    prov.provision(org="acme", team="payments", deployment=dedicated())
    prov.provision(org="acme", team="search", deployment=dedicated(cpu="1", memory="2Gi"))
    groups = {g["groupName"]: g for g in worker_groups(server.obj)}
    assert groups["team-acme-search"]["resources"] == {"CPU": "0", "team_acme_search": "1000"}
    assert groups["team-acme-payments"]["resources"] == {"CPU": "0", "team_acme_payments": "1000"}
    assert "shared" not in groups["team-acme-search"]["resources"]
    # Retiring one team leaves the other's group alone.
    prov.provision(org="acme", team="search", deployment=SHARED)
    assert groups["team-acme-payments"] == {g["groupName"]: g for g in worker_groups(server.obj)}[
        "team-acme-payments"]


def test_long_names_get_a_stable_hash_suffix(server: FakeApiServer, prov: Provisioner) -> None:
    org, team = "a" * 40, "platform-observability-and-reliability"
    base = group_base_name(org, team)
    assert len(base) <= 48 and base == group_base_name(org, team)
    assert base != group_base_name(org, team + "x")
    assert len(group_name(org, team, 999)) <= 63
    prov.provision(org=org, team=team, deployment=dedicated())
    assert worker_groups(server.obj)[-1]["groupName"] == base
    assert validate_ray_object(server.obj) == []


def test_dry_run_sends_nothing(server: FakeApiServer, clock: Clock) -> None:
    api_client = ApiClient(Configuration(host=server.url))
    prov = Provisioner(CustomObjectsApi(api_client), namespace=NS, name=NAME, clock=clock, dry_run=True)
    result = prov.provision(org="acme", team="payments", deployment=dedicated())
    assert server.methods() == ["GET"] and [a.action for a in result.actions] == ["add_group"]
    assert result.patch[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "100"}
    api_client.close()


def test_missing_rayservice_is_a_clear_error(server: FakeApiServer, clock: Clock) -> None:
    api_client = ApiClient(Configuration(host=server.url))
    prov = Provisioner(CustomObjectsApi(api_client), namespace=NS, name="nope", clock=clock)
    with pytest.raises(ProvisionError, match="cannot read rayservice/incidentfox/nope: 404"):
        prov.provision(org="acme", team="payments", deployment=dedicated())
    api_client.close()


def test_dedicated_without_resources_is_refused() -> None:
    with pytest.raises(ValueError, match="needs deployment.resources"):
        DeploymentConfig.model_validate({"mode": "dedicated"})
    with pytest.raises(ValueError, match="min_workers"):
        dedicated(lo=4, hi=2)


def test_cli_provision_reads_the_effective_config_and_prints_audit_records(
        server: FakeApiServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml
    from typer.testing import CliRunner

    from cli.main import app

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server.url}}],
        "users": [{"name": "fake", "user": {"token": "t"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    effective = tmp_path / "effective.yaml"
    effective.write_text(yaml.safe_dump({"slack": {"default_channel": "C1"}, "deployment": {
        "mode": "dedicated", "resources": {"cpu": 2, "memory": "4Gi", "min_workers": 0,
                                           "max_workers": 2}}}))
    args = ["cluster", "provision", "--org", "acme", "--team", "payments",
            "--config-file", str(effective)]

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (line,) = result.output.strip().splitlines()
    assert json.loads(line)["action"] == "add_group" and json.loads(line)["group"] == "team-acme-payments"
    assert [g["groupName"] for g in worker_groups(server.obj)] == ["shared", "team-acme-payments"]

    again = CliRunner().invoke(app, args)  # idempotent: nothing printed, nothing written
    assert again.exit_code == 0 and again.output.strip() == ""
    assert server.methods() == ["GET", "PATCH", "GET"]

    effective.write_text(yaml.safe_dump({"deployment": {"mode": "dedicated"}}))
    bad = CliRunner().invoke(app, args)
    assert bad.exit_code == 1 and "needs deployment.resources" in bad.stderr


def test_cli_render_from_cluster_keeps_provisioned_groups(
        server: FakeApiServer, prov: Provisioner, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml
    from typer.testing import CliRunner

    from cli.main import app

    prov.provision(org="acme", team="payments", deployment=dedicated())
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server.url}}],
        "users": [{"name": "fake", "user": {"token": "t"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["cluster", "render", "--overlay", "eks", "--out", str(out),
                                      "--from-cluster"])
    assert result.exit_code == 0, result.output
    rendered = yaml.safe_load((out / "rayservice-incidentfox.yaml").read_text())
    assert worker_groups(rendered) == worker_groups(server.obj)
    assert rendered["metadata"]["resourceVersion"] == server.obj["metadata"]["resourceVersion"]
    assert rendered["metadata"]["annotations"] == server.obj["metadata"]["annotations"]
