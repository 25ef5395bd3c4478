"""Kubernetes state rules on their own."""

from __future__ import annotations

from actors.ranking.k8s_state import k8s_findings, suggest_executable
from incidentfox.evidence import EvidenceBundle, K8sEvent, LogLine, ObjectState

NS = "shop"


def _pod(name: str, **kw: object) -> ObjectState:
    return ObjectState(namespace=NS, kind="pod", name=name, **kw)  # type: ignore[arg-type]


def _by_kind(b: EvidenceBundle) -> dict[str, object]:
    return {f.kind: f for f in k8s_findings(b)}


def test_oom_killed_quotes_the_memory_limit() -> None:
    container = {"name": "app", "state": "Waiting", "reason": "CrashLoopBackOff", "last_state": "Terminated",
                 "last_reason": "OOMKilled", "exit_code": "137", "restarts": 6, "limits": {"memory": "100Mi"}}
    b = EvidenceBundle(objects=[_pod("cart-7d9c8b6f5b-x2x4z", status="Running", ready="0/1", restarts=6,
                                     reasons=["CrashLoopBackOff", "OOMKilled"], extra={"containers": [container]})])
    found = _by_kind(b)
    oom = found["oom_killed"]
    assert oom.score == 0.9 and oom.details["memory_limit"] == "100Mi"
    assert "OOMKilled" in oom.evidence[0].quote and "exit code 137" in oom.evidence[0].quote
    assert "crash_loop" in found


def test_crash_loop_is_explained_by_the_missing_executable() -> None:
    msg = 'OCI runtime create failed: exec: "wge": executable file not found in $PATH: unknown'
    b = EvidenceBundle(objects=[_pod("agent", status="Pending", reasons=["CrashLoopBackOff", "StartError"], message=msg)])
    crash = _by_kind(b)["crash_loop"]
    assert crash.details["missing_executable"] == "wge"
    assert crash.details["suggested_executable"] == "wget"
    assert any("executable file not found" in e.quote for e in crash.evidence)


def test_crash_loop_without_a_message_quotes_the_pods_last_error_log() -> None:
    b = EvidenceBundle(
        objects=[_pod("api-6f5cbdf85-c5fsf", reasons=["CrashLoopBackOff"])],
        logs=[LogLine(entity=f"{NS}/pod/api-6f5cbdf85-c5fsf", text="starting", level="info"),
              LogLine(entity=f"{NS}/pod/api-6f5cbdf85-c5fsf", text="ERROR missing env DATABASE_URL", level="error")])
    crash = _by_kind(b)["crash_loop"]
    assert crash.details["explanation"] == "ERROR missing env DATABASE_URL"


def test_image_pull_names_the_image_from_the_failed_event() -> None:
    b = EvidenceBundle(events=[
        K8sEvent(namespace=NS, kind="pod", name="web-5d98ffcfd-tz4nc", type="Warning", reason="Failed",
                 message='Failed to pull image "acme/web:nope": manifest unknown'),
        K8sEvent(namespace=NS, kind="pod", name="web-5d98ffcfd-tz4nc", type="Warning", reason="Failed",
                 message="Error: ImagePullBackOff")])
    pull = _by_kind(b)["image_pull"]
    assert pull.details["image"] == "acme/web:nope"
    assert "manifest unknown" in pull.summary


def test_failed_scheduling_names_the_insufficient_resource() -> None:
    b = EvidenceBundle(events=[K8sEvent(
        namespace=NS, kind="pod", name="gpu-659d4dd659-cq4kq", type="Warning", reason="FailedScheduling", count=70,
        message="0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are available")])
    sched = _by_kind(b)["failed_scheduling"]
    assert sched.details["resources"] == ["nvidia.com/gpu"]
    assert "insufficient GPU" in sched.summary
    assert "(x70)" in sched.evidence[0].quote


def test_failed_job_is_explained_by_its_pods_error_logs() -> None:
    line = "All host(s) tried for db query failed (tried: prod-db:3333) - no available connection"
    b = EvidenceBundle(
        objects=[ObjectState(namespace=NS, kind="job", name="nightly", status="Failed")],
        events=[K8sEvent(namespace=NS, kind="job", name="nightly", type="Warning", reason="BackoffLimitExceeded",
                         message="Job has reached the specified backoff limit")],
        logs=[LogLine(entity=f"{NS}/pod/nightly-2lhkn", text="Java Network Exception:"),
              LogLine(entity=f"{NS}/pod/nightly-2lhkn", text=line)])
    job = _by_kind(b)["job_failed"]
    assert job.details["dependency"] == "prod-db:3333"
    assert any(e.quote == line for e in job.evidence)


def test_objects_seen_only_in_a_listing_weigh_less() -> None:
    detailed = _pod("a-6f5cbdf85-c5fsf", reasons=["CrashLoopBackOff"])
    listed = _pod("b-6f5cbdf85-c5fsf", reasons=["CrashLoopBackOff"], extra={"source": "listing"})
    scores = {f.entity: f.score for f in k8s_findings(EvidenceBundle(objects=[detailed, listed]))}
    assert scores[f"{NS}/pod/b-6f5cbdf85-c5fsf"] < scores[f"{NS}/pod/a-6f5cbdf85-c5fsf"]


