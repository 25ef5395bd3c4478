"""Dedicated mode: give a team its own KubeRay worker group, append-only.

``Provisioner.provision(org=, team=, deployment=)`` reconciles the ``ray.io/v1`` RayService with a
team's effective ``deployment`` section (cluster/placement.py), through ``CustomObjectsApi``:

- dedicated, no group yet → append ``team-<org>-<team>`` (custom resource ``team_<org>_<team>``,
  Ray CPU 0, labels; pod template copied from the ``shared`` group with the team's CPU, memory,
  node selector and tolerations);
- only ``min_workers``/``max_workers`` changed → patch the group's replica bounds (KubeRay applies
  replica changes in place);
- CPU, memory, node selector or tolerations changed → append the next version (``…-v2``) and set the
  old one draining (``minReplicas: 0``, so the autoscaler removes its idle nodes); once it has drained
  for ``drain_s`` seconds, a later call scales it to zero and retires it;
- back to shared → the team's groups are scaled to zero (min = max = replicas = 0) and retired at once.

A dedicated group's pods run as the team's own ServiceAccount (``team-<org>-<team>``, created through
``CoreV1Api`` before the group is appended, :func:`team_service_account`): no IAM role annotation and
``automountServiceAccountToken: false``, so a dedicated team's workers hold neither the platform's
cloud identity (the shared account's IRSA role) nor a Kubernetes API token. The account stays when the
team goes back to shared (it grants nothing) and is reused if it returns.

Why append-only: KubeRay updates a RayService's cluster in place only when worker groups are appended
or replica counts change; any other edit to ``rayClusterConfig`` rolls out a whole new Ray cluster.
Retired groups stay in the list until compaction at the next planned upgrade
(``incidentfox cluster render --from-cluster --compact``), and their records on the next call
for that team once gone.

Each write is one RFC 6902 JSON patch whose first operation sets ``metadata.resourceVersion`` to the
version the plan was computed from: the API server answers 409 if the object moved on, and the
provisioner re-reads, re-plans and retries (``max_attempts``). Index-based operations are guarded by a
``test`` of the group's name. A plan with nothing to do sends nothing, so calls are idempotent. Every
committed action becomes an :class:`AuditRecord`, logged as one JSON line and passed to ``audit``.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from tenacity import RetryCallState, Retrying
from urllib3.exceptions import HTTPError

from cluster.groups import (
    GroupRecord,
    annotation_key,
    iso,
    provisioned_groups,
    shape_of,
    worker_groups,
)
from cluster.placement import (
    ORG_LABEL,
    SHARED_GROUP,
    TEAM_LABEL,
    UNITS_PER_NODE,
    DeploymentConfig,
    TeamResources,
    dedicated_labels,
    group_base_name,
    group_name,
    team_resource,
)
from incidentfox.retry import backoff

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayservices"
FIELD_MANAGER = "incidentfox-provisioner"
JSON_PATCH = "application/json-patch+json"
_GROUPS_PATH = "/spec/rayClusterConfig/workerGroupSpecs"


class ProvisionError(RuntimeError):
    """The RayService cannot be reconciled (missing, inconsistent, or conflicts never settled)."""


@dataclass(frozen=True)
class AuditRecord:
    """One committed change, in the shape the config service's audit log stores."""

    action: str             # add_group | resize_group | drain_group | retire_group | forget_group
    org: str
    team: str
    group: str
    target: str             # "rayservice/<namespace>/<name>"
    at: str
    details: dict[str, Any] = field(default_factory=dict)
    resource_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    ops: list[dict[str, Any]] = field(default_factory=list)
    actions: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (action, group, details)


@dataclass
class ProvisionResult:
    actions: list[AuditRecord]
    resource_version: str
    attempts: int
    patch: list[dict[str, Any]] = field(default_factory=list)
    service_account: dict[str, Any] | None = None   # the team's account when this call added a group


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _annotation_path(group: str) -> str:
    return f"/metadata/annotations/{_escape(annotation_key(group))}"


def team_service_account_name(org: str, team: str) -> str:
    """``team-<org>-<team>`` (hashed when long, like the group's base name): one account per team."""
    return group_base_name(org, team)


