"""Dedicated mode without manual runs: one reconcile pass over every team's worker group.

Desired state: each team's effective ``deployment`` section, read through the config service's
library face (a :class:`config_service.TeamConfigSource`: every team id, then each team's document).
Actual state: the provisioner's records on the RayService (``groups.incidentfox.ai/<group>``,
:mod:`cluster.groups`), read once per pass. The plan, per team, is :func:`cluster.provisioner.plan_team`
on that snapshot: a team whose plan is empty is ``unchanged`` and costs no further request; any
other is handed to :meth:`Provisioner.provision`, which re-reads, re-plans and writes one guarded
JSON patch (so a pass is idempotent and safe beside another writer):

- dedicated, no group → the group is appended (``provisioned``);
- back to shared, or the team deleted from the config service → its groups are scaled to zero and
  retired (``drained``);
- anything else the provisioner does (replica bounds, a new shape, retiring a replaced group after
  the drain window, forgetting a compacted one) → ``updated``.

A team whose config is invalid (dedicated without valid ``resources``) or whose write fails is
``failed`` with the reason, its groups left as they are; the other teams are still reconciled. A
pass that cannot read the RayService or the team list has an ``error`` and changes nothing.

Every committed change becomes one row in the config service's audit log (``record_audit``, actor
``reconciler``, target ``node:<org>/<team>``, action ``worker_group.provisioned`` / ``.drained`` /
``.draining`` / ``.resized`` / ``.forgotten``), and a failure one ``worker_group.failed`` row the
first time its reason is seen (not every pass). Audit details are the provisioner's: group, version,
sizes, service account, RayService and resourceVersion; never a secret. Each changed or failed team
is counted in ``incidentfox_worker_group_changes_total{outcome}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from cluster.groups import provisioned_groups
from cluster.placement import DeploymentConfig
from cluster.provisioner import AuditRecord, Provisioner, ProvisionError, plan_team
from config_service import TeamConfigSource, record_audit
from incidentfox import metrics

log = logging.getLogger("incidentfox.reconciler")

ACTOR = "reconciler"
TeamStatus = Literal["provisioned", "drained", "updated", "unchanged", "failed"]
SHARED = DeploymentConfig()
AUDIT_ACTIONS = {"add_group": "worker_group.provisioned", "retire_group": "worker_group.drained",
                 "drain_group": "worker_group.draining", "resize_group": "worker_group.resized",
                 "forget_group": "worker_group.forgotten"}
FAILED_ACTION = "worker_group.failed"


@dataclass(frozen=True)
class TeamOutcome:
    """What one pass did for one team."""

    org: str
    team: str
    mode: str                                   # desired: shared | dedicated | "" (config unreadable)
    status: TeamStatus
    actions: tuple[AuditRecord, ...] = ()
    reason: str = ""                            # why it failed, or why a team was drained

    def as_dict(self) -> dict[str, Any]:
        return {"org": self.org, "team": self.team, "mode": self.mode, "status": self.status,
                "reason": self.reason, "actions": [a.as_dict() for a in self.actions]}


@dataclass(frozen=True)
class ReconcileResult:
    """One pass: an outcome per team considered, or the ``error`` that stopped the pass."""

    outcomes: tuple[TeamOutcome, ...] = ()
    error: str = ""
    dry_run: bool = False

    def with_status(self, status: TeamStatus) -> list[TeamOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.error and not self.with_status("failed")

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in ("provisioned", "drained", "updated", "unchanged", "failed")}
        for o in self.outcomes:
            out[o.status] += 1
        return out

    def summary(self) -> dict[str, Any]:
        return {"event": "cluster.reconcile", "error": self.error, "dry_run": self.dry_run, **self.counts(),
                "failed_teams": [f"{o.org}/{o.team}: {o.reason}" for o in self.with_status("failed")]}


@dataclass(frozen=True)
class AuditEntry:
    org_id: str
    action: str
    target: str
    diff: dict[str, Any] = field(default_factory=dict)


AuditSink = Callable[[list[AuditEntry]], Awaitable[None]]


def database_audit(sessions: Any) -> AuditSink:
    """Write entries to the config service's audit log, one transaction per team."""
    async def write(entries: list[AuditEntry]) -> None:
        async with sessions() as session:
            for e in entries:
                record_audit(session, org_id=e.org_id, actor=ACTOR, action=e.action, target=e.target,
                             diff=e.diff)
            await session.commit()
    return write


def _target(org: str, team: str) -> str:
    return f"node:{org}/{team}"   # the team's node, as the config service's own entries name it


def _status(deployment: DeploymentConfig, actions: list[AuditRecord]) -> TeamStatus:
    kinds = {a.action for a in actions}
    if "add_group" in kinds:
        return "provisioned"
    if deployment.mode == "shared" and "retire_group" in kinds:
        return "drained"
    return "updated" if actions else "unchanged"


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500] or type(exc).__name__


