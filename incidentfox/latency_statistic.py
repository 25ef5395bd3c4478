"""Which latency statistic an alert is on: the average, or a quantile (p50, p95, p99…).

A latency alert fires on one statistic, and an investigation that looks at another answers a
question nobody asked: a p99 chart can stay flat while the average an alarm watches doubles. The
statistic is read from what the alert itself carries, in the shapes real alert sources use, never
from service names:

* a label or field naming it: ``statistic`` / ``stat`` (``Average``, ``avg``, ``mean``, ``p99``),
  CloudWatch's ``ExtendedStatistic`` (``p99``, ``p99.9``) or ``Statistic`` (``Average``), a
  summary's ``quantile`` label (``0.99``);
* the alert's PromQL (an ``expr``/``query`` label, a Prometheus ``generatorURL``'s ``g0.expr``, or
  text): ``histogram_quantile(0.95, …)`` is p95, a ``…_sum`` rate divided by a ``…_count`` rate is
  the average;
* a CloudWatch alarm (the SNS notification's ``Trigger``, DescribeAlarms' fields, a metric-math
  ``MetricStat.Stat``) anywhere in the alert's text, as JSON or as ``"ExtendedStatistic": "p99"``;
* last, words in the title (``average latency``, ``p95 latency``).

Statistics are normalised to ``average`` or ``p<quantile>`` (``p99``, ``p99.9``); anything else
(``Maximum``, ``Sum``, ``SampleCount``) is not a latency statistic a histogram can answer: None.
Only latency alerts (latency, duration, response time) have one; other alerts answer None.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from incidentfox.evidence import Alert

AVERAGE = "average"
DEFAULT = "p99"
STATISTIC = re.compile(r"^(average|p\d{1,2}(\.\d{1,3})?)$")
_AVERAGE_WORDS = frozenset({"average", "avg", "mean"})
_LABEL_KEYS = ("extendedstatistic", "statistic", "stat", "quantile", "percentile")
_EXPR_KEYS = ("expr", "expression", "query", "promql")
_LATENCY = re.compile(r"(?i)latenc|duration|response[ _-]?time|responsetime|slow")
_QUANTILE_FN = re.compile(r"histogram_quantile\s*\(\s*([0-9.]+)\s*,")
_SUM_OVER_COUNT = re.compile(r"(\w+)_sum\b[^/]*\)\s*/\s*[^/]*\b\1_count\b", re.DOTALL)
_JSON_FIELD = re.compile(r'"(ExtendedStatistic|Statistic|Stat)"\s*:\s*"([^"]{1,20})"')
_TEXT_LABEL = re.compile(r'(?i)\b(statistic|stat|quantile|percentile)\s*[=:]\s*"?([\w.]+)')
_TITLE_WORDS = re.compile(r"(?i)\b(average|avg|mean|p\d{1,2}(?:\.\d{1,3})?)\b")


def normalize(raw: Any) -> str | None:
    """``average`` or ``p<q>`` for a statistic's usual spellings (``Average``, ``avg``, ``P99``,
    ``p99.9``, ``99th``, ``0.99``, ``tm99`` is not one); None for anything else."""
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
        return None
    text = str(raw).strip().lower()
    if text in _AVERAGE_WORDS:
        return AVERAGE
    m = re.fullmatch(r"0?\.(\d{1,5})", text)          # a quantile: 0.99
    if m:
        return _quantile_name(float("0." + m.group(1)))
    m = re.fullmatch(r"p?(\d{1,2}(?:\.\d{1,3})?)(?:th|%)?", text)   # a percentile: p99, 99th
    if m and 0 < float(m.group(1)) < 100:
        return _quantile_name(float(m.group(1)) / 100)
    return None


def _quantile_name(q: float) -> str | None:
    if not 0 < q < 1:
        return None
    pct = round(q * 100, 3)
    return f"p{pct:g}"


def from_promql(expr: str) -> str | None:
    """The statistic a PromQL expression computes: a histogram quantile or a sum-over-count average."""
    m = _QUANTILE_FN.search(expr)
    if m:
        try:
            return _quantile_name(float(m.group(1)))
        except ValueError:
            return None
    if _SUM_OVER_COUNT.search(expr):
        return AVERAGE
    return None


def from_cloudwatch(doc: Any) -> str | None:
    """A CloudWatch alarm's statistic: ``ExtendedStatistic`` wins over ``Statistic``, in the SNS
    notification's ``Trigger``, at the top level (DescribeAlarms) or in a metric query's ``MetricStat``."""
    if isinstance(doc, list):
        return next((s for s in map(from_cloudwatch, doc) if s), None)
    if not isinstance(doc, Mapping):
        return None
    for key in ("ExtendedStatistic", "Statistic"):
        stat = normalize(doc.get(key))
        if stat:
            return stat
    stat_of = doc.get("MetricStat")
    if isinstance(stat_of, Mapping) and (stat := normalize(stat_of.get("Stat"))):
        return stat
    for key in ("Trigger", "Metrics", "AlarmDetails", "Message", "details", "custom_details"):
        inner = doc.get(key)
        if isinstance(inner, str) and inner.lstrip().startswith("{"):
            inner = _json(inner)
        if (stat := from_cloudwatch(inner)) is not None:
            return stat
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _from_text(text: str) -> str | None:
    if not text:
        return None
    doc = _json(text) if text.lstrip().startswith(("{", "[")) else None
    if doc is not None and (stat := from_cloudwatch(doc)):
        return stat
    fields = {k: v for k, v in _JSON_FIELD.findall(text)}
    for key in ("ExtendedStatistic", "Statistic", "Stat"):
        if (stat := normalize(fields.get(key))) is not None:
            return stat
    if "generatorurl" in text.lower() or "g0.expr" in text:
        for url in re.findall(r"https?://\S+", text):
            if (stat := _from_url(url)) is not None:
                return stat
    if (stat := from_promql(text)) is not None:
        return stat
    for _, value in _TEXT_LABEL.findall(text):
        if (stat := normalize(value)) is not None:
            return stat
    return None


def _from_url(url: str) -> str | None:
    """A Prometheus ``generatorURL`` (``…/graph?g0.expr=…``) → the statistic of its expression."""
    try:
        query = parse_qs(urlsplit(url).query)
    except ValueError:
        return None
    return next((s for e in query.get("g0.expr", []) if (s := from_promql(e))), None)


def is_latency(alert: Alert) -> bool:
    """Whether the alert is about latency (its metric, title, or a label or expression saying so)."""
    text = " ".join([alert.metric, alert.title, *alert.labels.values(), *alert.labels.keys()])
    return bool(_LATENCY.search(text) or _LATENCY.search(alert.text[:2000]))


def alert_statistic(alert: Alert, *, extra_texts: Iterable[str] = ()) -> str | None:
    """The latency statistic ``alert`` is on (see the module docstring for where it is read), or
    None when the alert is not a latency alert or names none. ``extra_texts``: more of the alert as
    the source sent it (links such as a ``generatorURL``, a raw payload)."""
    if not is_latency(alert):
        return None
    labels = {k.lower(): v for k, v in alert.labels.items()}
    for key in _LABEL_KEYS:
        if (stat := normalize(labels.get(key))) is not None:
            return stat
    for key in _EXPR_KEYS:
        if key in labels and (stat := from_promql(labels[key])) is not None:
            return stat
    for text in (alert.text, *extra_texts):
        if (stat := _from_text(text)) is not None:
            return stat
    if _LATENCY.search(alert.title):
        for word in _TITLE_WORDS.findall(alert.title):
            if (stat := normalize(word)) is not None:
                return stat
    return None


def asked(default: Iterable[str], alert_stat: str | None) -> tuple[str, ...]:
    """The latency statistics to query: ``default`` (the team's), plus the alert's own when it differs."""
    out = [s for s in dict.fromkeys(default) if s]
    if alert_stat and alert_stat not in out:
        out.append(alert_stat)
    return tuple(out or (DEFAULT,))
