"""Anomaly scoring: robust z-scores against a baseline, checked for a change point.

For every metric series of the incident window (``MetricSeries.baseline is False``):

1. **Baseline.** The matching ``baseline=True`` series (same entity, metric, statistic); when
   there is none, the series' own points before the onset.
2. **Robust z.** ``center = median(baseline)``, ``scale = max(1.4826·MAD, floor)``, where the
   floor is 4 % of ``|center|`` for latency-like metrics and 0.25 points for percentages
   (availability). Without the floor a flat baseline (MAD = 0) makes every wiggle infinite.
3. **Direction.** Latency, errors, CPU, memory count upwards; availability and success rates
   downwards; other metrics (requests) both ways.
4. **Change point.** A point after the onset counts only as far as it also departs from the
   median of the window's own points before the onset (``z = min(z_baseline, z_shift)``). A level
   that was already there before the alert is drift, not the incident.
5. **Alert alignment.** The alert's metric family is the one it states, else the one its text
   names (latency, error, availability) among its entity's series (of several latency families,
   the one of the statistic the alert is on: ``latency_average`` for an alert on the average), else its entity's most
   anomalous family. If the alert's entity has a series in that family, that series is the
   *gate*: the alert is confirmed when its z reaches ``GATE_Z``, and every other node is scored only
   at the times the alerting series is elevated (z ≥ ``ROW_Z``). A node that peaks after the alert
   recovered does not explain it.

The onset is the alert's ``started_at``; the point whose bucket contains it is the first incident
point. Without an onset the last third of the window is the incident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from incidentfox.evidence import Alert, EvidenceBundle, MetricSeries
from incidentfox.latency_statistic import alert_statistic

GATE_Z = 2.0          # the alerting series must reach this to confirm the alert
ROW_Z = 1.0           # incident times = where the alerting series is at least this elevated
TAU = 4.0             # a node is anomalous at this z
REL_FLOOR = 0.04      # scale floor, fraction of |center|
PCT_FLOOR = 0.25      # scale floor for percentages, in points
MIN_BASELINE = 20     # fewer baseline points than this: the series is not scored
_UP = ("latency", "duration", "error", "fault", "5xx", "cpu", "memory", "restart", "saturation",
       "queue", "lag", "timeout")
_DOWN = ("avail", "success", "apdex", "uptime", "free")     # avail: availability, available, node_exporter's avail
_PREFERRED_STATS = ("Average", "avg", "mean", "", "p50")


def median(values: np.typing.ArrayLike) -> float:
    """``float(np.median(values))``, bit for bit, at a fraction of its cost on the short series scored
    here (one sort and an index: NumPy's median spends ~15 µs on wrappers and NaN checks; a run scores
    hundreds of series, and the offline planner's ranking was the burst's largest CPU cost)."""
    s = np.array(values, dtype=float).ravel()       # a copy, sorted in place
    s.sort()
    n = s.size
    if n == 0 or s.item(-1) != s.item(-1):   # NaN sorts last; like NumPy, an empty or NaN input gives NaN
        return float("nan")
    m = n // 2
    return s.item(m) if n % 2 else (s.item(m - 1) + s.item(m)) / 2


@lru_cache(maxsize=4096)      # a pure function of the name, asked for every series of every run
def direction(metric: str) -> int:
    """+1 when higher is worse, -1 when lower is worse, 0 when either way is notable."""
    m = metric.lower()
    if "unavailable" in m:
        return 1
    if any(w in m for w in _DOWN):
        return -1
    if any(w in m for w in _UP):
        return 1
    return 0


@dataclass(frozen=True)
class SeriesScore:
    entity: str
    metric: str
    statistic: str
    unit: str
    center: float                   # baseline median
    times: np.ndarray               # incident points (unix seconds)
    values: np.ndarray
    z: np.ndarray                   # direction-aware, change-point-checked
    delta: np.ndarray               # direction-aware departure from center, native units
    window: dict[float, float]      # every point of the case window, direction-adjusted
    step: float


@dataclass
class NodeAnomaly:
    entity: str
    z: float
    delta: float
    series: SeriesScore
    at: float                       # unix time of the worst point

    def quote(self) -> str:
        s = self.series
        i = int(np.argmin(np.abs(s.times - self.at)))
        stat = f" ({s.statistic})" if s.statistic else ""
        unit = f" {s.unit}" if s.unit else ""
        return (f"{s.entity} {s.metric}{stat} {_fmt(s.values[i])}{unit} vs baseline {_fmt(s.center)}{unit}"
                f" (robust z {self.z:.1f})")


@dataclass
class AnomalyView:
    metric: str                                 # the metric family compared ("" = all)
    alert_series: SeriesScore | None
    alert_z: float
    confirmed: bool | None                      # None: nothing to check the alert against
    times: list[float]
    nodes: dict[str, NodeAnomaly] = field(default_factory=dict)
    secondary: dict[str, NodeAnomaly] = field(default_factory=dict)

    def anomalous(self, tau: float = TAU) -> dict[str, NodeAnomaly]:
        return {e: a for e, a in self.nodes.items() if a.z >= tau}

    def correlation(self, entity: str) -> float | None:
        """Pearson correlation of ``entity``'s series with the alerting series over the window."""
        if self.alert_series is None or entity not in self.nodes:
            return None
        a, b = self.nodes[entity].series.window, self.alert_series.window
        common = sorted(set(a) & set(b))
        if len(common) < 3:
            return None
        x, y = np.array([a[t] for t in common]), np.array([b[t] for t in common])
        if np.std(x) == 0 or np.std(y) == 0:
            return None
        return float(np.corrcoef(x, y)[0, 1])


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _onset(bundle: EvidenceBundle) -> float | None:
    at = bundle.alert.started_at
    return at.timestamp() if isinstance(at, datetime) else None