def test_deployment_short_of_replicas_and_healthy_objects() -> None:
    short = ObjectState(namespace=NS, kind="deployment", name="api", ready="0/3", reasons=["MinimumReplicasUnavailable"])
    healthy = ObjectState(namespace=NS, kind="deployment", name="web", ready="3/3", status="Available")
    found = k8s_findings(EvidenceBundle(objects=[short, healthy]))
    assert [(f.entity, f.kind) for f in found] == [(f"{NS}/deployment/api", "unavailable_replicas")]


def test_past_termination_of_a_running_ready_pod_is_weak() -> None:
    c = {"name": "app", "state": "Running", "reason": "", "last_reason": "Error", "restarts": 1}
    pod = _pod("api-6f5cbdf85-c5fsf", status="Running", ready="1/1", reasons=["Error"], extra={"containers": [c]})
    (finding,) = k8s_findings(EvidenceBundle(objects=[pod]))
    assert finding.score < 0.3


def test_executable_suggestions() -> None:
    assert suggest_executable("pyhton3") == "python3"
    assert suggest_executable("bash") == ""
    assert suggest_executable("zzzz") == ""


def _claim_case(*, mounts: list[str] | None) -> EvidenceBundle:
    extra = {"claims": mounts} if mounts is not None else {}
    return EvidenceBundle(
        objects=[_pod("cache-5d8f7c9b6d-q2w4x", status="Pending", extra=extra),
                 ObjectState(namespace=NS, kind="PersistentVolumeClaim", name="cache-data", status="Pending",
                             extra={"storage_class": "fast"})],
        events=[K8sEvent(namespace=NS, kind="pod", name="cache-5d8f7c9b6d-q2w4x", type="Warning",
                         reason="FailedScheduling", message="0/2 nodes are available: pod has unbound immediate "
                                                            "PersistentVolumeClaims."),
                K8sEvent(namespace=NS, kind="persistentvolumeclaim", name="cache-data", type="Warning",
                         reason="ProvisioningFailed", message='storageclass.storage.k8s.io "fast" not found', count=9)])


def test_an_unbound_claim_is_the_cause_of_the_pod_it_holds_back() -> None:
    for mounts in (["cache-data"], None):   # the pod's volumes known, or only its scheduling event
        found = _by_kind(_claim_case(mounts=mounts))
        claim, pod = found["volume_claim_unbound"], found["failed_scheduling"]
        assert claim.entity == f"{NS}/persistentvolumeclaim/cache-data" and claim.score == 0.85
        assert claim.details["explains"] == [f"{NS}/pod/cache-5d8f7c9b6d-q2w4x"]
        assert "PVC" in claim.summary and '"fast" not found' in claim.evidence[0].quote
        assert pod.score < claim.score and pod.details["caused_by"] == [claim.entity]
    other = _claim_case(mounts=["other-claim"])
    found = _by_kind(other)
    assert found["volume_claim_unbound"].details["explains"] == [] and found["failed_scheduling"].score == 0.8


def test_a_broker_nodes_warnings_weigh_like_other_warnings() -> None:
    b = EvidenceBundle(events=[
        K8sEvent(namespace="mq", kind="pod", name="mq-1", type="Warning", reason="NetworkPartition",
                 message="RabbitMQ node rabbit@mq-1 reports a network partition: it cannot reach mq-0"),
        K8sEvent(namespace="mq", kind="pod", name="mq-0", type="Warning", reason="NodeDown", message="not running")])
    found = {f.entity: f for f in k8s_findings(b)}
    assert found["mq/pod/mq-1"].kind == "network_partition" and found["mq/pod/mq-1"].score == 0.7
    assert found["mq/pod/mq-0"].kind == "node_down" and "partition" in found["mq/pod/mq-1"].summary


def test_a_gitops_application_whose_sync_failed_quotes_why() -> None:
    failed = ObjectState(namespace="argocd", kind="Application", name="shop", status="OutOfSync",
                         reasons=["SyncFailed", "Missing"], message='namespaces "shop-typo" not found',
                         extra={"health": "Missing", "resources": [{"kind": "Service", "namespace": "shop-typo",
                                                                    "name": "auth", "message": "not found"}]})
    sick = failed.model_copy(update={"name": "billing", "reasons": ["Degraded"], "message": ""})
    found = {f.entity: f for f in k8s_findings(EvidenceBundle(objects=[failed, sick]))}
    sync = found["argocd/application/shop"]
    assert sync.kind == "sync_failed" and sync.score == 0.8 and '"shop-typo" not found' in sync.summary
    assert found["argocd/application/billing"].kind == "app_unhealthy" and found["argocd/application/billing"].score == 0.5
