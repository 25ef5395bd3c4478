"""The seeded demo world: a scenario (see :mod:`actors.tools.demo.scenarios`) made concrete.

:func:`build_world` is deterministic for ``(scenario, now, seed)`` and cached, so every tool call of a
run (and every run in a process) sees the same world. Entities follow the evidence conventions:
metrics, logs, GitHub changes and topology use service names (``checkout``, ``postgres``);
Kubernetes objects carry namespace/kind/name (rollouts: ``shop/deployment/checkout``, pod logs:
``shop/pod/<pod>``).

:func:`incident_bundles` is what the evaluation harness reads: for every scenario, the bundle the
offline planner's playbooks gather from this world, plus the expected root-cause service.

Worlds are cached and shared, and tool results carry the world's evidence objects without copying
(copies would cost more than the rest of a demo call): treat evidence as read-only.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from actors.tools.demo.scenarios import (
    BASELINE,
    DATABASE,
    DEFAULT_SCENARIO,
    HISTORY,
    NAMESPACE,
    NOISE_LOGS,
    REGISTRY,
    REPLICAS,
    SCENARIOS,
    SERVICES,
    TOPOLOGY,
    Deploy,
    Scenario,
)
from incidentfox.evidence import (
    Alert,
    ChangeEvent,
    EvidenceBundle,
    K8sEvent,
    LogLine,
    MetricSeries,
    ObjectState,
    TopologyEdge,
)

HISTORY_MIN = 180  # minutes of metrics kept before ``now``
STEP_S = 60
UNITS = {
    "latency_p99": "s",
    "error_rate": "ratio",
    "requests": "req/s",
    "cpu": "cores",
    "memory": "MiB",
    "connections": "count",
    "free_storage_gb": "GB",
}
_LEVEL_WORD = {"fatal": "FATAL", "error": "ERROR", "warning": "WARN", "info": "INFO", "debug": "DEBUG"}
# A fixed instant for reproducible evaluation bundles.
EVAL_NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)


@dataclass(frozen=True)
class World:
    scenario: Scenario
    now: datetime
    alert: Alert
    topology: tuple[TopologyEdge, ...]
    pods: tuple[ObjectState, ...]
    deployments: tuple[ObjectState, ...]
    nodes: tuple[ObjectState, ...]
    rollouts: tuple[ChangeEvent, ...]
    events: tuple[K8sEvent, ...]
    series: tuple[MetricSeries, ...]
    logs: tuple[LogLine, ...]
    commits: tuple[ChangeEvent, ...]
    gh_deployments: tuple[ChangeEvent, ...]
    pull_requests: tuple[ChangeEvent, ...]
    databases: tuple[ObjectState, ...]
    instances: tuple[ObjectState, ...]
    slack: tuple[dict, ...]


def _hash(*parts: object, n: int = 10) -> str:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 2 * n, 2))


def _revisions(sc: Scenario, now: datetime) -> dict[str, list[tuple[int, str, str, datetime, Deploy | None]]]:
    """Per service: ``(revision, version, image, at, scenario deploy or None)``, oldest first."""
    out: dict[str, list] = {}
    for svc in SERVICES:
        revs = [
            (i + 1, v, f"{REGISTRY}/{svc}:{v}", now - timedelta(days=d), None)
            for i, (v, d) in enumerate(HISTORY[svc])
        ]
        for dep in sorted((d for d in sc.deploys if d.service == svc), key=lambda d: -d.minutes_ago):
            revs.append(
                (
                    len(revs) + 1,
                    dep.version,
                    dep.image or f"{REGISTRY}/{svc}:{dep.version}",
                    now - timedelta(minutes=dep.minutes_ago),
                    dep,
                )
            )
        out[svc] = revs
    return out


def _value(
    sc: Scenario, svc: str, metric: str, minutes_ago: float, rng: random.Random, baseline: bool
) -> float:
    base = BASELINE[svc][metric]
    level = base
    if not baseline:
        for a in sc.anomalies:
            if a.service != svc or a.metric != metric:
                continue
            onset = a.onset_min if a.onset_min is not None else sc.onset_min
            since = onset - minutes_ago  # minutes since onset
            if since < 0:
                continue
            if a.shape == "sawtooth":  # climb to the limit, get killed, restart
                level = base + (a.value - base) * ((since % 3.5) / 3.5)
            else:
                level = base + (a.value - base) * min(1.0, since / 1.5)
    noise = 1.0 + rng.gauss(0.0, 0.04)
    if metric == "free_storage_gb":
        noise = 1.0 + rng.gauss(0.0, 0.002)
    return max(0.0, level * noise)


def _series(sc: Scenario, now: datetime, rng: random.Random) -> list[MetricSeries]:
    out = []
    points = range(HISTORY_MIN * 60 // STEP_S, -1, -1)
    for svc, metrics in BASELINE.items():
        for metric in metrics:
            for baseline in (False, True):
                stamps = [(now - timedelta(seconds=i * STEP_S)).timestamp() for i in points]
                values = [round(_value(sc, svc, metric, i * STEP_S / 60.0, rng, baseline), 6) for i in points]
                out.append(
                    MetricSeries(
                        entity=svc,
                        metric=metric,
                        statistic="p99" if metric == "latency_p99" else "",
                        unit=UNITS[metric],
                        timestamps=stamps,
                        values=values,
                        baseline=baseline,
                    )
                )
    return out


def _logs(sc: Scenario, now: datetime, rng: random.Random) -> list[LogLine]:
    out = []
    for n, pat in enumerate((*NOISE_LOGS, *sc.logs)):
        onset = pat.onset_min if pat.onset_min is not None else sc.onset_min
        t = now - timedelta(minutes=onset) + timedelta(seconds=rng.uniform(0, pat.every_s / 2))
        end = now - timedelta(minutes=pat.until_min)
        while t <= end:
            text = pat.text.replace("{n}", str(100000 + n * 1000 + len(out)))
            out.append(
                LogLine(entity=pat.service, level=pat.level, at=t, text=f"{_LEVEL_WORD[pat.level]} {text}")
            )
            t += timedelta(seconds=pat.every_s * rng.uniform(0.8, 1.2))
    out.sort(key=lambda ln: ln.at, reverse=True)
    return out


def _k8s(sc: Scenario, now: datetime, revs: dict) -> tuple[list, list, list, list]:
    pods, deployments, rollouts, events = [], [], [], []
    troubles = {t.service: t for t in sc.pods}
    for svc in SERVICES:
        history = revs[svc]
        rev, _version, image, at, deploy = history[-1]
        rs_new = f"{svc}-{_hash(svc, rev, n=10)}"
        trouble = troubles.get(svc)
        replicas = REPLICAS[svc]
        groups: list[tuple[str, str, int, datetime, bool]] = []  # (rs, image, count, created, troubled)
        if trouble and trouble.new_revision:
            prev = history[-2]
            groups.append((f"{svc}-{_hash(svc, prev[0], n=10)}", prev[2], replicas, prev[3], False))
            groups.append((rs_new, image, trouble.pods or 1, at, True))
        else:
            groups.append((rs_new, image, replicas, at, trouble is not None))
        ready_total = 0
        for rs, img, count, created, troubled in groups:
            for i in range(count):
                name = f"{rs}-{_hash(rs, i, n=5)}"
                bad = troubled and (trouble.pods is None or i < trouble.pods)
                ready = not bad or trouble.ready
                ready_total += int(ready and not (bad and trouble.status != "Running"))
                pods.append(
                    ObjectState(
                        namespace=NAMESPACE,
                        kind="Pod",
                        name=name,
                        status=trouble.status if bad else "Running",
                        ready=f"{int(ready)}/1",
                        restarts=(trouble.restarts - i % 2) if bad and trouble.restarts else 0,
                        reasons=list(trouble.reasons) if bad else [],
                        image=img,
                        message=trouble.message if bad else "",
                        owner=f"deployment/{svc}",
                        extra={
                            "node": f"ip-10-0-{1 + i % 3}-{20 + i}.ec2.internal",
                            "labels": {"app": svc},
                            "started_at": created.isoformat(),
                        },
                    )
                )
        reasons = list(sc.deployment_reasons.get(svc, ()))
        if ready_total < replicas:
            reasons.append("MinimumReplicasUnavailable")
        deployments.append(
            ObjectState(
                namespace=NAMESPACE,
                kind="Deployment",
                name=svc,
                ready=f"{min(ready_total, replicas)}/{replicas}",
                status="Available" if ready_total >= max(1, replicas - 1) else "Unavailable",
                reasons=reasons,
                image=image,
                extra={"revision": str(rev), "images": [image]},
            )
        )
        for r, v, img, when, dep in history:
            change = f" ({dep.change})" if dep else ""
            rollouts.append(
                ChangeEvent(
                    entity=f"{NAMESPACE}/deployment/{svc}",
                    kind="deploy",
                    at=when,
                    description=f"{svc} revision {r}: {img}{change}",
                    ref=f"revision {r}",
                )
            )
        for ev in (e for e in sc.events if e.service == svc):
            mine = [p.name for p in pods if p.owner == f"deployment/{svc}"]
            troubled = [p.name for p in pods if p.owner == f"deployment/{svc}" and p.reasons]
            pod = (troubled or [n for n in mine if n.startswith(rs_new)] or mine)[0]
            kind_name = {"Pod": pod, "Deployment": svc, "ReplicaSet": rs_new}[ev.kind]
            events.append(
                K8sEvent(
                    namespace=NAMESPACE,
                    kind=ev.kind,
                    name=kind_name,
                    type=ev.type,
                    reason=ev.reason,
                    message=ev.message.format(rs=rs_new, pod=pod),
                    count=ev.count,
                    at=now - timedelta(minutes=ev.minutes_ago),
                )
            )
        if deploy is not None:
            events.append(
                K8sEvent(
                    namespace=NAMESPACE,
                    kind="Deployment",
                    name=svc,
                    type="Normal",
                    reason="ScalingReplicaSet",
                    message=f"Scaled up replica set {rs_new} to 1",
                    at=at,
                )
            )
    rollouts.sort(key=lambda c: c.at, reverse=True)
    events.sort(key=lambda e: e.at, reverse=True)
    return pods, deployments, rollouts, events


def _github(sc: Scenario, now: datetime, revs: dict) -> tuple[list, list, list]:
    commits, deploys, prs = [], [], []
    for svc in SERVICES:
        for r, version, _img, at, dep in revs[svc]:
            sha = hashlib.sha1(f"{svc}{version}".encode()).hexdigest()[:12]
            message = dep.change if dep else f"{svc}: release {version}"
            author = dep.author if dep else "release-bot"
            commits.append(
                ChangeEvent(
                    entity=svc,
                    kind="commit",
                    description=message,
                    at=at - timedelta(minutes=25),
                    author=author,
                    ref=sha,
                )
            )
            deploys.append(
                ChangeEvent(
                    entity=svc,
                    kind="deploy",
                    at=at,
                    author=author,
                    ref=sha,
                    description=f"deploy {version} to production: {message} [success]",
                )
            )
            if dep:
                prs.append(
                    ChangeEvent(
                        entity=svc,
                        kind="pull_request",
                        at=at - timedelta(minutes=20),
                        author=author,
                        description=f"#{400 + r} {message} (merged)",
                        ref=f"https://github.com/acme/{svc}/pull/{400 + r}",
                    )
                )
    commits.append(
        ChangeEvent(
            entity="frontend",
            kind="commit",
            description="docs: update README badges",
            at=now - timedelta(minutes=95),
            author="alex",
            ref="9f1c2e3d4b5a",
        )
    )
    for lst in (commits, deploys, prs):
        lst.sort(key=lambda c: c.at, reverse=True)
    return commits, deploys, prs


@lru_cache(maxsize=16)
def build_world(scenario: str = DEFAULT_SCENARIO, *, now: datetime = EVAL_NOW, seed: int = 7) -> World:
    """The world for ``scenario`` as seen at ``now`` (``KeyError`` for an unknown scenario)."""
    sc = SCENARIOS[scenario]
    rng = random.Random(f"{scenario}:{seed}")
    revs = _revisions(sc, now)
    pods, deployments, rollouts, events = _k8s(sc, now, revs)
    commits, gh_deploys, prs = _github(sc, now, revs)
    nodes = tuple(
        ObjectState(
            kind="Node",
            name=f"ip-10-0-{i}-{20 + i}.ec2.internal",
            status="Ready",
            extra={"kubelet": "v1.30.4"},
        )
        for i in range(1, 4)
    )
    instances = tuple(
        ObjectState(
            kind="EC2Instance",
            name=f"i-0{_hash('node', i, n=16)}",
            status="running",
            extra={"az": f"us-east-1{'abc'[i % 3]}"},
        )
        for i in range(3)
    )
    db_bad = sc.rds_status != "available"
    databases = (
        ObjectState(
            kind="DBInstance",
            name=DATABASE,
            status=sc.rds_status,
            reasons=[sc.rds_status] if db_bad else [],
            extra={"engine": "postgres", "class": "db.m6g.large", "storage_gb": 100, "multi_az": True},
        ),
    )
    alert_at = now - timedelta(minutes=sc.alert_min)
    slack = tuple(
        {
            "user": f"U0{i + 1}DEMO{i}",
            "ts": f"{(alert_at + timedelta(minutes=1 + i)).timestamp():.6f}",
            "text": text,
        }
        for i, text in enumerate(sc.slack)
    )
    return World(
        scenario=sc,
        now=now,
        alert=Alert(
            title=sc.alert_title,
            entity=sc.alert_entity,
            metric=sc.alert_metric,
            started_at=alert_at,
            labels={"service": sc.alert_entity, "namespace": NAMESPACE, "severity": "critical"},
            text=sc.alert_title,
        ),
        topology=tuple(TopologyEdge(caller=a, callee=b) for a, b in TOPOLOGY),
        pods=tuple(pods),
        deployments=tuple(deployments),
        nodes=nodes,
        rollouts=tuple(rollouts),
        events=tuple(events),
        series=tuple(_series(sc, now, rng)),
        logs=tuple(_logs(sc, now, rng)),
        commits=tuple(commits),
        gh_deployments=tuple(gh_deploys),
        pull_requests=tuple(prs),
        databases=databases,
        instances=instances,
        slack=slack,
    )


def world_anchor(now: datetime) -> datetime:
    """Worlds are anchored to whole minutes so concurrent tool calls of one run share one world."""
    return now.replace(second=0, microsecond=0)


def incident_bundles() -> list[tuple[str, EvidenceBundle, str]]:
    """``(case name, full bundle, expected root-cause entity)`` for every scenario, as the offline
    planner's default playbooks gather it from the demo backend (no simulated latency)."""
    from actors.tools.demo.backend import answer
    from actors.tools.playbooks import playbook
    from incidentfox.contracts import SUBAGENTS

    cases = []
    for name, sc in SCENARIOS.items():
        world = build_world(name, now=EVAL_NOW)
        bundle = EvidenceBundle(alert=world.alert)
        for sub in SUBAGENTS:
            for tool, args in playbook(sub, services=[sc.alert_entity], window=60):
                bundle = bundle.merge(answer(tool, args, world).evidence)
        cases.append((f"demo/{name}", bundle, sc.root_cause))
    return cases
