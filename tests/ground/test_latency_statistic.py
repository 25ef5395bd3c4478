"""Which latency statistic an alert is on, read from synthetic alerts in the shapes real sources send:
Prometheus rule expressions (labels, Alertmanager text, generatorURL), CloudWatch alarms (SNS
notification, DescribeAlarms, metric math), plain labels and titles."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from incidentfox.evidence import Alert
from incidentfox.latency_statistic import alert_statistic, asked, from_cloudwatch, from_promql, normalize

AVG_EXPR = ("sum by (service) (rate(http_server_request_duration_seconds_sum[5m])) / "
            "sum by (service) (rate(http_server_request_duration_seconds_count[5m])) > 0.5")
P95_EXPR = "histogram_quantile(0.95, sum by (le, service) (rate(http_request_duration_seconds_bucket[5m]))) > 1"


@pytest.mark.parametrize(("raw", "want"), [
    ("Average", "average"), ("avg", "average"), ("MEAN", "average"), ("p99", "p99"), ("P95", "p95"),
    ("p99.9", "p99.9"), ("99th", "p99"), ("0.99", "p99"), ("0.5", "p50"), ("0.999", "p99.9"),
    ("Maximum", None), ("Sum", None), ("SampleCount", None), ("", None), (None, None), ("p100", None),
])
def test_normalize(raw: object, want: str | None) -> None:
    assert normalize(raw) == want


def test_promql_sum_over_count_is_the_average_and_a_histogram_quantile_its_quantile() -> None:
    assert from_promql(AVG_EXPR) == "average"
    assert from_promql("rate(rpc_latency_sum[1m]) / rate(rpc_latency_count[1m])") == "average"
    assert from_promql(P95_EXPR) == "p95"
    assert from_promql("histogram_quantile(0.999, rate(x_bucket[5m]))") == "p99.9"
    # a sum over another metric's count is not an average of one histogram
    assert from_promql("rate(a_sum[5m]) / rate(b_count[5m])") is None
    assert from_promql('sum(rate(http_requests_total{code=~"5.."}[5m]))') is None


def test_alertmanager_rule_expression_in_a_label_or_the_generator_url() -> None:
    by_label = Alert(title="HighLatency", entity="checkout", labels={"expr": AVG_EXPR})
    assert alert_statistic(by_label) == "average"
    url = "http://prometheus:9090/graph?g0.expr=" + quote(P95_EXPR) + "&g0.tab=1"
    by_url = Alert(title="[FIRING:1] RequestLatencyHigh", entity="checkout", text="- firing RequestLatencyHigh")
    assert alert_statistic(by_url, extra_texts=[url]) == "p95"


def test_alertmanager_text_lists_the_labels() -> None:
    alert = Alert(title="[FIRING:1] SlowRequests", text="- firing SlowRequests {quantile=0.9, service=api}: "
                                                        "request duration above 2s")
    assert alert_statistic(alert) == "p90"


def test_cloudwatch_alarm_statistic_and_extended_statistic() -> None:
    sns = {"AlarmName": "api-latency", "NewStateValue": "ALARM",
           "Trigger": {"MetricName": "Latency", "Namespace": "AWS/ApiGateway", "Statistic": "AVERAGE",
                       "Period": 300, "Threshold": 1.0}}
    assert alert_statistic(Alert(title="ALARM: api-latency", text=json.dumps(sns))) == "average"
    extended = {"AlarmName": "alb-latency", "Trigger": {"MetricName": "TargetResponseTime",
                                                        "ExtendedStatistic": "p99", "Statistic": None}}
    assert alert_statistic(Alert(title="ALARM: alb-latency", text=json.dumps(extended))) == "p99"
    described = {"MetricAlarms": [], "AlarmName": "x", "MetricName": "Duration", "ExtendedStatistic": "p95"}
    assert from_cloudwatch(described) == "p95"
    math = {"Metrics": [{"Id": "m1", "MetricStat": {"Metric": {"MetricName": "Latency"}, "Stat": "p90"}}]}
    assert from_cloudwatch(math) == "p90"
    # a CloudWatch alarm forwarded as text (PagerDuty custom details, a chat message)
    forwarded = Alert(title="Latency alarm", text='details: {"MetricName": "Latency", "ExtendedStatistic": "p99.9"}')
    assert alert_statistic(forwarded) == "p99.9"


def test_labels_and_title() -> None:
    assert alert_statistic(Alert(title="x latency breached", metric="latency",
                                 labels={"statistic": "Average"})) == "average"
    assert alert_statistic(Alert(title="checkout p95 latency above 800 ms")) == "p95"
    assert alert_statistic(Alert(title="checkout average response time high")) == "average"


def test_only_latency_alerts_have_a_latency_statistic() -> None:
    assert alert_statistic(Alert(title="availability dropped", metric="availability",
                                 labels={"statistic": "Average"})) is None
    assert alert_statistic(Alert(title="CPU average above 90%")) is None
    assert alert_statistic(Alert(title="checkout latency high")) is None     # names none


def test_asked_adds_the_alerts_statistic_to_the_teams() -> None:
    assert asked(("p99",), "average") == ("p99", "average")
    assert asked(("p99",), "p99") == ("p99",)
    assert asked(("p99",), None) == ("p99",)
    assert asked((), None) == ("p99",)
