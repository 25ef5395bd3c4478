"""A recorded ``kubectl describe pod`` read into the live ``kubernetes_describe_pod`` result shape,
and served for that tool in the HolmesGPT replay."""

from __future__ import annotations

import json
from pathlib import Path

from kubernetes import client as k8s

from actors.tools.kubernetes_describe import describe_result, describe_state
from evaluation.holmesgpt import HolmesCase
from evaluation.recordings.kubectl import parse_describe_pod
from evaluation.replay_holmes import case_replay
from tests.tools.test_tools_kubernetes_describe import POD

# The pod of the live tool's test (tests/tools/test_tools_kubernetes_describe.py), as kubectl prints it.
DESCRIBE = """Name:             invoicer-5b7d9c8f6-q2wxz
Namespace:        billing
Priority:         0
Service Account:  default
Node:             node-a/10.0.0.7
Start Time:       Fri, 14 Mar 2025 14:00:00 +0000
Labels:           app=invoicer
                  pod-template-hash=5b7d9c8f6
Annotations:      <none>
Status:           Running
IP:               10.1.2.3
Controlled By:    ReplicaSet/invoicer-5b7d9c8f6
Init Containers:
  migrate:
    Container ID:  containerd://aaa
    Image:         reg/invoicer:7
    Command:
      ./migrate
    State:          Terminated
      Reason:       Completed
      Exit Code:    0
    Ready:          True
    Restart Count:  0
    Environment:    <none>
Containers:
  app:
    Container ID:  containerd://bbb
    Image:         reg/invoicer:7
    Port:          8080/TCP
    Command:
      java
    Args:
      -jar
      app.jar
    State:          Waiting
      Reason:       CrashLoopBackOff
      Message:      back-off 2m40s restarting failed container
    Last State:     Terminated
      Reason:       OOMKilled
      Exit Code:    137
      Started:      Fri, 14 Mar 2025 14:55:00 +0000
      Finished:     Fri, 14 Mar 2025 14:57:00 +0000
    Ready:          False
    Restart Count:  5
    Limits:
      memory:  512Mi
    Requests:
      cpu:        250m
      memory:     256Mi
    Environment:  <none>
Conditions:
  Type              Status
  Initialized       True
  Ready             False
  ContainersReady   False
  PodScheduled      True
Volumes:
  data:
    Type:       PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)
    ClaimName:  invoicer-data
    ReadOnly:   false
QoS Class:       Burstable
Node-Selectors:  <none>
Events:
  Type     Reason     Age                 From               Message
  ----     ------     ----                ----               -------
  Normal   Scheduled  60m                 default-scheduler  Successfully assigned billing/invoicer-5b7d9c8f6-q2wxz to node-a
  Warning  BackOff    2m (x9 over 20m)    kubelet            Back-off restarting failed container app in pod invoicer-5b7d9c8f6-q2wxz_billing(u1)
"""


def _live_pod() -> k8s.V1Pod:
    return k8s.ApiClient()._ApiClient__deserialize(POD, "V1Pod")   # the client's own model, no server


def test_containers_match_the_live_tool() -> None:
    parsed = parse_describe_pod(DESCRIBE)
    assert parsed is not None
    state, _ = parsed
    live = describe_state(_live_pod())
    assert state.extra["containers"] == live.extra["containers"]
    app = state.extra["containers"][1]
    assert (app["last_reason"], app["exit_code"], app["limits"], app["restarts"]) == ("OOMKilled", "137",
                                                                                     {"memory": "512Mi"}, 5)
    assert app["command"] == ["java", "-jar", "app.jar"] and app["requests"] == {"cpu": "250m", "memory": "256Mi"}
    same = ("namespace", "kind", "name", "status", "ready", "restarts", "reasons", "image", "message", "owner")
    assert state.model_dump(include=set(same)) == live.model_dump(include=set(same))
    assert state.extra["qos_class"] == "Burstable" and state.extra["node"] == "node-a"
    assert state.extra["labels"] == {"app": "invoicer", "pod-template-hash": "5b7d9c8f6"}
    assert state.extra["claims"] == ["invoicer-data"]
    assert state.extra["started_at"] == "2025-03-14T14:00:00+00:00"
    assert {c["type"]: c["status"] for c in state.extra["conditions"]} == {
        "Initialized": "True", "Ready": "False", "ContainersReady": "False", "PodScheduled": "True"}


def test_result_has_the_live_shape_and_events() -> None:
    state, events = parse_describe_pod(DESCRIBE)
    res = describe_result(state, events)
    live = describe_result(describe_state(_live_pod()), [])
    assert res.ok and set(res.data) == set(live.data)
    assert [(e["type"], e["reason"], e["count"]) for e in res.data["events"]] == [
        ("Normal", "Scheduled", 1), ("Warning", "BackOff", 9)]
    assert all(e.kind == "Pod" and e.name == state.name for e in res.evidence.events)
    assert "last OOMKilled (exit 137)" in res.summary and "memory=512Mi" in res.summary
    assert "1 warning events: BackOff" in res.summary


def test_not_a_pod() -> None:
    deployment = "Name:  invoicer\nNamespace:  billing\nReplicas:  1 desired | 0 available\nPod Template:\n" \
                 "  Containers:\n   app:\n    Image:  reg/invoicer:7\n"
    assert parse_describe_pod(deployment) is None
    assert parse_describe_pod("Error from server (NotFound): pods \"x\" not found") is None


def test_pending_pod_without_node_or_containers_state() -> None:
    text = "Name: queue-0\nNamespace: jobs\nNode: <none>\nStatus: Pending\nContainers:\n  worker:\n" \
           "    Image: reg/worker:2\n    Requests:\n      nvidia.com/gpu: 1\n    Limits:\n      nvidia.com/gpu: 1\n"
    state, events = parse_describe_pod(text)
    assert (state.status, state.ready, state.extra["node"], events) == ("Pending", "0/1", None, [])
    assert state.extra["containers"][0]["limits"] == {"nvidia.com/gpu": "1"}


def _write_case(tmp: Path, *, kind: str = "pod") -> HolmesCase:
    case = tmp / "case"
    case.mkdir()
    meta = {"tool_name": "kubectl_describe", "match_params": {"kind": kind, "name": "invoicer-5b7d9c8f6-q2wxz",
                                                              "namespace": "billing"}}
    (case / "kubectl_describe.txt").write_text(f"{json.dumps(meta)}\n{json.dumps({'status': 'success'})}\n{DESCRIBE}")
    return HolmesCase("case", case)


def test_replay_serves_the_described_pod(tmp_path: Path) -> None:
    store = case_replay(_write_case(tmp_path)).store()
    args = {"namespace": "billing", "pod": "invoicer-5b7d9c8f6-q2wxz", "since_minutes": 60}
    res = store.answer("kubernetes_describe_pod", args)
    assert res.ok and res.data["containers"][1]["last_reason"] == "OOMKilled"
    assert res.evidence.objects[0].extra["containers"][1]["limits"] == {"memory": "512Mi"}
    assert store.answer("kubernetes_describe_pod", {**args, "pod": "other"}).summary.startswith("no data")
    # The same recording still answers the pod listing, as before.
    assert store.answer("kubernetes_list_pods", {"namespace": "billing"}).evidence.objects


def test_replay_describes_only_pods(tmp_path: Path) -> None:
    store = case_replay(_write_case(tmp_path, kind="deployment")).store()
    assert store.lookup("kubernetes_describe_pod", {"namespace": "billing", "pod": "invoicer-5b7d9c8f6-q2wxz"}) is None
