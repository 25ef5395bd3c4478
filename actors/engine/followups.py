"""Follow-ups of the offline planner: hypotheses from the evidence so far, each a targeted tool call.

:func:`derive` is pure: evidence in, typed :class:`FollowUp` requests out. Its rules are generic
(no service or scenario names):

* a crash-looping pod (``CrashLoopBackOff``/``Error``, or at least :data:`RESTARTS_MIN` restarts)
  → the crashed container's ``previous`` logs, the pod described (``kubernetes_describe_pod``: last
  state, exit code, limits) and its events;
* an OOM-killed pod → the pod described (the limit the kill hit), its memory working-set series
  (PromQL from the team's metric schema) and its events;
* a latency alert or a service whose latency (any statistic asked: p99, average…) is far above its
  baseline → a trace search for that
  service; once its traces are in, the slowest spans' downstream service (a child span in another
  service) gets one more trace search (one hop);
* a latency or error alert → every service's network traffic (bytes sent and received per
  container) and the latency of the calls into each service measured on both sides of the call
  (by its callers and by itself; the service-graph histograms), so the ranker can tell a slow
  network from a slow service (:mod:`actors.ranking.resources`); skipped where the team's metric
  schema has no such metric;
* an error alert or a service whose error rate is far above its baseline → that service's logs,
  over twice the window so the ranker's template mining (:mod:`actors.ranking.log_templates`) sees
  a baseline to call templates new or surging against;
* a failed Job (status ``Failed`` or a failure reason such as ``BackoffLimitExceeded``) → the
  current logs of the pods it owns (owner ``job/<name>`` and a name starting ``<name>-``), a few per
  job: a job's pods have usually exited, so their last output is the failure;
* a pod the scheduler holds back for an unbound PersistentVolumeClaim (a ``FailedScheduling``
  event saying so) → the claims of its namespace (``kubernetes_list_volume_claims``), whose phase
  and events say why no volume was provisioned;
* the resource a user's question names (:mod:`actors.engine.subject`; an alert labelled
  ``trigger: question``) → its pods' current logs and events (the pod itself, or one pod per owner
  of the workload it names): what was asked about is read first-hand, whatever the symptom;
* a slow or failing service (the latency and error rules above) whose workload has pods in the
  evidence (owner named like the service, or behind a Kubernetes Service of that name), when no
  trace tool is available or its trace search found no spans of it → those pods' current logs
  (one pod per owner), the only place left where a slow request or an error shows.

Each rule names alternative tools in order of preference; the first in ``available`` (the team's
tools, the playbooks' rule) is used, and a follow-up with none available is skipped. Follow-ups whose
call was already made (``done``, keyed by :meth:`FollowUp.key`) are not asked again, so the planner
stops when no new hypothesis appears. One representative pod per owner keeps a crash-looping
deployment of many replicas to one set of calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from actors.engine.subject import QUESTION
from actors.ranking.entities import format_entity, same_workload
from actors.tools import promql
from config_service import MetricSchema
from incidentfox.evidence import EvidenceBundle, MetricSeries, ObjectState, TraceSpan

RESTARTS_MIN = 3
CRASH_REASONS = frozenset({"CrashLoopBackOff", "Error"})
MAX_PODS = 3                  # pods followed up per rule and round
MAX_SERVICES = 3              # services followed up per rule and round
MAX_JOB_PODS = 2              # pods of one failed job whose logs are read
JOB_FAILURES = frozenset({"BackoffLimitExceeded", "DeadlineExceeded", "PodFailurePolicy", "FailedIndexes"})
SPIKE_RATIO = 2.0             # incident max over baseline max that counts as a spike
ERROR_RATE_FLOOR = 0.05       # an error rate this high is a spike even without a baseline
_LATENCY_WORDS = re.compile(r"(?i)latency|slow|p9\d|duration|response time")
_ERROR_WORDS = re.compile(r"(?i)error|5xx|failure|exception|availability")
_NAME = re.compile(r"[\w.-]+")
_UNBOUND_CLAIM = re.compile(r"(?i)unbound\b.*persistentvolumeclaim")

Call = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class FollowUp:
    """One targeted tool call and the hypothesis it tests."""

    tool: str
    args: dict[str, Any]
    hypothesis: str

    def key(self) -> str:
        return json.dumps([self.tool, self.args], sort_keys=True, default=str)


def short(entity: str) -> str:
    """``ns/kind/name`` → ``name``; a bare service name unchanged."""
    return entity.rsplit("/", 1)[-1]


def _pick(alternatives: Iterable[Call], available: Collection[str]) -> Call | None:
    return next(((tool, args) for tool, args in alternatives if tool in available), None)


def _pods(bundle: EvidenceBundle, wanted: Any) -> list[ObjectState]:
    """Pods matching ``wanted``, most restarts first, one per owner, at most :data:`MAX_PODS`."""
    seen: set[str] = set()
    out: list[ObjectState] = []
    for pod in sorted((o for o in bundle.objects if o.kind.lower() == "pod" and o.name and o.namespace
                       and wanted(o)), key=lambda o: (-o.restarts, o.namespace, o.name)):
        owner = pod.owner or pod.name
        if owner not in seen:
            seen.add(owner)
            out.append(pod)
    return out[:MAX_PODS]


def _events(pod: ObjectState, w: int) -> Call:
    return ("kubernetes_get_events", {"namespace": pod.namespace, "object_name": pod.name, "warnings_only": False,
                                      "since_minutes": w, "limit": 50})


def _describe(pod: ObjectState, w: int) -> Call:
    return ("kubernetes_describe_pod", {"namespace": pod.namespace, "pod": pod.name, "since_minutes": w})


def _current_logs(pod: ObjectState) -> Call:
    return ("kubernetes_get_pod_logs", {"namespace": pod.namespace, "pod": pod.name, "container": None,
                                        "tail_lines": 200, "previous": None, "since_minutes": None})


def _failed_jobs(bundle: EvidenceBundle) -> list[tuple[ObjectState, list[ObjectState]]]:
    """Failed jobs and their pods (owned by the job, named ``<job>-…``), at most
    :data:`MAX_JOB_PODS` pods per job, :data:`MAX_PODS` jobs."""
    out = []
    for job in sorted((o for o in bundle.objects if o.kind.lower() == "job" and o.name
                       and (o.status.lower() == "failed" or JOB_FAILURES & set(o.reasons))),
                      key=lambda o: (o.namespace, o.name)):
        pods = sorted((p for p in bundle.objects if p.kind.lower() == "pod" and p.namespace == job.namespace
                       and p.owner.lower() == f"job/{job.name}".lower() and p.name.startswith(job.name + "-")),
                      key=lambda p: p.name)
        if pods:
            out.append((job, pods[:MAX_JOB_PODS]))
    return out[:MAX_PODS]


def _workload_pods(bundle: EvidenceBundle, svc: str) -> list[ObjectState]:
    """Pods of the workload ``svc`` names: owner named ``svc``, or a workload behind the Kubernetes
    Service ``svc`` (its ``workloads``); one pod per owner."""
    owners = {f"/{svc}"}
    for o in bundle.objects:
        if o.kind.lower() == "service" and o.name == svc:
            owners.update("/" + short(str(w)) for w in o.extra.get("workloads") or [])
    return _pods(bundle, lambda p: any(p.owner.endswith(x) for x in owners) and "/" in p.owner)


def _subject_pods(bundle: EvidenceBundle, subject: str) -> list[ObjectState]:
    """Pods of the alert's subject: the pod itself, or the pods of the workload it names (same
    workload by generated name, or owned by it); one per owner."""
    if not subject:
        return []
    name = short(subject)
    return _pods(bundle, lambda p: same_workload(format_entity(p.namespace, "pod", p.name), subject)
                 or short(p.owner) == name)


def _waiting_on_claims(bundle: EvidenceBundle) -> list[tuple[str, str]]:
    """(namespace, pod) of pods the scheduler holds back for an unbound PersistentVolumeClaim
    (a ``FailedScheduling`` event saying so), one per namespace, at most :data:`MAX_PODS`."""
    seen: dict[str, str] = {}
    for e in sorted(bundle.events, key=lambda e: (e.namespace, e.name)):
        if e.kind.lower() == "pod" and e.namespace and e.reason == "FailedScheduling" \
                and _UNBOUND_CLAIM.search(e.message):
            seen.setdefault(e.namespace, e.name)
    return sorted(seen.items())[:MAX_PODS]


def _spiking(series: list[MetricSeries], family: str, floor: float | None) -> list[str]:
    """Services whose ``family`` series (``family`` itself or ``family_<statistic>``, e.g.
    ``latency_p99`` and ``latency_average``) rose to :data:`SPIKE_RATIO` × its baseline (or above
    ``floor``); each statistic is compared with its own baseline."""
    base: dict[tuple[str, str], float] = {}
    now: dict[tuple[str, str], float] = {}
    for s in series:
        if not (s.metric == family or s.metric.startswith(family + "_")) or not s.values:
            continue
        into = base if s.baseline else now
        key = (s.entity, s.metric)
        into[key] = max(into.get(key, 0.0), max(s.values))
    out: list[str] = []
    for (entity, metric), peak in sorted(now.items(), key=lambda kv: -kv[1]):
        before = base.get((entity, metric))
        if ((before is not None and before > 0 and peak >= SPIKE_RATIO * before) or
                (before is None and floor is not None and peak >= floor)) and short(entity) not in out:
            out.append(short(entity))
    return out


def _alerted(bundle: EvidenceBundle, words: re.Pattern[str]) -> list[str]:
    a = bundle.alert
    if a.entity and (words.search(a.metric) or words.search(a.title)):
        return [short(a.entity)]
    return []


def _services(*groups: list[str]) -> list[str]:
    out: list[str] = []
    for svc in (s for g in groups for s in g):
        if svc and _NAME.fullmatch(svc) and svc not in out:
            out.append(svc)
    return out[:MAX_SERVICES]


def _traces(svc: str, w: int) -> list[Call]:
    return [("tempo_search_traces", {"service": svc, "query": None, "min_duration_ms": None, "since_minutes": w,
                                     "limit": 20, "fetch_traces": 5}),
            ("jaeger_search_traces", {"service": svc, "operation": None, "min_duration_ms": None,
                                      "errors_only": None, "since_minutes": w, "limit": 20}),
            ("xray_search_traces", {"service": svc, "filter_expression": None, "since_minutes": min(w, 24 * 60),
                                    "limit": 20, "fetch_traces": 5}),
            ("datadog_search_traces", {"service": svc, "query": None, "errors_only": None, "min_duration_ms": None,
                                       "since_minutes": w, "limit": 20, "fetch_traces": 3})]


def _service_logs(svc: str, w: int) -> list[Call]:
    return [("loki_query_logs", {"query": f'{{service=~"{re.escape(svc)}"}}', "since_minutes": w, "limit": 500}),
            ("datadog_search_logs", {"query": f"service:{svc}", "since_minutes": w, "limit": 500})]


def _resource_calls(m: MetricSchema, w: int) -> list[Call]:
    def q(query: str, metric: str) -> Call:
        return ("prometheus_query_range", {"query": query, "metric": metric, "since_minutes": w,
                                           "step_seconds": None, "baseline_offset_hours": 24})

    out = [q(promql.network_transmit(m), "network_transmit"), q(promql.network_receive(m), "network_receive")]
    for side in ("client", "server"):
        query = promql.call_latency(side, m)
        if query is not None:
            out.append(q(query, f"call_latency_{side}"))
    return out


def downstream(spans: list[TraceSpan], service: str) -> tuple[str, TraceSpan] | None:
    """The other service the slowest spans of ``service`` wait on: its longest direct child span in
    another service, among the five slowest spans of ``service``."""
    mine = sorted((s for s in spans if short(s.entity) == service), key=lambda s: -s.duration_ms)[:5]
    ids = {s.span_id for s in mine}
    children = [s for s in spans if s.parent_id in ids and short(s.entity) != service and _NAME.fullmatch(short(s.entity))]
    if not children:
        return None
    child = max(children, key=lambda s: s.duration_ms)
    return short(child.entity), child


def derive(bundle: EvidenceBundle, *, available: Collection[str], window_minutes: int,
           metrics: MetricSchema | None = None, done: Collection[str] = ()) -> list[FollowUp]:
    """The follow-up calls the evidence suggests, minus those already made (``done`` keys)."""
    m = metrics or promql.DEFAULT_SCHEMA
    w = max(1, window_minutes)
    out: list[FollowUp] = []
    keys = set(done)

    def add(alternatives: Iterable[Call], hypothesis: str) -> None:
        picked = _pick(alternatives, available)
        if picked is None:
            return
        f = FollowUp(picked[0], picked[1], hypothesis)
        if f.key() not in keys:
            keys.add(f.key())
            out.append(f)

    for pod in _pods(bundle, lambda o: "OOMKilled" in o.reasons):
        why = f"pod {pod.namespace}/{pod.name} was OOM-killed: compare its memory with its limit"
        add([_describe(pod, w)], why)
        add([("prometheus_query_range", {"query": promql.pod_memory(pod.name, m), "metric": "memory",
                                         "since_minutes": w, "step_seconds": None, "baseline_offset_hours": 24})],
            why)
        add([_events(pod, w)], why)
    for pod in _pods(bundle, lambda o: bool(CRASH_REASONS & set(o.reasons)) or o.restarts >= RESTARTS_MIN):
        why = (f"pod {pod.namespace}/{pod.name} is crash-looping ({pod.restarts} restarts): read the crashed "
               f"container's previous logs, describe the pod and read its events")
        add([("kubernetes_get_pod_logs", {"namespace": pod.namespace, "pod": pod.name, "container": None,
                                          "tail_lines": 200, "previous": True, "since_minutes": None})], why)
        add([_describe(pod, w)], why)
        add([_events(pod, w)], why)
    slow = _services(_alerted(bundle, _LATENCY_WORDS), _spiking(bundle.metrics, "latency", None))
    for svc in slow:
        add(_traces(svc, w), f"{svc} is slow: find its slowest spans in recent traces")
    traced = {str(args.get("service")) for tool, args in map(json.loads, done) if tool.endswith("_search_traces")}
    for svc in sorted(traced & set(slow)):
        hop = downstream(bundle.spans, svc)
        if hop is not None:
            down, span = hop
            add(_traces(down, w), f"the slowest spans of {svc} wait on {down} ({span.name or 'a call'}, "
                                  f"{span.duration_ms:.0f} ms): trace {down} too")
    if _alerted(bundle, _LATENCY_WORDS) or _alerted(bundle, _ERROR_WORDS):
        for call in _resource_calls(m, w):
            add([call], "the alert may start in a saturated service or a slow network: compare each "
                        "service's traffic and its callers' view of its latency with its own")
    failing = _services(_alerted(bundle, _ERROR_WORDS), _spiking(bundle.metrics, "error_rate", ERROR_RATE_FLOOR))
    for svc in failing:
        add(_service_logs(svc, 2 * w), f"errors spiked on {svc}: mine its log templates for ones new or "
                                       f"surging since the baseline")
    for job, pods in _failed_jobs(bundle):
        for pod in pods:
            add([_current_logs(pod)], f"job {job.namespace}/{job.name} failed ({', '.join(job.reasons) or job.status})"
                                      f": read the output of its pod {pod.name}")
    for ns, pod in _waiting_on_claims(bundle):
        add([("kubernetes_list_volume_claims", {"namespace": ns, "label_selector": None, "limit": 200})],
            f"pod {ns}/{pod} cannot be scheduled for an unbound PersistentVolumeClaim: read the namespace's claims")
    subject = bundle.alert.entity
    if subject and bundle.alert.labels.get("trigger") == QUESTION:
        for pod in _subject_pods(bundle, subject):
            add([_current_logs(pod)], f"the question is about {subject}: read its pod {pod.name}'s logs")
            add([_events(pod, w)], f"the question is about {subject}: read its pod {pod.name}'s events")
    can_trace = any(tool in available for tool, _ in _traces("", w))
    spanned = {short(s.entity) for s in bundle.spans}
    for svc in _services(slow, failing):
        if can_trace and (svc not in traced or svc in spanned):
            continue
        for pod in _workload_pods(bundle, svc):
            add([_current_logs(pod)], f"{svc} is slow or failing and its traces show nothing: read its pod "
                                      f"{pod.name}'s logs")
    return out
