"""A human question as the offline planner's alert: the resource it names, pinned to the evidence."""

from __future__ import annotations

import pytest

from actors.engine.followups import derive
from actors.engine.offline_planner import alert_from_trigger
from actors.engine.subject import Subject, question_alert, resolve, subject_of
from incidentfox.evidence import EvidenceBundle, ObjectState


@pytest.mark.parametrize(("text", "want"), [
    ('What is wrong with << { "type": "pod", "name": "api-7d9c-x2", "namespace": "team-a" } >> ?',
     Subject("team-a", "pod", "api-7d9c-x2")),
    ("Why is there high latency with the orders deployment?", Subject("", "deployment", "orders", "latency")),
    ("what is the issue with job nightly-sync in namespace batch", Subject("batch", "job", "nightly-sync")),
    ("Why did export-7 job fail?", Subject("", "job", "export-7", "error_rate")),
    ("what's wrong with the billing-app?", Subject("", "", "billing-app")),
    ("is kafka healthy?", Subject("", "", "kafka")),
    ("why is the app in the shop namespace slow?", Subject("shop", "", "", "latency")),
    ("check what is going on in ns-4 namespace on the prod-eu cluster", Subject("ns-4", "", "")),
    ("figure out why workload api in team-b namespace is unhealthy", Subject("team-b", "", "api")),
    ("<@U0BOT> what is wrong with deployment/web -n shop", Subject("shop", "deployment", "web")),
    ("checkout is failing for customers - what happened?", Subject("", "", "", "error_rate")),
    ("hello", Subject()),
])
def test_the_question_names_its_subject(text: str, want: Subject) -> None:
    assert subject_of(text) == want


def _pod(ns: str, name: str, owner: str = "", **kw) -> ObjectState:
    return ObjectState(namespace=ns, kind="pod", name=name, owner=owner, **kw)


def test_the_subject_is_pinned_to_the_namespace_the_tools_found_it_in() -> None:
    alert = question_alert("what is the issue with job nightly in namespace wrong-ns")
    assert alert.entity == "wrong-ns/job/nightly"
    bundle = EvidenceBundle(alert=alert, objects=[ObjectState(namespace="batch", kind="Job", name="nightly")])
    assert resolve(bundle).alert.entity == "batch/job/nightly"
    bare = EvidenceBundle(alert=question_alert("is nightly healthy?"), objects=bundle.objects)
    assert resolve(bare).alert.entity == "batch/job/nightly"


def test_a_subject_nothing_found_is_dropped_and_alerts_are_left_alone() -> None:
    asked = EvidenceBundle(alert=question_alert("is kafka healthy?"), objects=[_pod("a", "web-1")])
    assert resolve(asked).alert.entity == ""
    alerted = asked.model_copy(update={"alert": asked.alert.model_copy(update={"labels": {}, "entity": "x/pod/y"})})
    assert resolve(alerted).alert.entity == "x/pod/y"


def test_a_slack_question_becomes_an_alert_on_its_subject_and_an_alert_keeps_its_services() -> None:
    asked = alert_from_trigger({"human": True, "is_alert": False, "title": "why is web-api slow?",
                                "text": "why is web-api slow?"}, [])
    assert (asked.entity, asked.metric) == ("web-api", "latency")
    alerted = alert_from_trigger({"is_alert": True, "title": "web-api slow", "text": "why is web-api slow?"}, ["web"])
    assert alerted.entity == "web" and "trigger" not in alerted.labels


def test_the_subject_leads_to_its_pods_logs_and_events() -> None:
    bundle = EvidenceBundle(alert=question_alert("what is wrong with job nightly?"), objects=[
        ObjectState(namespace="batch", kind="Job", name="nightly", status="Running"),
        _pod("batch", "nightly-x7k2p", "job/nightly"), _pod("batch", "other-4f5gh", "job/other")])
    calls = derive(resolve(bundle), available={"kubernetes_get_pod_logs", "kubernetes_get_events"}, window_minutes=60)
    assert [(f.tool, f.args.get("pod") or f.args.get("object_name")) for f in calls] == [
        ("kubernetes_get_pod_logs", "nightly-x7k2p"), ("kubernetes_get_events", "nightly-x7k2p")]


def test_a_question_that_names_no_resource_keeps_its_symptom_as_text_only() -> None:
    alert = alert_from_trigger({"human": True, "title": "checkout is failing for customers - what happened?",
                                "text": "checkout is failing for customers - what happened?"}, [])
    assert (alert.entity, alert.metric) == ("", "") and "failing" in alert.title


@pytest.mark.parametrize("text", ["why is my deployment broken?", "the pod is stuck again", "our job keeps failing"])
def test_english_after_a_kind_word_is_not_a_name(text: str) -> None:
    assert subject_of(text).name == ""