def team_service_account(org: str, *, team: str, namespace: str) -> dict[str, Any]:
    """The ServiceAccount a dedicated team's pods run as: no token mounted, no cloud role."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": team_service_account_name(org, team),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "incidentfox", "app.kubernetes.io/managed-by": FIELD_MANAGER,
                       ORG_LABEL: org, TEAM_LABEL: team},
        },
        "automountServiceAccountToken": False,
    }


def team_group_spec(prototype: dict[str, Any], *, org: str, team: str, version: int,
                    resources: TeamResources) -> dict[str, Any]:
    """A dedicated group built from the shared group's definition (same image and env), running as
    the team's own ServiceAccount with no API token mounted."""
    group = copy.deepcopy(prototype)
    for key in ("scaleStrategy", "suspend", "idleTimeoutSeconds", "numOfHosts"):
        group.pop(key, None)
    group.update({
        "groupName": group_name(org, team, version),
        "replicas": resources.min_workers,
        "minReplicas": resources.min_workers,
        "maxReplicas": resources.max_workers,
        "resources": {"CPU": "0", team_resource(org, team): str(UNITS_PER_NODE)},
        "labels": dedicated_labels(org, team),
    })
    group.setdefault("rayStartParams", {})
    template = group.setdefault("template", {})
    template.setdefault("metadata", {}).setdefault("labels", {}).update(dedicated_labels(org, team))
    pod = template.setdefault("spec", {})
    pod["serviceAccountName"] = team_service_account_name(org, team)
    pod["automountServiceAccountToken"] = False
    size = {"cpu": resources.cpu, "memory": resources.memory}
    pod["containers"][0]["resources"] = {"requests": dict(size), "limits": dict(size)}
    for key, value in (("nodeSelector", resources.node_selector),
                       ("tolerations", resources.tolerations)):
        if value:
            pod[key] = copy.deepcopy(value)
        else:
            pod.pop(key, None)
    return group


def plan_team(rayservice: dict[str, Any], *, org: str, team: str, deployment: DeploymentConfig,
              now: datetime, drain_s: float) -> Plan:
    """The JSON-patch operations (without the resourceVersion precondition) and actions that bring
    ``rayservice`` in line with the team's deployment. Pure: reads its arguments only."""
    plan = Plan()
    groups = worker_groups(rayservice)
    index = {g.get("groupName"): i for i, g in enumerate(groups)}
    records = {n: r for n, r in provisioned_groups(rayservice).items()
               if r.org == org and r.team == team}
    annotations = (rayservice.get("metadata") or {}).get("annotations")
    if annotations is None:
        plan.ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})

    for name, rec in list(records.items()):
        if name not in index:
            if rec.state != "retired":
                raise ProvisionError(f"group {name} is recorded {rec.state} but absent from the "
                                     "RayService; restore it or remove its annotation")
            plan.ops.append({"op": "remove", "path": _annotation_path(name)})
            plan.actions.append(("forget_group", name, {"reason": "compacted"}))
            del records[name]

    def set_fields(name: str, values: dict[str, int]) -> None:
        base = f"{_GROUPS_PATH}/{index[name]}"
        plan.ops.append({"op": "test", "path": f"{base}/groupName", "value": name})
        plan.ops.extend({"op": "add", "path": f"{base}/{k}", "value": v} for k, v in values.items())

    def record(name: str, rec: GroupRecord) -> None:
        plan.ops.append({"op": "add", "path": _annotation_path(name), "value": rec.dump()})

    def retire(name: str, rec: GroupRecord, reason: str) -> None:
        set_fields(name, {"minReplicas": 0, "maxReplicas": 0, "replicas": 0})
        record(name, rec.model_copy(update={"state": "retired", "since": iso(now)}))
        plan.actions.append(("retire_group", name, {"reason": reason, "version": rec.version}))

    live = sorted(((n, r) for n, r in records.items() if r.state != "retired"),
                  key=lambda item: item[1].version)
    actives = [(n, r) for n, r in live if r.state == "active"]
    current = actives[-1] if actives else None
    draining = [(n, r) for n, r in live if (n, r) != current]

    if deployment.mode == "shared":
        for name, rec in live:
            retire(name, rec, "back_to_shared")
        return plan

    resources = deployment.resources
    assert resources is not None  # DeploymentConfig guarantees it for dedicated
    shape = shape_of(resources)
    for name, rec in draining:
        if rec.state == "active":  # a stray older active group: drain it like a replaced one
            set_fields(name, {"minReplicas": 0})
            record(name, rec.model_copy(update={"state": "draining", "since": iso(now)}))
            plan.actions.append(("drain_group", name, {"reason": "superseded", "version": rec.version}))
        elif (now - rec.since_dt()).total_seconds() >= drain_s:
            retire(name, rec, "drained")

    if current is not None and current[1].shape == shape:
        name = current[0]
        group = groups[index[name]]
        want = {"minReplicas": resources.min_workers, "maxReplicas": resources.max_workers}
        if any(group.get(k) != v for k, v in want.items()):
            replicas = min(max(int(group.get("replicas") or 0), resources.min_workers),
                           resources.max_workers)
            set_fields(name, {**want, "replicas": replicas})
            plan.actions.append(("resize_group", name, {
                "from": {k: group.get(k) for k in want}, "to": want}))
        return plan

    if current is not None:
        name, rec = current
        set_fields(name, {"minReplicas": 0})
        record(name, rec.model_copy(update={"state": "draining", "since": iso(now)}))
        plan.actions.append(("drain_group", name, {"reason": "shape_changed", "version": rec.version}))

    if SHARED_GROUP not in index:
        raise ProvisionError(f"the RayService has no {SHARED_GROUP!r} group to copy the pod template from")
    version = max((r.version for r in records.values()), default=0) + 1
    new = team_group_spec(groups[index[SHARED_GROUP]], org=org, team=team, version=version,
                          resources=resources)
    if new["groupName"] in index:
        raise ProvisionError(f"group {new['groupName']} already exists without a provisioner record")
    plan.ops.append({"op": "add", "path": f"{_GROUPS_PATH}/-", "value": new})
    record(new["groupName"], GroupRecord(org=org, team=team, version=version, state="active",
                                         since=iso(now), shape=shape))
    plan.actions.append(("add_group", new["groupName"], {
        "version": version, "resource": team_resource(org, team),
        "cpu": resources.cpu, "memory": resources.memory,
        "min_workers": resources.min_workers, "max_workers": resources.max_workers}))
    return plan


