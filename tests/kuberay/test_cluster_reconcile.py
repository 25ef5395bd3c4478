"""Dedicated mode without manual runs: the worker-group reconciler against the local RayService API
server (tests/kuberay/rayservice_fake.py) and the config service's store and audit log."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient, Configuration, CustomObjectsApi

from cluster.groups import provisioned_groups, worker_groups
from cluster.placement import DeploymentConfig
from cluster.provisioner import Provisioner
from cluster.reconcile import AuditEntry, Reconciler, ReconcileResult, database_audit
from cluster.reconcile_loop import ReconcileLoop, enabled, ensure_reconciler
from cluster.render import render
from config_service import DEFAULT_CONFIG, TeamConfigReader
from config_service.testing import config_harness
from incidentfox.settings import Settings
from tests.kuberay.rayservice_fake import NAME, NS, Clock, FakeApiServer

DEDICATED = {"mode": "dedicated", "resources": {"cpu": "2", "memory": "4Gi", "min_workers": 1, "max_workers": 3}}


class Configs:
    """A config source whose teams' documents a test edits between passes."""

    def __init__(self, docs: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.docs = docs

    async def team_ids(self) -> list[tuple[str, str]]:
        return sorted(self.docs)

    async def read_doc(self, org_id: str, team_id: str) -> dict[str, Any]:
        return copy.deepcopy({**DEFAULT_CONFIG, **self.docs[(org_id, team_id)]})

    async def read(self, org_id: str, team_id: str) -> Any:
        raise NotImplementedError


@pytest.fixture
def prov(server: FakeApiServer, clock: Clock) -> Iterator[Provisioner]:
    api_client = ApiClient(Configuration(host=server.url))
    yield Provisioner(CustomObjectsApi(api_client), namespace=NS, name=NAME, drain_s=600, clock=clock,
                      sleep=lambda s: None)
    api_client.close()


def group_names(server: FakeApiServer) -> list[str]:
    return [g["groupName"] for g in worker_groups(server.obj)]


def statuses(result: ReconcileResult) -> dict[str, str]:
    return {f"{o.org}/{o.team}": o.status for o in result.outcomes}


# ------------------------------------------------------------------ with the config service's store
async def test_mode_changes_provision_and_drain_in_one_pass_each_and_are_audited(
        server: FakeApiServer, prov: Provisioner, sqlite_url: str, tmp_path: Path) -> None:
    async with config_harness(db_url=sqlite_url, home=tmp_path) as cs:
        await cs.create_org("acme")
        for team in ("payments", "search"):
            await cs.create_node("acme", team, kind="team")
        sessions = cs.app.state.session_factory
        reconciler = Reconciler(prov, TeamConfigReader(sessions, settings=cs.settings),
                                audit=database_audit(sessions))

        async def audit(action: str) -> list[dict[str, Any]]:
            r = await cs.call("GET", f"/api/v1/orgs/acme/audit?action={action}")
            assert r.status_code == 200, r.text
            return r.json()["items"]

        # Both shared (the defaults' `resources: {}` included): nothing to do, nothing sent.
        first = await reconciler.run_once()
        assert statuses(first) == {"acme/payments": "unchanged", "acme/search": "unchanged"} and first.ok
        assert server.methods() == ["GET"] and group_names(server) == ["shared"]

        r = await cs.patch("acme", "payments", {"deployment": DEDICATED,
                                                "llm": {"provider": "openai", "api_key": "sk-SECRET-1"}})
        assert r.status_code == 200, r.text
        result = await reconciler.run_once()
        assert statuses(result) == {"acme/payments": "provisioned", "acme/search": "unchanged"}
        assert group_names(server) == ["shared", "team-acme-payments"]
        (row,) = await audit("worker_group.*")
        assert (row["actor"], row["action"], row["target"]) == (
            "reconciler", "worker_group.provisioned", "node:acme/payments")
        assert row["diff"]["group"] == "team-acme-payments" and row["diff"]["cpu"] == "2"
        assert row["diff"]["service_account"] == "team-acme-payments"
        assert "SECRET" not in json.dumps(row)

        # Idempotent: a second pass sends no write and records nothing.
        before = len(server.requests)
        again = await reconciler.run_once()
        assert set(statuses(again).values()) == {"unchanged"}
        assert [r["method"] for r in server.requests[before:]] == ["GET"]
        assert len(await audit("worker_group.*")) == 1

        # Back to shared: the group is scaled to zero and retired, and that is audited.
        assert (await cs.patch("acme", "payments", {"deployment": {"mode": "shared"}})).status_code == 200
        result = await reconciler.run_once()
        assert statuses(result)["acme/payments"] == "drained"
        group = {g["groupName"]: g for g in worker_groups(server.obj)}["team-acme-payments"]
        assert (group["minReplicas"], group["maxReplicas"], group["replicas"]) == (0, 0, 0)
        assert provisioned_groups(server.obj)["team-acme-payments"].state == "retired"
        (drained,) = await audit("worker_group.drained")
        assert drained["diff"]["reason"] == "back_to_shared" and drained["target"] == "node:acme/payments"
        assert set(statuses(await reconciler.run_once()).values()) == {"unchanged"}


# ------------------------------------------------------------------ failures stay per team
async def test_an_api_failure_for_one_team_leaves_the_others_reconciled(
        server: FakeApiServer, prov: Provisioner) -> None:
    configs = Configs({("acme", t): {"deployment": DEDICATED} for t in ("payments", "search", "zeta")})
    audited: list[AuditEntry] = []

    async def sink(entries: list[AuditEntry]) -> None:
        audited.extend(entries)

    server.fail_patch = lambda body: 403 if "team-acme-search" in json.dumps(body) else None
    reconciler = Reconciler(prov, configs, audit=sink)
    result = await reconciler.run_once()
    assert statuses(result) == {"acme/payments": "provisioned", "acme/search": "failed", "acme/zeta": "provisioned"}
    (failed,) = result.with_status("failed")
    assert "403" in failed.reason and not result.ok
    assert group_names(server) == ["shared", "team-acme-payments", "team-acme-zeta"]
    assert [(e.action, e.target) for e in audited] == [
        ("worker_group.provisioned", "node:acme/payments"), ("worker_group.failed", "node:acme/search"),
        ("worker_group.provisioned", "node:acme/zeta")]

    # The same failure again is not audited again; once the API accepts, the team is provisioned.
    assert statuses(await reconciler.run_once())["acme/search"] == "failed"
    assert len(audited) == 3
    server.fail_patch = None
    result = await reconciler.run_once()
    assert statuses(result)["acme/search"] == "provisioned" and result.ok
    assert audited[-1].action == "worker_group.provisioned" and audited[-1].target == "node:acme/search"


async def test_an_invalid_config_fails_that_team_only_and_keeps_its_group(
        server: FakeApiServer, prov: Provisioner) -> None:
    configs = Configs({("acme", "payments"): {"deployment": DEDICATED},
                       ("acme", "search"): {"deployment": DEDICATED}})
    reconciler = Reconciler(prov, configs)
    await reconciler.run_once()
    configs.docs[("acme", "payments")] = {"deployment": {"mode": "dedicated"}}   # resources removed
    configs.docs[("acme", "search")] = {"deployment": {"mode": "shared"}}
    result = await reconciler.run_once()
    assert statuses(result) == {"acme/payments": "failed", "acme/search": "drained"}
    assert "needs deployment.resources" in result.with_status("failed")[0].reason
    assert provisioned_groups(server.obj)["team-acme-payments"].state == "active"


async def test_a_team_removed_from_the_config_service_is_drained(
        server: FakeApiServer, prov: Provisioner) -> None:
    configs = Configs({("acme", "payments"): {"deployment": DEDICATED}})
    reconciler = Reconciler(prov, configs)
    await reconciler.run_once()
    del configs.docs[("acme", "payments")]
    result = await reconciler.run_once()
    (outcome,) = result.outcomes
    assert (outcome.team, outcome.status, outcome.reason) == (
        "payments", "drained", "the team is no longer in the config service")
    assert provisioned_groups(server.obj)["team-acme-payments"].state == "retired"


async def test_an_unreadable_rayservice_stops_the_pass_with_an_error(server: FakeApiServer, clock: Clock) -> None:
    api_client = ApiClient(Configuration(host=server.url))
    prov = Provisioner(CustomObjectsApi(api_client), namespace=NS, name="nope", clock=clock)
    result = await Reconciler(prov, Configs({("acme", "payments"): {"deployment": DEDICATED}})).run_once()
    assert result.outcomes == () and "cannot read rayservice/incidentfox/nope: 404" in result.error
    assert not result.ok
    api_client.close()


async def test_dry_run_writes_and_audits_nothing(server: FakeApiServer, clock: Clock) -> None:
    api_client = ApiClient(Configuration(host=server.url))
    prov = Provisioner(CustomObjectsApi(api_client), namespace=NS, name=NAME, clock=clock, dry_run=True)
    audited: list[AuditEntry] = []

    async def sink(entries: list[AuditEntry]) -> None:
        audited.extend(entries)

    result = await Reconciler(prov, Configs({("acme", "payments"): {"deployment": DEDICATED}}),
                              audit=sink).run_once()
    assert statuses(result) == {"acme/payments": "provisioned"} and result.dry_run
    assert "PATCH" not in server.methods() and audited == [] and group_names(server) == ["shared"]
    api_client.close()


def test_the_defaults_and_a_shared_team_with_old_sizes_parse_as_shared() -> None:
    assert DeploymentConfig.from_effective(DEFAULT_CONFIG).mode == "shared"
    kept = DeploymentConfig.from_effective({"deployment": {"mode": "shared", "resources": {"cpu": "2"}}})
    assert kept.mode == "shared" and kept.resources is None
    with pytest.raises(ValueError, match="needs deployment.resources"):
        DeploymentConfig.from_effective({"deployment": {"mode": "dedicated", "resources": {}}})


# ------------------------------------------------------------------ the schedule
def passes(*results: ReconcileResult | Exception) -> tuple[list[int], Any]:
    calls: list[int] = []
    pending = list(results)

    async def run_once() -> ReconcileResult:
        calls.append(len(calls) + 1)
        item = pending.pop(0) if pending else ReconcileResult()
        if isinstance(item, Exception):
            raise item
        return item
    return calls, run_once


async def test_the_loop_runs_a_pass_per_interval_and_survives_a_failing_pass() -> None:
    calls, run_once = passes(ReconcileResult(), RuntimeError("database down"), ReconcileResult(error="x"))
    waits: list[float] = []

    async def wait(kick: asyncio.Event, interval_s: float) -> None:
        waits.append(interval_s)   # the interval elapses at once

    loop = ReconcileLoop(run_once, interval_s=45, wait=wait)
    await loop.run(max_passes=3)
    assert calls == [1, 2, 3] and waits == [45, 45] and loop.passes == 3
    assert loop.last == ReconcileResult(error="x")


async def test_a_trigger_runs_the_next_pass_without_waiting_for_the_interval() -> None:
    done: asyncio.Queue[int] = asyncio.Queue()
    count = 0

    async def run_once() -> ReconcileResult:
        nonlocal count
        count += 1
        await done.put(count)
        return ReconcileResult()

    loop = ReconcileLoop(run_once, interval_s=3600)
    task = asyncio.create_task(loop.run())
    assert await asyncio.wait_for(done.get(), 30) == 1
    loop.trigger()
    assert await asyncio.wait_for(done.get(), 30) == 2     # long before the hour is up
    loop.stop()
    await asyncio.wait_for(task, 30)
    assert loop.passes == 2


def test_the_actor_starts_only_inside_a_pod_with_an_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert not enabled(Settings()) and ensure_reconciler(settings=Settings()) is None
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert enabled(Settings()) and not enabled(Settings(worker_groups_reconcile_s=0))
    with pytest.raises(ValueError, match="interval_s"):
        ReconcileLoop(passes()[1], interval_s=0)


# ------------------------------------------------------------------ RBAC and the CLI
@pytest.mark.parametrize("overlay", ["eks", "local-kind"])
def test_the_platform_account_may_patch_only_its_rayservice_and_create_team_accounts(overlay: str) -> None:
    objects = render(overlay=overlay)
    (role,) = [o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == "incidentfox-provisioner"]
    assert role["metadata"]["namespace"] == "incidentfox"
    assert role["rules"] == [
        {"apiGroups": ["ray.io"], "resources": ["rayservices"], "resourceNames": ["incidentfox"],
         "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["create", "get"]}]
    (binding,) = [o for o in objects if o["kind"] == "RoleBinding"
                  and o["metadata"]["name"] == "incidentfox-provisioner"]
    assert binding["roleRef"]["name"] == "incidentfox-provisioner"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "incidentfox", "namespace": "incidentfox"}]


def test_cli_reconcile_once_reads_the_database_and_prints_the_outcomes(
        server: FakeApiServer, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    async def seed() -> Settings:
        async with config_harness(db_url=sqlite_url, home=tmp_path) as cs:
            await cs.create_org("acme")
            await cs.create_node("acme", "payments", kind="team")
            assert (await cs.patch("acme", "payments", {"deployment": DEDICATED})).status_code == 200
            return cs.settings

    settings = asyncio.run(seed())
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server.url}}],
        "users": [{"name": "fake", "user": {"token": "t"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("INCIDENTFOX_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("INCIDENTFOX_SECRET_KEY", settings.secret_key.get_secret_value())

    result = CliRunner().invoke(app, ["cluster", "reconcile", "--once"])
    assert result.exit_code == 0, result.output
    team, summary = (json.loads(line) for line in result.output.strip().splitlines())
    assert (team["team"], team["status"]) == ("payments", "provisioned")
    assert summary["provisioned"] == 1 and summary["failed"] == 0
    assert group_names(server) == ["shared", "team-acme-payments"]

    again = CliRunner().invoke(app, ["cluster", "reconcile", "--once"])
    assert again.exit_code == 0 and json.loads(again.output)["unchanged"] == 1
