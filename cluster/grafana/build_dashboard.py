"""Generates ``cluster/grafana/incidentfox.json`` from the metric declarations.

Run ``python cluster/grafana/build_dashboard.py`` after changing a panel; a test checks the committed
JSON equals this output and that every query references an exported metric name.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).with_name("incidentfox.json")

# Ray's own series the dashboard uses next to ours (checked live by tests/ground/test_metrics_export.py).
RAY_BUILTIN_METRICS = ("ray_serve_num_http_requests_total", "ray_serve_http_request_latency_ms_bucket",
                       "ray_serve_deployment_replica_healthy")

PANELS = [
    ("Webhooks by outcome (per s)", "timeseries",
     'sum by (source, outcome) (rate(ray_incidentfox_webhooks_total[5m]))'),
    ("Webhook ack p99 (s)", "timeseries",
     'histogram_quantile(0.99, sum by (le) (rate(ray_incidentfox_webhook_ack_seconds_bucket[5m])))'),
    ("Runs finished by status (per min)", "timeseries",
     'sum by (status) (rate(ray_incidentfox_runs_total[5m])) * 60'),
    ("Runs active", "stat", 'sum(ray_incidentfox_runs_active)'),
    ("Run duration p50 / p95 (s)", "timeseries",
     'histogram_quantile(0.5, sum by (le) (rate(ray_incidentfox_run_seconds_bucket[15m])))'),
    ("Tool call p95 by tool (s)", "timeseries",
     'histogram_quantile(0.95, sum by (le, tool) (rate(ray_incidentfox_tool_call_seconds_bucket[15m])))'),
    ("Tool call errors (per min)", "timeseries",
     'sum by (tool, status) (rate(ray_incidentfox_tool_call_seconds_count{status!="ok"}[5m])) * 60'),
    ("Sandbox sessions active", "stat", 'sum(ray_incidentfox_sandbox_sessions_active)'),
    ("LLM tokens (per min)", "timeseries",
     'sum by (provider, model, kind) (rate(ray_incidentfox_llm_tokens_total[5m])) * 60'),
    ("Undispatched deliveries (intake backlog)", "timeseries",
     'max(ray_incidentfox_deliveries_undispatched)'),
    ("Dispatch attempts by kind and result (per min)", "timeseries",
     'sum by (kind, result) (rate(ray_incidentfox_dispatch_attempts_total[5m])) * 60'),
    ("Scheduled jobs by status (per hour)", "timeseries",
     'sum by (status) (increase(ray_incidentfox_report_jobs_total[1h]))'),
    ("Dedicated worker-group changes by outcome (per hour)", "timeseries",
     'sum by (outcome) (increase(ray_incidentfox_worker_group_changes_total[1h]))'),
    ("Requests refused by rate limits (per s)", "timeseries",
     'sum by (surface, scope) (rate(ray_incidentfox_rate_limited_total[5m]))'),
    ("Serve HTTP requests (per s)", "timeseries",
     'sum by (application, route) (rate(ray_serve_num_http_requests_total[5m]))'),
    ("Serve HTTP latency p99 (ms)", "timeseries",
     'histogram_quantile(0.99, sum by (le, application) (rate(ray_serve_http_request_latency_ms_bucket[5m])))'),
    ("Healthy Serve replicas", "stat", 'sum by (deployment) (ray_serve_deployment_replica_healthy)'),
]


def build() -> dict:
    panels = []
    for i, (title, kind, expr) in enumerate(PANELS):
        panels.append({
            "id": i + 1, "title": title, "type": kind,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8},
            "targets": [{"refId": "A", "expr": expr, "datasource": {"type": "prometheus", "uid": "${datasource}"}}],
        })
    return {
        "title": "IncidentFox", "uid": "incidentfox-overview", "schemaVersion": 39, "version": 1,
        "tags": ["incidentfox", "ray"], "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": panels,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {OUT}")
