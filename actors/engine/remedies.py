"""Proposed fixes: the top cause's known remedy as a typed :class:`ProposedAction`. Pure.

:func:`propose_actions` reads only the ranking's typed findings and the evidence bundle's typed
objects and changes (what the Kubernetes, metrics and change tools returned as structured data),
never a log line, a quote or model text: a prompt-injected log line can neither create an action nor
pick its target. At most one action, for the top suspect, when it reaches the blame threshold.
Rules, first match wins:

| top cause | action | mutating tool call |
| --- | --- | --- |
| a Kubernetes deploy (rollout history ``revision N``) shortly before the alert | ``rollback`` | ``kubernetes_rollback_deployment`` to the revision before N, only while the deployment is still at N |
| a commit or merged pull request (of a known GitHub repository) shortly before the alert | ``revert`` | ``github_open_revert_pr``: a pull request reverting the commit (a merged PR: its merge commit); merging it is the human step. Without a known repository and commit it is shown, not approvable |
| a crash-looping, unready or probe-failing deployment's pods | ``restart`` | ``kubernetes_restart_deployment`` |
| a saturation anomaly (CPU, throttling, saturation, connections, queue) of a deployment | ``scale`` | ``kubernetes_scale_deployment`` to desired + ⌈desired/2⌉ (at most 200) |

A rule whose tool is not in the team's allow-list (mutating tools are only on when named in
``tools``) proposes nothing. Actions then run only after an allowed approver approves them
(:mod:`actors.engine.actions`).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Collection

from actors.ranking.entities import parse_entity, same_workload
from actors.ranking.model import ANOMALY, Finding, Ranking, Suspect
from actors.ranking.no_incident import MIN_BLAME
from incidentfox.contracts import ProposedAction
from incidentfox.evidence import EvidenceBundle, ObjectState

ROLLBACK_TOOL = "kubernetes_rollback_deployment"
RESTART_TOOL = "kubernetes_restart_deployment"
SCALE_TOOL = "kubernetes_scale_deployment"
REVERT_TOOL = "github_open_revert_pr"
MAX_REPLICAS = 200
STUCK_KINDS = ("crash_loop", "unready", "probe_failed", "container_error")
_SATURATION = re.compile(r"cpu|throttl|saturat|connection|queue|pool", re.IGNORECASE)
_REVISION = re.compile(r"^revision (\d+)$")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")


def new_action_id() -> str:
    return "act_" + uuid.uuid4().hex


def _deployment(bundle: EvidenceBundle, entity: str) -> ObjectState | None:
    """The Deployment object (from the bundle) that ``entity`` is, or is a pod of."""
    for o in bundle.objects:
        if o.kind == "Deployment" and o.name and same_workload(entity, f"{o.namespace}/deployment/{o.name}"):
            return o
    ref = parse_entity(entity)
    if ref.kind == "deployment" and ref.namespace:
        return ObjectState(namespace=ref.namespace, kind="Deployment", name=ref.name)
    return None


def _revisions(bundle: EvidenceBundle, entity: str) -> list[int]:
    out = []
    for c in bundle.changes:
        m = _REVISION.match(c.ref)
        if c.entity == entity and m:
            out.append(int(m.group(1)))
    return out


def _rollback(f: Finding, bundle: EvidenceBundle, new_id: Callable[[], str]) -> ProposedAction | None:
    m = _REVISION.match(str(f.details.get("ref") or ""))
    ref = parse_entity(f.entity)
    if f.details.get("change_kind") not in ("deploy", "rollback") or not m or ref.kind != "deployment" \
            or not ref.namespace:
        return None
    current = int(m.group(1))
    earlier = [r for r in _revisions(bundle, f.entity) if r < current]
    to = max(earlier) if earlier else None
    dest = f"revision {to}" if to else "the revision before it"
    return ProposedAction(
        id=new_id(), kind="rollback", target=f.entity, tool=ROLLBACK_TOOL,
        arguments={"namespace": ref.namespace, "deployment": ref.name, "to_revision": to,
                   "expected_revision": current},
        effect=(f"Roll back deployment {ref.namespace}/{ref.name} from revision {current} to {dest}: its pod "
                f"template is replaced by that revision's and its pods are rolled out again. Nothing changes "
                f"if it is no longer at revision {current}."))


def _revert(f: Finding, new_id: Callable[[], str]) -> ProposedAction | None:
    if f.details.get("change_kind") not in ("commit", "pull_request") or not f.details.get("ref"):
        return None
    ref, repo = str(f.details["ref"]), str(f.details.get("repo") or "")
    sha = str(f.details.get("sha") or (ref if f.details["change_kind"] == "commit" else ""))
    action_id = new_id()
    if not repo or not _SHA.fullmatch(sha):
        return ProposedAction(
            id=action_id, kind="revert", target=f.entity, tool=None, arguments={"ref": ref},
            effect=(f"Revert {ref} in {f.entity}'s repository. IncidentFox cannot open the pull request: the "
                    "change evidence names no GitHub repository and commit; revert it by hand."))
    return ProposedAction(
        id=action_id, kind="revert", target=f.entity, tool=REVERT_TOOL,
        arguments={"repo": repo, "sha": sha, "action_id": action_id, "rca_link": None},
        effect=(f"Open a pull request in {repo} that reverts commit {sha[:7]} on the default branch (through the "
                "team's GitHub App; refused, with nothing written, when the branch has changed the same files "
                "since). Merging it is a separate, human step, recorded with who merged it."))


def _restart(s: Suspect, bundle: EvidenceBundle, new_id: Callable[[], str]) -> ProposedAction | None:
    if not any(f.kind in STUCK_KINDS for f in s.findings):
        return None
    dep = _deployment(bundle, s.entity)
    if dep is None:
        return None
    return ProposedAction(
        id=new_id(), kind="restart", target=f"{dep.namespace}/deployment/{dep.name}", tool=RESTART_TOOL,
        arguments={"namespace": dep.namespace, "deployment": dep.name},
        effect=(f"Rolling restart of deployment {dep.namespace}/{dep.name} (like `kubectl rollout restart`): "
                "its pods are replaced one by one with the same spec."))


def _scale(s: Suspect, bundle: EvidenceBundle, new_id: Callable[[], str]) -> ProposedAction | None:
    saturated = [f for f in s.findings if f.signal == ANOMALY or ANOMALY in (f.details.get("signals") or ())]
    if not any(_SATURATION.search(str(f.details.get("metric") or "")) for f in saturated):
        return None
    dep = _deployment(bundle, s.entity)
    desired = _desired(dep) if dep is not None else None
    if dep is None or not desired:
        return None
    to = min(MAX_REPLICAS, desired + math.ceil(desired / 2))
    if to <= desired:
        return None
    return ProposedAction(
        id=new_id(), kind="scale", target=f"{dep.namespace}/deployment/{dep.name}", tool=SCALE_TOOL,
        arguments={"namespace": dep.namespace, "deployment": dep.name, "replicas": to},
        effect=f"Scale deployment {dep.namespace}/{dep.name} from {desired} to {to} replicas.")


def _desired(dep: ObjectState) -> int | None:
    _, _, total = dep.ready.partition("/")
    return int(total) if total.isdigit() else None


def propose_actions(ranking: Ranking, bundle: EvidenceBundle, *, allowed: Collection[str],
                    new_id: Callable[[], str] = new_action_id) -> list[ProposedAction]:
    """The top cause's remedy (see the module doc), or nothing."""
    if ranking.no_incident or not ranking.suspects:
        return []
    top = ranking.suspects[0]
    if top.score < MIN_BLAME:
        return []
    for f in top.findings:
        if f.kind == "recent_change":
            action = _rollback(f, bundle, new_id) or _revert(f, new_id)
            if action is not None:
                return [action] if action.tool is None or action.tool in allowed else []
    for rule in (_restart, _scale):
        action = rule(top, bundle, new_id)
        if action is not None:
            return [action] if action.tool in allowed else []
    return []


def agreeing(actions: list[ProposedAction], cause_entity: str | None) -> list[ProposedAction]:
    """The actions whose target is the (model-written) top cause's entity or its workload: the LLM
    planner's RCA gets a proposal only where the deterministic ranking agrees with it."""
    if not cause_entity:
        return []
    return [a for a in actions if same_workload(a.target, cause_entity)
            or parse_entity(a.target).name == parse_entity(cause_entity).name]
