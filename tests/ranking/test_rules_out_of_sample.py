"""Each ranking rule fires on a case it was not written from.

The rules were developed against the HolmesGPT, PetShop and Nezha benchmarks. Every case here uses
other names (services, pods, namespaces) and the wording a real kubelet, scheduler, driver or
application emits (Kubernetes event reasons and messages as the kubelet and scheduler write them,
driver error messages as the drivers print them), so a rule that only matched its benchmark's
strings fails here. Rules that are narrow on purpose are listed in docs/engine.md ("Narrow rules").
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from actors.ranking.anomaly import analyze, direction
from actors.ranking.changes import change_findings
from actors.ranking.entities import same_workload, workload_key
from actors.ranking.k8s_state import k8s_findings, suggest_executable
from actors.ranking.log_templates import is_error, mask, template_changes
from actors.ranking.logs import dependency_of, log_findings, slow_threshold
from actors.ranking.no_incident import decide, heartbeat_note
from actors.ranking.propagation import propagation_findings
from actors.ranking.rank import rank
from actors.ranking.traces import trace_findings
from incidentfox.evidence import (
    Alert,
    ChangeEvent,
    EvidenceBundle,
    K8sEvent,
    LogLine,
    ObjectState,
    TraceSpan,
)
from tests.ranking_helpers import T0, alert, baseline, edges, incident

NS = "ledger"


def _kinds(bundle: EvidenceBundle) -> dict[str, object]:
    return {f.kind: f for f in k8s_findings(bundle)}


def _warn(name: str, reason: str, message: str, kind: str = "Pod") -> K8sEvent:
    return K8sEvent(namespace=NS, kind=kind, name=name, type="Warning", reason=reason, message=message, at=T0)


# ---- Kubernetes state ---------------------------------------------------------------------------


def test_oom_kill_of_a_statefulset_pod_quotes_its_limit() -> None:
    c = {"name": "postgres", "state": "Running", "last_state": "Terminated", "last_reason": "OOMKilled",
         "exit_code": "137", "restarts": 2, "limits": {"memory": "2Gi"}}
    b = EvidenceBundle(objects=[ObjectState(namespace=NS, kind="pod", name="accounts-db-0", status="Running",
                                            ready="0/1", restarts=2, reasons=["OOMKilled"],
                                            extra={"containers": [c]})])
    oom = _kinds(b)["oom_killed"]
    assert oom.details["memory_limit"] == "2Gi" and oom.details["container"] == "postgres"


def test_oom_kill_seen_only_as_the_kernel_event() -> None:
    b = EvidenceBundle(events=[_warn("reporting-worker-7f6d5c4b9-qwxz2", "OOMKilling",
                                     "Memory cgroup out of memory: Killed process 48213 (python3) total-vm:2048000kB, "
                                     "anon-rss:1048576kB, file-rss:0kB, shmem-rss:0kB")])
    assert "oom_killed" in _kinds(b)


def test_crash_loop_seen_only_through_backoff_events_is_explained_by_the_failed_event() -> None:
    pod = "billing-api-5c8d7f9b6-2lmnp"
    b = EvidenceBundle(events=[
        _warn(pod, "BackOff", "Back-off restarting failed container api in pod billing-api-5c8d7f9b6-2lmnp_ledger"),
        _warn(pod, "Failed", "Error: failed to create containerd task: failed to create shim task: OCI runtime "
                             "create failed: runc create failed: unable to start container process: exec: "
                             "\"/usr/local/bin/gunicron\": stat /usr/local/bin/gunicron: no such file or directory"),
    ])
    crash = _kinds(b)["crash_loop"]
    assert "gunicron" in crash.details["explanation"]


@pytest.mark.parametrize(("missing", "suggested"), [
    ("pyhton3", "python3"), ("culr", "curl"), ("/usr/sbin/ngnix", "/usr/sbin/nginx"), ("/bin/bsah", "/bin/bash"),
])
def test_missing_executable_typos_other_than_the_benchmarks(missing: str, suggested: str) -> None:
    msg = f'OCI runtime create failed: exec: "{missing}": executable file not found in $PATH: unknown'
    b = EvidenceBundle(objects=[ObjectState(namespace=NS, kind="pod", name="sync-7d4f8", reasons=["CrashLoopBackOff"],
                                            message=msg)])
    crash = _kinds(b)["crash_loop"]
    assert (crash.details["missing_executable"], crash.details["suggested_executable"]) == (missing, suggested)
    assert suggest_executable("my-own-daemon") == ""     # narrow: only common executables are suggested


def test_image_pull_from_a_private_registry_event_only() -> None:
    pod = "gateway-6b7c9d8f5-k2v9s"
    b = EvidenceBundle(events=[
        _warn(pod, "Failed", 'Failed to pull image "registry.internal.example:5000/platform/gateway:v2.14.1": '
                             "rpc error: code = NotFound desc = failed to pull and unpack image: not found"),
        _warn(pod, "Failed", "Error: ErrImagePull"),
        _warn(pod, "BackOff", 'Back-off pulling image "registry.internal.example:5000/platform/gateway:v2.14.1"'),
    ])
    found = _kinds(b)
    assert found["image_pull"].details["image"] == "registry.internal.example:5000/platform/gateway:v2.14.1"
    assert "crash_loop" not in found


@pytest.mark.parametrize(("message", "names"), [
    (("0/6 nodes are available: 2 Insufficient cpu, 4 Insufficient memory. preemption: 0/6 nodes are available: "
     "6 No preemption victims found for incoming pod."), ["CPU", "memory"]),
    (("0/3 nodes are available: 3 Insufficient amd.com/gpu. preemption: 0/3 nodes are available: 3 Preemption "
     "is not helpful for scheduling."), ["GPU"]),
    ("0/2 nodes are available: 2 Insufficient gpu.intel.com/i915.", ["GPU"]),
    (("0/4 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
     "3 node(s) didn't match Pod's node affinity/selector."), []),
])
def test_failed_scheduling_in_the_schedulers_own_words(message: str, names: list[str]) -> None:
    b = EvidenceBundle(events=[_warn("trainer-0", "FailedScheduling", message)])
    f = _kinds(b)["failed_scheduling"]
    assert f.details["resource_names"] == names


def test_a_cronjob_run_past_its_deadline_is_a_failed_job_with_its_pods_last_error() -> None:
    job = "settlement-28391520"
    b = EvidenceBundle(
        objects=[ObjectState(namespace=NS, kind="job", name=job, status="Failed", reasons=["DeadlineExceeded"])],
        events=[_warn(job, "DeadlineExceeded", "Job was active longer than specified deadline", kind="job")],
        logs=[LogLine(entity=f"{NS}/pod/{job}-x7k2p", text="starting settlement run", level="info"),
              LogLine(entity=f"{NS}/pod/{job}-x7k2p", level="error",
                      text='psycopg2.OperationalError: connection to server at "ledger-db" (10.0.3.4), port 5432 '
                           "failed: Connection timed out")])
    f = _kinds(b)["job_failed"]
    assert f.details["reason"] == "DeadlineExceeded" and f.details["dependency"] == "ledger-db:5432"


def test_a_missing_secret_is_a_container_config_error() -> None:
    b = EvidenceBundle(objects=[ObjectState(namespace=NS, kind="pod", name="notifier-84d7b", status="Pending",
                                            reasons=["CreateContainerConfigError"],
                                            message='secret "smtp-credentials" not found')])
    f = _kinds(b)["container_error"]
    assert "smtp-credentials" in f.details["explanation"]


@pytest.mark.parametrize(("reason", "message", "kind"), [
    ("FailedMount", 'MountVolume.SetUp failed for volume "settings" : configmap "ledger-settings" not found',
     "failed_mount"),
    ("Evicted", "The node was low on resource: ephemeral-storage. Threshold quantity: 10%, available: 8%.",
     "evicted"),
    ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", "probe_failed"),
    ("FailedCreate", ('Error creating: pods "ledger-api-6d5f-" is forbidden: exceeded quota: compute, requested: '
                     "limits.cpu=2, used: limits.cpu=8, limited: limits.cpu=8"), "failed_create"),
])
def test_generic_warning_events(reason: str, message: str, kind: str) -> None:
    assert kind in _kinds(EvidenceBundle(events=[_warn("ledger-api-6d5f8c7b9-abcde", reason, message)]))


def test_short_replicas_and_a_pending_pod() -> None:
    b = EvidenceBundle(objects=[
        ObjectState(namespace=NS, kind="statefulset", name="queue", ready="1/3"),
        ObjectState(namespace=NS, kind="pod", name="queue-2", status="Pending", ready="0/1"),
    ])
    kinds = {f.entity: f.kind for f in k8s_findings(b)}
    assert kinds == {f"{NS}/statefulset/queue": "unavailable_replicas", f"{NS}/pod/queue-2": "unready"}


# ---- logs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "dep"), [
    (("com.datastax.oss.driver.api.core.AllNodesFailedException: All host(s) tried for query failed "
     "(tried: /10.42.0.17:9042 (com.datastax.driver.core.exceptions.TransportException: Cannot connect))"),
     "10.42.0.17:9042"),
    ('connection to server at "ledger-db" (10.0.3.4), port 5432 failed: FATAL: password authentication failed',
     "ledger-db:5432"),
    ("dial tcp: lookup inventory-api on 10.96.0.10:53: no such host", "inventory-api"),
    ("Error: Could not connect to Redis at session-cache:6379: Connection refused", "session-cache:6379"),
    ("Error: getaddrinfo ENOTFOUND payments.internal", "payments.internal"),
    ("upstream request failed: dial tcp 172.20.4.9:8443: i/o timeout", "172.20.4.9:8443"),
])
def test_dependency_in_drivers_and_runtimes_own_words(line: str, dep: str) -> None:
    assert dependency_of(line) == dep


def _lines(entity: str, text: str, n: int, *, level: str = "error", start: timedelta = timedelta(0)) -> list[LogLine]:
    return [LogLine(entity=entity, text=text.format(i=i), level=level, at=T0 + start + timedelta(seconds=20 * i))
            for i in range(n)]


@pytest.mark.parametrize(("text", "known"), [
    ("could not extend file \"base/16384/2619\": No space left on device", "disk_full"),
    ("FATAL: sorry, too many clients already", "connection_limit"),
    ("HikariPool-1 - Connection is not available, request timed out after 30000ms.", "connection_limit"),
    ("Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space", "out_of_memory"),
    ("FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory", "out_of_memory"),
    ("open /var/lib/app/state.db: permission denied", "permission_denied"),
    ("tls: failed to verify certificate: x509: certificate signed by unknown authority", "tls"),
])
def test_known_failures_worded_by_other_software(text: str, known: str) -> None:
    entity = f"{NS}/pod/worker-6c9d8f7b5-tr2xz"
    logs = [*_lines(entity, "heartbeat ok {i}", 30, level="info", start=-timedelta(minutes=40)),
            *_lines(entity, text, 6)]
    f = next(f for f in log_findings(logs, alert(entity)) if f.kind == "error_signature")
    assert f.details["known"] == known and f.details["status"] == "new"


def test_a_surging_error_template_without_levels() -> None:
    entity = "orders-svc"
    logs = [*_lines(entity, "upstream connect error or disconnect/reset before headers. reset reason: "
                            "connection failure, transport failure reason: delayed connect error: {i}", 2,
                    level="", start=-timedelta(minutes=60)),
            *_lines(entity, "upstream connect error or disconnect/reset before headers. reset reason: "
                            "connection failure, transport failure reason: delayed connect error: {i}", 20, level="")]
    f = next(f for f in log_findings(logs, alert(entity)) if f.kind == "error_signature")
    assert f.details["status"] == "surging"


def test_slow_operations_against_the_alerts_own_threshold() -> None:
    a = Alert(title="p95 latency above 2s on invoices", entity="invoices", started_at=T0)
    logs = [LogLine(entity="invoices", text=f"Completed 200 OK in {ms}ms (Views: 3.1ms | ActiveRecord: {ms - 40}ms)",
                    at=T0 + timedelta(seconds=i)) for i, ms in enumerate((2400, 3900, 150))]
    assert slow_threshold(a) == 2.0
    slow = next(f for f in log_findings(logs, a) if f.kind == "slow_operation")
    assert slow.details["count"] == 2 and slow.details["max_seconds"] == 3.9


def test_masks_and_error_wording_on_other_formats() -> None:
    assert mask("GET /v1/accounts/9f1c2b7e-33aa-4c1e-9d2f-0a1b2c3d4e5f from 10.1.2.3:51234 took 812ms") == \
        "GET /v<NUM>/accounts/<UUID> from <IP> took <DURATION>"
    assert "<POD>" in mask("pod ledger-api-6d5f8c7b9-x2x4z ready")
    assert is_error(LogLine(entity="x", text="SQLSTATE[HY000] [2002] Connection refused"))
    assert not is_error(LogLine(entity="x", text="connection refused (retrying)", level="warn"))
    changes = template_changes(_lines("x", "payment {i} declined: card expired", 5), onset=T0)
    assert changes[0].status == "new"


# ---- metrics, call graph, traces, changes -------------------------------------------------------


@pytest.mark.parametrize(("metric", "way"), [
    ("container_memory_working_set_bytes", 1), ("kafka_consumergroup_lag", 1), ("probe_success", -1),
    ("http_requests_total", 0), ("node_filesystem_avail_bytes", -1),
    ("kube_deployment_status_replicas_unavailable", 1), ("grpc_server_handling_seconds_p99", 0),
])
def test_metric_direction_on_prometheus_names(metric: str, way: int) -> None:
    assert direction(metric) == way


def test_propagation_blames_the_deepest_anomalous_callee_under_other_names() -> None:
    b = EvidenceBundle(
        alert=alert("storefront", metric="latency"),
        topology=edges(("storefront", "basket"), ("basket", "pricing"), ("storefront", "search")),
        metrics=[baseline("storefront", 120), incident("storefront", 120, 900),
                 baseline("basket", 80), incident("basket", 80, 760),
                 baseline("pricing", 30), incident("pricing", 30, 700),
                 baseline("search", 50), incident("search", 50, 51)])
    view = analyze(b)
    assert view.confirmed
    found = propagation_findings(b, view)
    assert found[0].entity == "pricing" and found[0].kind == "root_of_anomaly"
    ranked = rank(b)
    assert ranked.suspects[0].entity == "pricing"


def test_a_database_span_without_query_in_its_name_is_the_slow_part() -> None:
    spans = []
    for i in range(4):
        t = f"t{i}"
        spans += [TraceSpan(trace_id=t, span_id=f"{t}a", entity="checkout-gw", name="POST /basket/submit",
                            duration_ms=2600, start=T0),
                  TraceSpan(trace_id=t, span_id=f"{t}b", parent_id=f"{t}a", entity="stock-keeper",
                            name="ReserveItems", duration_ms=2500, start=T0),
                  TraceSpan(trace_id=t, span_id=f"{t}c", parent_id=f"{t}b", entity="stock-keeper",
                            name="SELECT stock", duration_ms=2400, start=T0,
                            attributes={"db.system": "mysql", "db.statement": "SELECT * FROM stock WHERE sku = ?"})]
    f = trace_findings(spans, Alert(title="checkout slow", entity="checkout-gw", started_at=T0))[0]
    assert f.entity == "stock-keeper" and f.details["database"] is True


def test_a_config_change_before_the_onset_and_one_after_it() -> None:
    found = change_findings([
        ChangeEvent(entity="ledger-api", kind="config", description="feature flag fast-settle on",
                    at=T0 - timedelta(minutes=12)),
        ChangeEvent(entity="ledger-api", kind="deploy", description="v9.1", at=T0 + timedelta(minutes=30)),
    ], T0)
    assert [f.details["change_kind"] for f in found] == ["config"]


def test_workloads_of_statefulset_and_job_pods() -> None:
    assert same_workload("ledger/pod/queue-2", "ledger/statefulset/queue")
    assert same_workload("ledger/pod/settlement-28391520-x7k2p", "ledger/job/settlement-28391520")
    assert not same_workload("ledger/pod/queue-admin", "ledger/statefulset/queue")
    assert workload_key("ledger/pod/ledger-api-6d5f8c7b9-x2x4z") == "ledger/ledger-api"


# ---- no incident --------------------------------------------------------------------------------


@pytest.mark.parametrize(("title", "severity"), [
    ("DeadMansSwitch", "none"),                                    # kube-prometheus' older name
    ("InfoInhibitor", "none"),                                     # kube-prometheus: severity none, not a heartbeat by name
    ("Alerting pipeline heartbeat", "warning"),
    ("PagerDuty dead man's snitch check-in", "critical"),
])
def test_heartbeat_alerts_by_other_names(title: str, severity: str) -> None:
    b = EvidenceBundle(alert=Alert(title=title, labels={"severity": severity}))
    assert heartbeat_note(b)


def test_no_incident_when_the_alerting_series_is_normal() -> None:
    b = EvidenceBundle(alert=alert("ledger-api", metric="error_rate"),
                       metrics=[baseline("ledger-api", 0.01, metric="error_rate"),
                                incident("ledger-api", 0.01, 0.0101, metric="error_rate")])
    view = analyze(b)
    no, reason = decide(b, view, [])
    assert no and "within its normal range" in reason


# ---- combination: relevance, grouping, noisy-OR, cross-metric corroboration ---------------------


def test_an_unrelated_broken_pod_stays_below_blame_and_a_workloads_signals_combine() -> None:
    pod = "ledger-api-6d5f8c7b9-x2x4z"
    b = EvidenceBundle(
        alert=Alert(title="ledger-api error ratio above 5%", entity="ledger-api", metric="error_rate", started_at=T0),
        objects=[ObjectState(namespace=NS, kind="pod", name="batch-exporter-0", status="Pending", ready="0/1",
                             reasons=["ImagePullBackOff"], image="registry.example/exporter:bad")],
        changes=[ChangeEvent(entity=f"{NS}/deployment/ledger-api", kind="deploy", description="v4.2.0",
                             at=T0 - timedelta(minutes=8))],
        logs=[*_lines(f"{NS}/pod/{pod}", "GET /healthz 200", 30, level="info", start=-timedelta(minutes=40)),
              *_lines(f"{NS}/pod/{pod}", "ERROR ledger write failed: deadlock detected", 12)])
    ranked = rank(b)
    top = ranked.suspects[0]
    assert top.entity == f"{NS}/deployment/ledger-api" and {"change", "log_signature"} <= set(top.signals)
    single = max(f.score for f in top.findings)
    assert top.score > single                                   # independent signals agree: noisy-OR
    exporter = next(s for s in ranked.suspects if "batch-exporter" in s.entity)
    assert exporter.score < 0.3 and exporter.findings[0].details["unrelated_to_alert"]


def test_a_dependency_anomalous_in_another_metric_counts_only_when_corroborated() -> None:
    metrics = [baseline("web", 0.01, metric="error_rate"), incident("web", 0.01, 0.2, metric="error_rate"),
               baseline("orders-db", 40, metric="latency"), incident("orders-db", 40, 900, metric="latency")]
    b = EvidenceBundle(alert=alert("web", metric="error_rate"), topology=edges(("web", "orders-db")), metrics=metrics)
    view = analyze(b)
    assert "orders-db" in view.secondary
    assert [f.entity for f in propagation_findings(b, view)] == ["web"]
    found = propagation_findings(b, view, corroborated=lambda e: e == "orders-db")
    assert found[0].entity == "orders-db" and found[0].details["secondary"] is True


def test_an_error_template_that_stopped_early_is_transient() -> None:
    entity = f"{NS}/pod/ledger-api-6d5f8c7b9-x2x4z"
    logs = [*_lines(entity, "ERROR cache warmup failed: connection reset by peer", 4),
            *_lines(entity, "GET /v1/balance 200", 40, level="info", start=timedelta(minutes=2))]
    f = next(f for f in log_findings(logs, alert(entity)) if f.kind == "error_signature")
    assert f.details["transient"] is True


@pytest.mark.parametrize("kind", ["pod", "Pod"])
def test_a_pending_pod_is_unready_whatever_case_its_kind_is_spelt_in(kind: str) -> None:
    """The live Kubernetes tools report ``kind="Pod"`` (the API's spelling) and the ranker's own
    objects ``"pod"``: the availability rule reads both."""
    b = EvidenceBundle(objects=[ObjectState(namespace=NS, kind=kind, name="ledger-5c9d7-qq2lm", status="Pending",
                                            ready="0/1")])
    assert [f.kind for f in k8s_findings(b)] == ["unready"]


@pytest.mark.parametrize("kind", ["job", "Job"])
def test_a_failed_job_is_found_whatever_case_its_kind_is_spelt_in(kind: str) -> None:
    b = EvidenceBundle(objects=[ObjectState(namespace=NS, kind=kind, name="nightly-export", status="Failed",
                                            reasons=["BackoffLimitExceeded"])])
    assert any("job" in f.entity.lower() for f in k8s_findings(b))
