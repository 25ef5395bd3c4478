"""Kubernetes state: what the objects and events say is broken, with the line that explains it.

Rules (score, finding kind):

* ``OOMKilled`` (current or last state, or an ``OOMKilling`` event) → ``oom_killed`` 0.9, quoting
  the container's memory limit.
* ``CrashLoopBackOff`` → ``crash_loop`` 0.8, explained by the container's termination message, a
  ``Failed`` warning event, or the pod's last error log line. An ``exec: "x": executable file not
  found`` explanation records the missing command and the closest entry of
  :data:`COMMON_EXECUTABLES` (narrow by design: a typo of an application's own binary gets no
  suggestion, only the missing name).
* ``ImagePullBackOff`` / ``ErrImagePull`` / ``InvalidImageName`` → ``image_pull`` 0.85 with the image.
* ``FailedScheduling`` warning events → ``failed_scheduling`` 0.8, with the resources the scheduler
  found insufficient (``Insufficient cpu``, ``Insufficient nvidia.com/gpu``: any ``*gpu*`` extended
  resource → GPU); × ``CAUSED`` when the pod waits on an
  unbound PersistentVolumeClaim that is itself failing (the claim is the cause).
* A PersistentVolumeClaim not bound (``Pending``/``Lost``) with a ``ProvisioningFailed`` /
  ``FailedBinding`` warning → ``volume_claim_unbound`` 0.85 (0.6 on the phase alone), quoting the
  warning (e.g. a storage class that does not exist) and naming the pods it holds back
  (``explains``: pods that mount it, else pods whose scheduling failed on an unbound claim).
* A failed job (``BackoffLimitExceeded``/``DeadlineExceeded`` or only failed pods) →
  ``job_failed`` 0.85, explained by its pods' last error log line.
* A message-broker node's warnings (``NetworkPartition`` 0.7; ``NodeDown``, ``MemoryAlarm``,
  ``DiskAlarm`` 0.6) on the pod that runs it.
* A GitOps application (Argo CD) whose last sync failed → ``sync_failed`` 0.8 with the operation's
  message; one only unhealthy or missing → ``app_unhealthy`` 0.5.
* Container errors (``Error``, ``StartError``, ``CreateContainerConfigError``…) → 0.6; failed
  mounts, evictions → 0.6; failing probes → 0.45; a deployment short of available replicas → 0.45;
  an unready or pending pod → 0.35.

Objects seen only in a namespace listing (``extra.source == "listing"``) carry less detail and
weigh ``LISTING``; a termination only in the *last* state of a pod now running and ready weighs
``PAST`` (``OOMKilled`` keeps more).
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Callable

from actors.ranking.entities import format_entity, parse_entity, same_workload
from actors.ranking.logs import dependency_of, explaining_line, is_error
from actors.ranking.model import K8S_STATE, Finding
from incidentfox.contracts import Evidence
from incidentfox.evidence import EvidenceBundle, K8sEvent, LogLine, ObjectState

LISTING = 0.6
PAST = 0.3
CAUSED = 0.5          # a pod held back by an unbound claim: the claim is the cause, the pod a symptom
CLAIM = "persistentvolumeclaim"
_CLAIM_FAILURES = {"ProvisioningFailed", "FailedBinding", "ClaimLost"}
# Warnings a broker's health check raises about the pod running a node (actors/tools/rabbitmq.py).
BROKER = {"NetworkPartition": ("network_partition", 0.7), "NodeDown": ("node_down", 0.6),
          "MemoryAlarm": ("memory_alarm", 0.6), "DiskAlarm": ("disk_alarm", 0.6)}
_UNBOUND = re.compile(r"(?i)unbound\b.*persistentvolumeclaim")
_IMAGE = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
_CONTAINER_ERRORS = {"Error", "StartError", "ContainerCannotRun", "CreateContainerConfigError",
                     "CreateContainerError", "RunContainerError"}
_EXEC_NOT_FOUND = re.compile(r'exec: "([^"]+)": executable file not found')
_INSUFFICIENT = re.compile(r"Insufficient ([\w./-]*\w)")
_IMAGE_IN_TEXT = re.compile(r'image "([^"]+)"')
_FRIENDLY = {"cpu": "CPU", "memory": "memory",
             "ephemeral-storage": "ephemeral storage", "pods": "pod slots"}
COMMON_EXECUTABLES = ("sh", "bash", "wget", "curl", "python", "python3", "node", "java", "nginx", "env",
                      "echo", "cat", "sleep", "ls", "cp", "mv", "tar", "gzip", "git", "npm", "pip", "ruby",
                      "perl", "php", "go", "dotnet", "grep", "sed", "awk", "kubectl", "psql", "mysql")


def _entity(o: ObjectState | K8sEvent) -> str:
    return format_entity(o.namespace, o.kind, o.name)


def _state_quote(o: ObjectState, c: dict | None) -> str:
    parts = [f"{_entity(o)}"]
    if c:
        if c.get("state"):
            parts.append(f"container {c['name']} State: {c['state']}" + (f" ({c['reason']})" if c.get("reason") else ""))
        if c.get("last_reason"):
            parts.append(f"Last State: {c.get('last_state') or 'Terminated'} ({c['last_reason']}"
                         + (f", exit code {c['exit_code']}" if c.get("exit_code") else "") + ")")
        if c.get("restarts"):
            parts.append(f"restarts {c['restarts']}")
    else:
        parts.append(f"status {o.status}" + (f", ready {o.ready}" if o.ready else "")
                     + (f", restarts {o.restarts}" if o.restarts else "") + (f", reasons {', '.join(o.reasons)}"
                                                                            if o.reasons else ""))
    return "; ".join(parts)


def _containers(o: ObjectState) -> list[dict]:
    return [c for c in o.extra.get("containers", []) if isinstance(c, dict)]


def _focus(o: ObjectState, reasons: set[str]) -> dict | None:
    return next((c for c in _containers(o) if c.get("reason") in reasons or c.get("last_reason") in reasons), None)


def _only_past(o: ObjectState, reason: str) -> bool:
    c = _focus(o, {reason})
    return (c is not None and c.get("reason") != reason and o.status == "Running"
            and bool(o.ready) and o.ready.split("/")[0] == o.ready.split("/")[-1])


def suggest_executable(cmd: str) -> str:
    """The common executable ``cmd`` is likely a typo of (a path keeps its directory), or ""."""
    directory, _, name = cmd.rpartition("/")
    match = difflib.get_close_matches(name, COMMON_EXECUTABLES, n=1, cutoff=0.75)
    if not match or match[0] == name:
        return ""
    return f"{directory}/{match[0]}" if directory else match[0]


def friendly_resource(resource: str) -> str:
    """A scheduler resource name for people: any ``*/gpu`` extended resource (``nvidia.com/gpu``,
    ``amd.com/gpu``, ``gpu.intel.com/i915``) is a GPU; ``cpu``, ``memory``… are spelt out."""
    if resource in _FRIENDLY:
        return _FRIENDLY[resource]
    return "GPU" if "gpu" in resource.lower() else resource


def _explain(entity: str, o: ObjectState | None, events: list[K8sEvent], logs: list[LogLine]) -> tuple[Evidence | None, dict]:
    """The termination message, failed event or log line that explains a crash."""
    details: dict = {}
    msg = o.message if o is not None else ""
    ev = next((e for e in events if e.type == "Warning" and e.reason == "Failed" and e.message), None)
    line = explaining_line(ln for ln in logs if same_workload(ln.entity, entity))
    text, evidence = "", None
    if msg:
        text, evidence = msg, Evidence(kind="state", source=K8S_STATE, quote=msg)
    elif ev is not None:
        text, evidence = ev.message, Evidence(kind="event", source=K8S_STATE, quote=f"{ev.reason}: {ev.message}", at=ev.at)
    elif line is not None:
        text, evidence = line.text, Evidence(kind="log", source=K8S_STATE, quote=line.text.strip()[:400], at=line.at)
    m = _EXEC_NOT_FOUND.search(text)
    if m:
        details["missing_executable"] = m.group(1)
        details["suggested_executable"] = suggest_executable(m.group(1))
    if text:
        details["explanation"] = text.strip()[:400]
        if dep := dependency_of(text):
            details["dependency"] = dep
    return evidence, details


def _events_by_entity(events: list[K8sEvent]) -> dict[str, list[K8sEvent]]:
    out: dict[str, list[K8sEvent]] = defaultdict(list)
    seen = set()
    for e in events:
        key = (_entity(e), e.reason, e.message)
        if key not in seen:
            seen.add(key)
            out[key[0]].append(e)
    return out


def k8s_findings(bundle: EvidenceBundle) -> list[Finding]:
    events = _events_by_entity(bundle.events)
    objects = {_entity(o): o for o in sorted(bundle.objects, key=lambda o: o.extra.get("source") != "listing")}
    out: list[Finding] = []

    def add(entity: str, kind: str, score: float, summary: str, evidence: list[Evidence | None], **details: object) -> None:
        o = objects.get(entity)
        if o is not None and o.extra.get("source") == "listing":
            score *= LISTING
        out.append(Finding(entity=entity, signal=K8S_STATE, kind=kind, score=round(min(score, 1.0), 4),
                           summary=summary, evidence=[e for e in evidence if e is not None], details=details))

    claims = _failing_claims(objects, events)
    for entity in sorted(set(objects) | set(events)):
        o, evs = objects.get(entity), events.get(entity, [])
        reasons = set(o.reasons) if o else set()
        warn = [e for e in evs if e.type == "Warning"]
        ev_reasons = {e.reason for e in warn}
        if "OOMKilled" in reasons or "OOMKilling" in ev_reasons:
            c = _focus(o, {"OOMKilled"}) if o else None
            limit = (c or {}).get("limits", {}).get("memory", "") if c else ""
            past = o is not None and _only_past(o, "OOMKilled")
            add(entity, "oom_killed", 0.9 * (0.7 if past else 1.0),
                f"{entity} was OOMKilled" + (f" (memory limit {limit})" if limit else "")
                + (f", container {c['name']} restarting ({c.get('restarts', 0)} restarts)" if c else ""),
                [Evidence(kind="state", source=K8S_STATE, quote=_state_quote(o, c)) if o else None],
                memory_limit=limit, container=(c or {}).get("name", ""))
        # The kubelet's BackOff event is either "Back-off restarting failed container" (a crash loop)
        # or "Back-off pulling image" (an image problem, handled below).
        restart_backoff = any(e.reason == "BackOff" and "pull" not in e.message.lower() for e in warn)
        if "CrashLoopBackOff" in reasons or (restart_backoff and "OOMKilled" not in reasons
                                              and not reasons & _IMAGE):
            c = _focus(o, {"CrashLoopBackOff"}) if o else None
            ev_q, det = _explain(entity, o, evs, bundle.logs)
            why = "OOMKilled" if "OOMKilled" in reasons else det.get("explanation", "")
            backoff = next((e for e in warn if e.reason == "BackOff" and "pull" not in e.message.lower()), None)
            add(entity, "crash_loop", 0.8,
                f"{entity} is in CrashLoopBackOff" + (f": {why[:200]}" if why else ""),
                [Evidence(kind="state", source=K8S_STATE, quote=_state_quote(o, c)) if o else None, ev_q,
                 Evidence(kind="event", source=K8S_STATE, quote=f"BackOff: {backoff.message} (x{backoff.count})")
                 if backoff else None],
                container=(c or {}).get("name", ""), command=(c or {}).get("command", []), **det)
        elif reasons & _CONTAINER_ERRORS:
            ev_q, det = _explain(entity, o, evs, bundle.logs)
            reason = min(reasons & _CONTAINER_ERRORS)
            past = o is not None and _only_past(o, reason)
            add(entity, "container_error", 0.6 * (PAST if past else 1.0),
                f"{entity} container failed ({reason})" + (f": {det['explanation'][:200]}" if det.get("explanation") else ""),
                [Evidence(kind="state", source=K8S_STATE, quote=_state_quote(o, _focus(o, {reason}))) if o else None, ev_q],
                **det)
        if reasons & _IMAGE or any("pull" in e.message.lower() and e.reason in ("Failed", "BackOff") for e in warn):
            image = (o.image if o else "") or next((m.group(1) for e in warn if (m := _IMAGE_IN_TEXT.search(e.message))), "")
            failed = next((e for e in warn if e.reason == "Failed" and "pull" in e.message.lower()
                           and "Error:" not in e.message[:7]), None)
            add(entity, "image_pull", 0.85,
                f"{entity} cannot pull its image" + (f" {image}" if image else "")
                + (f": {failed.message[:200]}" if failed else ""),
                [Evidence(kind="state", source=K8S_STATE, quote=_state_quote(o, _focus(o, _IMAGE))) if o else None,
                 Evidence(kind="event", source=K8S_STATE, quote=f"Failed: {failed.message}", at=failed.at) if failed else None],
                image=image, pull_error=failed.message if failed else "")
        sched = [e for e in warn if e.reason == "FailedScheduling"]
        blockers = _blocking_claims(o, sched, claims) if sched else []
        if sched:
            resources = sorted({r for e in sched for r in _INSUFFICIENT.findall(e.message)})
            names = sorted({friendly_resource(r) for r in resources})
            add(entity, "failed_scheduling", 0.8 * (CAUSED if blockers else 1.0),
                f"{entity} cannot be scheduled" + (f": insufficient {' and '.join(names)} "
                                                   f"({', '.join(resources)}) on the nodes" if resources else "")
                + (f": its volume claim {', '.join(blockers)} is not bound" if blockers else "")
                + f" — {sched[0].message[:160]}",
                [Evidence(kind="event", source=K8S_STATE, quote=f"FailedScheduling: {sched[0].message}"
                          + (f" (x{sched[0].count})" if sched[0].count > 1 else ""), at=sched[0].at)],
                resources=resources, resource_names=names, message=sched[0].message, caused_by=blockers)
        if entity in claims:
            _claim_finding(entity, o, warn, claims[entity], add)
        if o is not None and o.kind.lower() == "job" and (o.status == "Failed" or
                                                 ev_reasons & {"BackoffLimitExceeded", "DeadlineExceeded"}):
            line = explaining_line(ln for ln in bundle.logs if same_workload(ln.entity, entity) and is_error(ln)) \
                or explaining_line(ln for ln in bundle.logs if same_workload(ln.entity, entity))
            why = next((e for e in warn if e.reason in ("BackoffLimitExceeded", "DeadlineExceeded")), None)
            add(entity, "job_failed", 0.85,
                f"job {entity} failed" + (f" ({why.reason}: {why.message})" if why else "")
                + (f"; its pods log: {line.text.strip()[:200]}" if line else ""),
                [Evidence(kind="event", source=K8S_STATE, quote=f"{why.reason}: {why.message}", at=why.at) if why else
                 Evidence(kind="state", source=K8S_STATE, quote=_state_quote(o, None)),
                 Evidence(kind="log", source=K8S_STATE, quote=line.text.strip()[:400], at=line.at) if line else None],
                dependency=dependency_of(line.text) if line else "", reason=why.reason if why else "")
        generic = {"FailedMount": ("failed_mount", 0.6), "Evicted": ("evicted", 0.6),
                   "Unhealthy": ("probe_failed", 0.45), "FailedCreate": ("failed_create", 0.5), **BROKER}
        for reason, (kind, score) in generic.items():
            e = next((e for e in warn if e.reason == reason), None)
            if e is not None:
                add(entity, kind, score, f"{entity}: {reason}: {e.message[:200]}",
                    [Evidence(kind="event", source=K8S_STATE, quote=f"{reason}: {e.message}", at=e.at)])
        if o is not None and o.kind.lower() == "application" and o.reasons:
            _application(entity, o, add)
        if o is not None and not any(f.entity == entity for f in out):
            _availability(o, entity, add)
    return out


def _failing_claims(objects: dict[str, ObjectState], events: dict[str, list[K8sEvent]]) -> dict[str, list[str]]:
    """PersistentVolumeClaims that are not bound (phase ``Pending``/``Lost`` or a provisioning or
    binding warning), each with the pods held back by it: pods that mount it, or, where a pod's
    volumes are unknown, pods of its namespace whose scheduling failed on an unbound claim."""
    claims = {e for e, o in objects.items() if o.kind.lower() == CLAIM and o.status in ("Pending", "Lost")}
    claims |= {e for e, evs in events.items() if parse_entity(e).kind == CLAIM
               and any(x.type == "Warning" and x.reason in _CLAIM_FAILURES for x in evs)}
    out: dict[str, list[str]] = {}
    for claim in sorted(claims):
        ref = parse_entity(claim)
        pods = []
        for e in sorted(set(objects) | set(events)):
            p = parse_entity(e)
            if p.kind.lower() != "pod" or p.namespace != ref.namespace:
                continue
            mounts = (objects[e].extra.get("claims") if e in objects else None)
            blocked = any(x.reason == "FailedScheduling" and _UNBOUND.search(x.message) for x in events.get(e, []))
            if (ref.name in mounts) if mounts else blocked:
                pods.append(e)
        out[claim] = pods
    return out


def _blocking_claims(o: ObjectState | None, sched: list[K8sEvent], claims: dict[str, list[str]]) -> list[str]:
    if not any(_UNBOUND.search(e.message) for e in sched):
        return []
    ns = sched[0].namespace
    return [c for c, pods in claims.items() if parse_entity(c).namespace == ns
            and format_entity(ns, "pod", sched[0].name) in pods]


def _claim_finding(entity: str, o: ObjectState | None, warn: list[K8sEvent], pods: list[str],
                   add: Callable[..., None]) -> None:
    status = o.status if o is not None and o.status else "not bound"
    why = next((e for e in warn if e.reason in _CLAIM_FAILURES), None)
    storage_class = (o.extra.get("storage_class") if o is not None else "") or ""
    add(entity, "volume_claim_unbound", 0.85 if why else 0.6,
        f"PersistentVolumeClaim (PVC) {entity} is {status}" + (f": {why.reason}: {why.message[:200]}" if why else "")
        + (f" (storage class {storage_class})" if storage_class else "")
        + (f"; it keeps {', '.join(pods[:3])} from being scheduled" if pods else ""),
        [Evidence(kind="event", source=K8S_STATE, quote=f"{why.reason}: {why.message}"
                  + (f" (x{why.count})" if why.count > 1 else ""), at=why.at) if why else None,
         Evidence(kind="state", source=K8S_STATE, quote=_state_quote(o, None)) if o is not None else None],
        explains=pods, storage_class=storage_class)


def _application(entity: str, o: ObjectState, add: Callable[..., None]) -> None:
    """A GitOps application (Argo CD) whose last sync failed, or that is not healthy."""
    failed = "SyncFailed" in o.reasons
    bad = "; ".join(f"{r.get('kind')} {r.get('namespace')}/{r.get('name')}: {r.get('message')}"
                    for r in o.extra.get("resources", [])[:3] if r.get("message"))
    add(entity, "sync_failed" if failed else "app_unhealthy", 0.8 if failed else 0.5,
        f"{entity} ({o.status or 'unknown sync status'}, health {o.extra.get('health') or 'unknown'})"
        + (f": {o.message[:300]}" if o.message else "") + (f"; {bad[:300]}" if bad else ""),
        [Evidence(kind="state", source=K8S_STATE, quote=_state_quote(o, None) + (f"; {o.message}" if o.message else ""))],
        reasons=o.reasons)


def _availability(o: ObjectState, entity: str, add: Callable[..., None]) -> None:
    have, _, want = o.ready.partition("/")
    short = have.isdigit() and want.isdigit() and int(have) < int(want)
    if o.kind.lower() in ("deployment", "statefulset", "daemonset", "replicaset") and (short or "MinimumReplicasUnavailable" in o.reasons):
        add(entity, "unavailable_replicas", 0.45, f"{entity} has {o.ready} replicas available"
            + (f" ({o.message})" if o.message else ""), [Evidence(kind="state", source=K8S_STATE, quote=_state_quote(o, None))])
    elif o.kind.lower() == "pod" and (short or o.status == "Pending" or "Pending" in o.reasons):
        add(entity, "unready", 0.35, f"{entity} is {o.status or 'not ready'}" + (f" ({o.ready} ready)" if o.ready else ""),
            [Evidence(kind="state", source=K8S_STATE, quote=_state_quote(o, None))])