def _is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, ApiException) and exc.status == 409


class Provisioner:
    """Reconciles dedicated worker groups on one RayService (see the module docstring)."""

    def __init__(self, api: CustomObjectsApi, *, namespace: str, name: str = "incidentfox",
                 core: CoreV1Api | None = None, drain_s: float = 900.0, max_attempts: int = 5,
                 audit: Callable[[AuditRecord], None] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], None] = time.sleep, request_timeout_s: float = 10.0,
                 dry_run: bool = False) -> None:
        self.api, self.namespace, self.name = api, namespace, name
        self.core = core if core is not None else CoreV1Api(api.api_client)
        self.drain_s, self.max_attempts = drain_s, max_attempts
        self.audit, self.clock, self.sleep = audit, clock, sleep
        self.timeout, self.dry_run = request_timeout_s, dry_run

    @property
    def target(self) -> str:
        return f"rayservice/{self.namespace}/{self.name}"

    def get(self) -> dict[str, Any]:
        try:
            return self.api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, _request_timeout=self.timeout)
        except ApiException as exc:
            raise ProvisionError(f"cannot read {self.target}: {exc.status} {exc.reason}") from exc
        except HTTPError as exc:
            raise ProvisionError(f"cannot reach the API server for {self.target}: {exc}") from exc

    def provision(self, *, org: str, team: str, deployment: DeploymentConfig) -> ProvisionResult:
        """Reconcile one team; returns the committed actions (empty when already in line). A 409 (a
        concurrent write moved the resourceVersion) is retried on a fresh read, up to ``max_attempts``
        calls in all, with the platform's backoff (:func:`incidentfox.retry.backoff`)."""
        if self.max_attempts < 1:
            raise ProvisionError(f"{self.target}: no attempts made")

        def conflict(state: RetryCallState) -> None:
            log.info(json.dumps({"event": "cluster.provision.conflict", "target": self.target, "org": org,
                                 "team": team, "attempt": state.attempt_number}))

        retrying = Retrying(sleep=self.sleep, before_sleep=conflict,
                            **backoff(retry_on=_is_conflict, attempts=self.max_attempts, first_s=0.1, max_s=2.0))
        try:
            for attempt in retrying:
                with attempt:
                    return self._provision_once(org=org, team=team, deployment=deployment,
                                                attempt=attempt.retry_state.attempt_number)
        except ApiException as exc:
            raise ProvisionError(
                f"patching {self.target} failed: {exc.status} {exc.reason}"
                + (" (conflicts did not settle)" if exc.status == 409 else "")) from exc
        raise AssertionError("unreachable: tenacity returns or re-raises")

    def _provision_once(self, *, org: str, team: str, deployment: DeploymentConfig,
                        attempt: int) -> ProvisionResult:
        """One read, plan and patch; raises ApiException (409 when another write won)."""
        obj = self.get()
        rv = obj["metadata"]["resourceVersion"]
        now = self.clock()
        plan = plan_team(obj, org=org, team=team, deployment=deployment, now=now, drain_s=self.drain_s)
        if not plan.actions:
            return ProvisionResult(actions=[], resource_version=rv, attempts=attempt)
        patch = [{"op": "replace", "path": "/metadata/resourceVersion", "value": rv}, *plan.ops]
        account = None
        if any(action == "add_group" for action, _, _ in plan.actions):
            account = team_service_account(org, team=team, namespace=self.namespace)
            for action, _, details in plan.actions:
                if action == "add_group":
                    details["service_account"] = account["metadata"]["name"]
        if self.dry_run:
            records = [self._record(a, org, team, g, d, now, "") for a, g, d in plan.actions]
            return ProvisionResult(actions=records, resource_version=rv, attempts=attempt,
                                   patch=patch, service_account=account)
        if account is not None:
            self.ensure_service_account(account, org=org, team=team)
        try:
            updated = self.api.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, patch,
                field_manager=FIELD_MANAGER, _content_type=JSON_PATCH,
                _request_timeout=self.timeout)
        except HTTPError as exc:
            raise ProvisionError(f"cannot reach the API server for {self.target}: {exc}") from exc
        new_rv = (updated.get("metadata") or {}).get("resourceVersion", "")
        records = [self._record(a, org, team, g, d, now, new_rv) for a, g, d in plan.actions]
        for rec in records:
            log.info(json.dumps({"event": "cluster.provision", **rec.as_dict()}, sort_keys=True))
            if self.audit is not None:
                self.audit(rec)
        return ProvisionResult(actions=records, resource_version=new_rv, attempts=attempt,
                               patch=patch, service_account=account)

    def ensure_service_account(self, account: dict[str, Any], *, org: str, team: str) -> None:
        """Create the team's account before its pods need it; an existing one must be this team's."""
        name = account["metadata"]["name"]
        try:
            self.core.create_namespaced_service_account(
                self.namespace, account, field_manager=FIELD_MANAGER, _request_timeout=self.timeout)
            log.info(json.dumps({"event": "cluster.provision.service_account", "target": self.target,
                                 "org": org, "team": team, "service_account": name}))
            return
        except ApiException as exc:
            if exc.status != 409:
                raise ProvisionError(f"creating serviceaccount {self.namespace}/{name} failed: "
                                     f"{exc.status} {exc.reason}") from exc
        except HTTPError as exc:
            raise ProvisionError(f"cannot reach the API server for serviceaccount {name}: {exc}") from exc
        try:
            live = self.core.read_namespaced_service_account(name, self.namespace, _request_timeout=self.timeout)
        except (ApiException, HTTPError) as exc:
            raise ProvisionError(f"cannot read serviceaccount {self.namespace}/{name}: {exc}") from exc
        labels = live.metadata.labels or {}
        if (labels.get(ORG_LABEL), labels.get(TEAM_LABEL)) != (org, team) \
                or live.automount_service_account_token is not False or (live.metadata.annotations or {}):
            # Someone else's account (or one given a token or an IAM role): never run a team as it.
            raise ProvisionError(f"serviceaccount {self.namespace}/{name} exists but is not {org}/{team}'s "
                                 "token-less account; remove or fix it")

    def _record(self, action: str, org: str, team: str, group: str, details: dict[str, Any],
                now: datetime, rv: str) -> AuditRecord:
        return AuditRecord(action=action, org=org, team=team, group=group, target=self.target,
                           at=iso(now), details=details, resource_version=rv)