class Reconciler:
    """Runs passes (:meth:`run_once`); remembers each failing team's last reason so a failure is
    audited once, not every pass."""

    def __init__(self, provisioner: Provisioner, configs: TeamConfigSource, *,
                 audit: AuditSink | None = None) -> None:
        self.provisioner, self.configs, self.audit = provisioner, configs, audit
        self._failing: dict[tuple[str, str], str] = {}

    async def desired(self) -> dict[tuple[str, str], DeploymentConfig | str]:
        """Team → its deployment, or the reason its config cannot be used."""
        out: dict[tuple[str, str], DeploymentConfig | str] = {}
        for org, team in await self.configs.team_ids():
            try:
                doc = await self.configs.read_doc(org, team)
                # Only the deployment section is kept; the rest of the document is dropped here.
                out[(org, team)] = DeploymentConfig.from_effective({"deployment": doc.get("deployment")})
            except ValueError as exc:   # pydantic's ValidationError and PlacementError are ValueErrors
                out[(org, team)] = f"invalid deployment config: {_reason(exc)}"
            except Exception as exc:  # noqa: BLE001 - one team's unreadable config must not stop the rest
                out[(org, team)] = f"cannot read the team's config: {_reason(exc)}"
        return out

    async def run_once(self) -> ReconcileResult:
        dry_run = self.provisioner.dry_run
        try:
            desired = await self.desired()
        except Exception as exc:  # noqa: BLE001 - the team list itself is unreadable
            return self._finish(ReconcileResult(error=f"cannot list teams: {_reason(exc)}", dry_run=dry_run))
        try:
            snapshot = await asyncio.to_thread(self.provisioner.get)
            live = {(r.org, r.team) for r in provisioned_groups(snapshot).values()}
        except (ProvisionError, ValueError) as exc:
            return self._finish(ReconcileResult(error=_reason(exc), dry_run=dry_run))

        outcomes = []
        for org, team in sorted(set(desired) | live):
            wanted = desired.get((org, team), SHARED)
            gone = (org, team) not in desired
            outcome = await self._team(snapshot, org, team, wanted)
            if gone and outcome.status == "drained":
                outcome = TeamOutcome(org, team, outcome.mode, "drained", outcome.actions,
                                      "the team is no longer in the config service")
            outcomes.append(outcome)
            if not dry_run:
                await self._record(outcome)
        return self._finish(ReconcileResult(outcomes=tuple(outcomes), dry_run=dry_run))

    async def _team(self, snapshot: dict[str, Any], org: str, team: str,
                    wanted: DeploymentConfig | str) -> TeamOutcome:
        if isinstance(wanted, str):
            return TeamOutcome(org, team, "", "failed", reason=wanted)
        try:
            plan = plan_team(snapshot, org=org, team=team, deployment=wanted,
                             now=self.provisioner.clock(), drain_s=self.provisioner.drain_s)
            if not plan.actions:
                return TeamOutcome(org, team, wanted.mode, "unchanged")
            result = await asyncio.to_thread(self.provisioner.provision, org=org, team=team,
                                             deployment=wanted)
        except Exception as exc:  # noqa: BLE001 - whatever breaks one team must not stop the others
            return TeamOutcome(org, team, wanted.mode, "failed", reason=_reason(exc))
        return TeamOutcome(org, team, wanted.mode, _status(wanted, result.actions), tuple(result.actions),
                           "back to shared" if wanted.mode == "shared" and result.actions else "")

    async def _record(self, outcome: TeamOutcome) -> None:
        key, target = (outcome.org, outcome.team), _target(outcome.org, outcome.team)
        entries = [AuditEntry(outcome.org, AUDIT_ACTIONS.get(a.action, f"worker_group.{a.action}"), target,
                              {"group": a.group, "rayservice": a.target, "resource_version": a.resource_version,
                               "mode": outcome.mode, **a.details})
                   for a in outcome.actions]
        if outcome.status == "failed":
            if self._failing.get(key) != outcome.reason:
                entries.append(AuditEntry(outcome.org, FAILED_ACTION, target,
                                          {"reason": outcome.reason, "mode": outcome.mode}))
            self._failing[key] = outcome.reason
        else:
            self._failing.pop(key, None)
        if outcome.status != "unchanged":
            metrics.WORKER_GROUP_CHANGES_TOTAL.inc(outcome=outcome.status)
        if entries and self.audit is not None:
            try:
                await self.audit(entries)
            except Exception:
                log.exception("writing the audit entries of %s/%s failed", outcome.org, outcome.team)
                if outcome.status == "failed":
                    self._failing.pop(key, None)   # try to record the failure again next pass

    def _finish(self, result: ReconcileResult) -> ReconcileResult:
        if result.error and not result.dry_run:
            metrics.WORKER_GROUP_CHANGES_TOTAL.inc(outcome="error")
        summary = result.summary()
        if result.error or summary["failed_teams"] or any(summary[s] for s in ("provisioned", "drained", "updated")):
            log.info(json.dumps(summary, sort_keys=True))
        return result
