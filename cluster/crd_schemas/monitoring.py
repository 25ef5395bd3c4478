"""Hand-written JSON schemas for the two Prometheus Operator kinds the manifests use.

The ``monitoring.coreos.com`` CRDs are not vendored here (``../shared`` holds only KubeRay's), so
these schemas are written from the prometheus-operator API reference (``monitoring.coreos.com/v1``:
``PodMonitor``, ``PodMetricsEndpoint``, ``RelabelConfig``, ``PrometheusRule``, ``RuleGroup``,
``Rule``), covering the fields this repository uses and their neighbours. ``cluster/validate.py``
makes them strict like the others (an unknown field is an error), so a typo such as
``podMetricEndpoints`` or ``runbookUrl`` in a label map fails offline. They check shape only: the
PromQL in a rule is checked against the declared metrics by tests/kuberay/test_cluster_monitoring.py.
"""

from __future__ import annotations

from typing import Any

# The CRDs' duration pattern (prometheus-operator ``Duration``).
DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?"
                                         r"(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_LABEL_NAME = {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"}

_METADATA = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string"}, "namespace": {"type": "string"},
    "labels": _STRING_MAP, "annotations": _STRING_MAP}}

_LABEL_SELECTOR = {"type": "object", "properties": {
    "matchLabels": _STRING_MAP,
    "matchExpressions": {"type": "array", "items": {"type": "object", "required": ["key", "operator"],
                                                    "properties": {
        "key": {"type": "string"},
        "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
        "values": {"type": "array", "items": {"type": "string"}}}}}}}

_RELABEL = {"type": "object", "properties": {
    "sourceLabels": {"type": "array", "items": _LABEL_NAME},
    "separator": {"type": "string"}, "targetLabel": {"type": "string"}, "regex": {"type": "string"},
    "modulus": {"type": "integer", "minimum": 0}, "replacement": {"type": "string"},
    "action": {"enum": ["replace", "Replace", "keep", "Keep", "drop", "Drop", "hashmod", "HashMod",
                        "labelmap", "LabelMap", "labeldrop", "LabelDrop", "labelkeep", "LabelKeep",
                        "lowercase", "Lowercase", "uppercase", "Uppercase", "keepequal", "KeepEqual",
                        "dropequal", "DropEqual"]}}}

_ENDPOINT = {"type": "object", "properties": {
    "port": {"type": "string"}, "portNumber": {"type": "integer", "minimum": 1, "maximum": 65535},
    "path": {"type": "string"}, "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
    "params": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    "interval": DURATION, "scrapeTimeout": DURATION, "honorLabels": {"type": "boolean"},
    "honorTimestamps": {"type": "boolean"}, "enableHttp2": {"type": "boolean"},
    "filterRunning": {"type": "boolean"},
    "relabelings": {"type": "array", "items": _RELABEL},
    "metricRelabelings": {"type": "array", "items": _RELABEL}}}

POD_MONITOR: dict[str, Any] = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PodMonitor"},
        "metadata": _METADATA,
        "spec": {"type": "object", "required": ["selector", "podMetricsEndpoints"], "properties": {
            "jobLabel": {"type": "string"},
            "podTargetLabels": {"type": "array", "items": {"type": "string"}},
            "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
            "selector": _LABEL_SELECTOR,
            "namespaceSelector": {"type": "object", "properties": {
                "any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}},
            "sampleLimit": {"type": "integer", "minimum": 0},
            "scrapeProtocols": {"type": "array", "items": {"type": "string"}}}}}}

_RULE = {"type": "object", "required": ["expr"],
         "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
         "properties": {
             "alert": {"type": "string", "minLength": 1}, "record": {"type": "string", "minLength": 1},
             "expr": {"type": "string", "minLength": 1}, "for": DURATION, "keep_firing_for": DURATION,
             "labels": _STRING_MAP, "annotations": _STRING_MAP}}

PROMETHEUS_RULE: dict[str, Any] = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PrometheusRule"},
        "metadata": _METADATA,
        "spec": {"type": "object", "required": ["groups"], "properties": {
            "groups": {"type": "array", "items": {"type": "object", "required": ["name", "rules"],
                                                  "properties": {
                "name": {"type": "string", "minLength": 1}, "interval": DURATION,
                "limit": {"type": "integer", "minimum": 0}, "labels": _STRING_MAP,
                "partial_response_strategy": {"type": "string"},
                "query_offset": DURATION,
                "rules": {"type": "array", "minItems": 1, "items": _RULE}}}}}}}}

SCHEMAS: dict[str, dict[str, Any]] = {"PodMonitor": POD_MONITOR, "PrometheusRule": PROMETHEUS_RULE}