class Robust(NamedTuple):
    """A baseline's robust location and spread (``center``, ``mad`` are NaN below ``MIN_BASELINE``)."""
    n: int              # points with a value
    center: float
    mad: float          # 1.4826 · median absolute deviation


def robust(values: np.typing.ArrayLike) -> Robust:
    b = np.array(values, dtype=float)
    b = b[~np.isnan(b)]
    if len(b) < MIN_BASELINE:
        return Robust(len(b), float("nan"), float("nan"))
    center = median(b)
    return Robust(len(b), center, 1.4826 * median(np.abs(b - center)))


def _points(series: MetricSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The series' points with a value, ordered by time, and the gaps between them."""
    ts = np.array(series.timestamps, dtype=float)
    xs = np.array(series.values, dtype=float)
    if len(ts) != len(xs):
        n = min(len(ts), len(xs))
        ts, xs = ts[:n], xs[:n]
    ok = ~np.isnan(xs)
    if not ok.all():
        ts, xs = ts[ok], xs[ok]
    gaps = ts[1:] - ts[:-1]
    if not (gaps > 0).all():    # unsorted, tied or NaN times: the order np.argsort gives (else it is this one)
        order = np.argsort(ts)
        ts, xs = ts[order], xs[order]
        gaps = ts[1:] - ts[:-1]
    return ts, xs, gaps


def score_one(series: MetricSeries, baseline: MetricSeries | None, onset: float | None, *,
              history: Robust | None = None) -> SeriesScore | None:
    """Score one series; None when it has no incident points or nothing to compare against.
    ``history`` is ``robust(baseline.values)`` when the caller already has it."""
    ts, xs, gaps = _points(series)
    if len(ts) == 0:
        return None
    step = median(gaps) if len(ts) > 1 else 60.0
    if onset is None:
        onset = float(ts[-max(1, len(ts) // 3)])
    post = ts > onset - step
    if not post.any():
        return None
    pre_vals = xs[~post]
    if baseline is None:
        history = robust(pre_vals)
    elif history is None:
        history = robust(baseline.values)
    if history.n < MIN_BASELINE:
        return None      # too little history to call anything anomalous
    center, mad = history.center, history.mad
    d = direction(series.metric)
    pct = d < 0 and center > 1.0
    scale = max(mad, PCT_FLOOR if pct else REL_FLOOR * abs(center))
    x = xs[post]
    if scale < 1e-12:   # flat zero baseline: judge the jump against its own size
        scale = max(0.1 * float(np.max(np.abs(x))), 1e-12)
    sign = d if d else 1
    # the median of the points before the onset (the baseline's own center when they are the baseline)
    ref = (center if baseline is None else median(pre_vals)) if len(pre_vals) else None
    if d:
        z = d * (x - center) / scale
        if ref is not None:
            z = np.minimum(z, d * (x - ref) / scale)
    else:
        z = np.abs(x - center) / scale
        if ref is not None:
            z = np.minimum(z, np.abs(x - ref) / scale)
    return SeriesScore(
        entity=series.entity, metric=series.metric, statistic=series.statistic, unit=series.unit,
        center=center, times=ts[post], values=x, z=z, delta=sign * (x - center),
        window=dict(zip(ts.tolist(), (sign * xs).tolist(), strict=True)), step=step,
    )


def _key(s: MetricSeries) -> tuple[str, str, str]:
    return s.entity, s.metric, s.statistic


class Scorer:
    """One bundle's series scores, each (series, baseline) pair scored once and each baseline's
    center and spread computed once: the anomaly view and the resource findings of one ranking
    share them (the arrays of a :class:`SeriesScore` are never written to)."""

    def __init__(self, bundle: EvidenceBundle) -> None:
        self.bundle = bundle        # keeps the series alive: they are remembered by id
        self.onset = _onset(bundle)
        self.baselines: dict[tuple[str, str, str], MetricSeries] = {}     # the last of a key
        self.first_baselines: dict[tuple[str, str, str], MetricSeries] = {}
        for s in bundle.metrics:
            if s.baseline:
                self.baselines[_key(s)] = s
                self.first_baselines.setdefault(_key(s), s)
        self._robust: dict[int, Robust] = {}
        self._scores: dict[tuple[int, int], SeriesScore | None] = {}

    def score(self, s: MetricSeries, baseline: MetricSeries | None) -> SeriesScore | None:
        key = (id(s), id(baseline))
        if key not in self._scores:
            history = None
            if baseline is not None:
                history = self._robust.get(id(baseline))
                if history is None:
                    history = self._robust[id(baseline)] = robust(baseline.values)
            self._scores[key] = score_one(s, baseline, self.onset, history=history)
        return self._scores[key]


def score_series(bundle: EvidenceBundle, *, metrics: set[str] | None = None,
                 statistic: str | None = None, scorer: Scorer | None = None) -> list[SeriesScore]:
    """Every incident-window series of the bundle (of ``metrics`` only, if given), scored. With
    ``statistic`` set, one statistic per (entity, metric): that one if present, else a preferred one.
    ``scorer``: the bundle's :class:`Scorer`, to reuse its scores."""
    scorer = scorer or Scorer(bundle)
    live = [s for s in bundle.metrics if not s.baseline and (metrics is None or s.metric in metrics)]
    if statistic is not None:
        live = _one_stat(live, statistic)
    out = []
    for s in live:
        scored = scorer.score(s, scorer.baselines.get(_key(s)))
        if scored is not None:
            out.append(scored)
    return out


def _at_times(s: SeriesScore, times: np.ndarray | None) -> np.ndarray:
    """Which points of ``s`` lie within half a step of one of ``times`` (sorted ascending). The
    nearest of ``times`` to a point is one of the two around it, found by bisection."""
    if times is None:
        return np.ones(len(s.times), dtype=bool)
    if not len(times) or times[-1] != times[-1]:    # none, or a NaN (sorted last): no distance is <= anything
        return np.zeros(len(s.times), dtype=bool)
    j = np.searchsorted(times, s.times)
    below = times[np.maximum(j - 1, 0)]
    above = times[np.minimum(j, len(times) - 1)]
    return np.minimum(np.abs(below - s.times), np.abs(above - s.times)) <= s.step / 2


def _one_stat(series: list[MetricSeries], want: str) -> list[MetricSeries]:
    """Per (entity, metric), keep one statistic: ``want`` if present, else the first preferred one."""
    by: dict[tuple[str, str], list[MetricSeries]] = {}
    for s in series:
        by.setdefault((s.entity, s.metric), []).append(s)
    out = []
    for group in by.values():
        stats = {s.statistic: s for s in group}
        pick = next((stats[p] for p in (want, *_PREFERRED_STATS) if p in stats), group[0])
        out.append(pick)
    return out


def _node_anomalies(pool: list[SeriesScore], times: list[float] | None) -> dict[str, NodeAnomaly]:
    near = None if times is None else np.sort(np.asarray(times, dtype=float))
    nodes: dict[str, NodeAnomaly] = {}
    for s in pool:
        mask = _at_times(s, near)
        if not mask.any():
            continue
        i = int(np.where(mask, s.z, -np.inf).argmax())
        cand = NodeAnomaly(entity=s.entity, z=float(s.z[i]), delta=float(s.delta[mask].max()),
                           series=s, at=float(s.times[i]))
        if s.entity not in nodes or cand.z > nodes[s.entity].z:
            nodes[s.entity] = cand
    return nodes


_TEXT_METRICS = (("latency", r"latenc|slow|response time|duration"),
                 ("error", r"error|5xx|fail|exception"),
                 ("availability", r"availab|uptime|down\b|unreachable"))


def _alert_metric(bundle: EvidenceBundle, live: list[MetricSeries], scorer: Scorer) -> str:
    """The alert's metric family: as stated; else the family its text names that its entity reports;
    else the alerting entity's most anomalous family with a direction; else "" (all families)."""
    alert = bundle.alert
    present = {s.metric for s in live}
    if alert.metric in present:
        return alert.metric
    mine = [s for s in live if alert.entity and s.entity == alert.entity and direction(s.metric)]
    text = f"{alert.title} {alert.text}".lower()
    for word, pattern in _TEXT_METRICS:
        if re.search(pattern, text):
            named = sorted({s.metric for s in mine if word in s.metric.lower()})
            if named:
                return _on_statistic(named, alert) if word == "latency" else named[0]
    # (here a series is compared with the first baseline of its key, score_series with the last)
    scored = [x for s in mine if (x := scorer.score(s, scorer.first_baselines.get(_key(s)))) is not None]
    return max(scored, key=lambda x: float(x.z.max())).metric if scored else ""


def _on_statistic(families: list[str], alert: Alert) -> str:
    """Of several latency families (``latency_p99``, ``latency_average``…), the one of the statistic
    the alert is on (:func:`incidentfox.latency_statistic.alert_statistic`), else the first."""
    stat = alert_statistic(alert)
    return next((f for f in families if stat and f.lower().endswith("_" + stat)), families[0])


def analyze(bundle: EvidenceBundle, scorer: Scorer | None = None) -> AnomalyView:
    """Score the bundle's metrics and align them to the alert (see the module docstring).

    ``nodes`` holds each entity's anomaly in the alert's metric family; ``secondary`` its worst
    anomaly in any other family with a direction (latency, errors, saturation, free storage…), which
    lets an unhealthy dependency explain a caller's symptom in a different metric. ``scorer``: the
    bundle's :class:`Scorer`, shared with the ranking's other signals.
    """
    scorer = scorer or Scorer(bundle)
    alert = bundle.alert
    live = [s for s in bundle.metrics if not s.baseline]
    metric = _alert_metric(bundle, live, scorer)
    scored = score_series(bundle, metrics=None if not metric else
                          {metric} | {s.metric for s in live if direction(s.metric)},
                          statistic=alert.labels.get("statistic", ""), scorer=scorer)
    pool = [s for s in scored if not metric or s.metric == metric]
    others = [s for s in scored if metric and s.metric != metric and direction(s.metric)]

    alert_series = next((s for s in pool if alert.entity and s.entity == alert.entity), None)
    times: list[float] | None = None
    alert_z, confirmed = 0.0, None
    if alert_series is not None:
        alert_z = float(alert_series.z.max())
        confirmed = alert_z >= GATE_Z
        times = alert_series.times[alert_series.z >= min(ROW_Z, alert_z)].tolist()
    return AnomalyView(metric=metric, alert_series=alert_series, alert_z=alert_z, confirmed=confirmed,
                       times=times if times is not None else [], nodes=_node_anomalies(pool, times),
                       secondary=_node_anomalies(others, times))
