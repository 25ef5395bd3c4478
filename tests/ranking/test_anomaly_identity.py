"""The fast anomaly scorer gives what the straightforward one gave, bit for bit.

The reference below is the scorer as it was before it was made fast (per-point loops, NumPy's
median, a linear scan for each series' baseline, every series scored anew): on generated series
with NaN values, unsorted and tied timestamps, empty or mismatched lists and points exactly half a
step from the alert's times, every score, mask and view must be identical (floats compared by their
bytes, so even the sign of a zero counts).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.ranking import anomaly as A
from incidentfox.evidence import Alert, EvidenceBundle, MetricSeries

T0 = 1_700_000_000.0
STEP = 60.0
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the reference ---------------------------------------------------------------------------------

def ref_score_one(series: MetricSeries, baseline: MetricSeries | None, onset: float | None) -> A.SeriesScore | None:
    ts = np.asarray(series.timestamps, dtype=float)
    xs = np.asarray(series.values, dtype=float)
    n = min(len(ts), len(xs))
    ts, xs = ts[:n], xs[:n]
    ok = ~np.isnan(xs)
    ts, xs = ts[ok], xs[ok]
    if len(ts) == 0:
        return None
    order = np.argsort(ts)
    ts, xs = ts[order], xs[order]
    step = float(np.median(np.diff(ts))) if len(ts) > 1 else 60.0
    if onset is None:
        onset = float(ts[-max(1, len(ts) // 3)])
    post = ts > onset - step
    if not post.any():
        return None
    pre_vals = xs[~post]
    if baseline is not None:
        b = np.asarray(baseline.values, dtype=float)
        b = b[~np.isnan(b)]
    else:
        b = pre_vals
    if len(b) < A.MIN_BASELINE:
        return None
    center = float(np.median(b))
    mad = 1.4826 * float(np.median(np.abs(b - center)))
    d = A.direction(series.metric)
    pct = d < 0 and center > 1.0
    scale = max(mad, A.PCT_FLOOR if pct else A.REL_FLOOR * abs(center))
    x = xs[post]
    if scale < 1e-12:
        scale = max(0.1 * float(np.max(np.abs(x))), 1e-12)
    sign = d if d else 1
    if d:
        z = d * (x - center) / scale
        if len(pre_vals):
            z = np.minimum(z, d * (x - float(np.median(pre_vals))) / scale)
    else:
        z = np.abs(x - center) / scale
        if len(pre_vals):
            z = np.minimum(z, np.abs(x - float(np.median(pre_vals))) / scale)
    return A.SeriesScore(entity=series.entity, metric=series.metric, statistic=series.statistic, unit=series.unit,
                         center=center, times=ts[post], values=x, z=z, delta=sign * (x - center),
                         window={float(t): float(sign * v) for t, v in zip(ts, xs, strict=True)}, step=step)


def ref_at_times(s: A.SeriesScore, times: list[float] | None) -> np.ndarray:
    if times is None:
        return np.ones(len(s.times), dtype=bool)
    if not times:
        return np.zeros(len(s.times), dtype=bool)
    tt = np.asarray(times)
    return np.array([np.min(np.abs(tt - t)) <= s.step / 2 for t in s.times], dtype=bool)


def ref_analyze(bundle: EvidenceBundle) -> A.AnomalyView:
    alert = bundle.alert
    onset = bundle.alert.started_at.timestamp() if bundle.alert.started_at else None
    live = [s for s in bundle.metrics if not s.baseline]

    def first_baseline(s: MetricSeries) -> MetricSeries | None:
        return next((b for b in bundle.metrics if b.baseline and (b.entity, b.metric, b.statistic)
                     == (s.entity, s.metric, s.statistic)), None)

    def family() -> str:
        if alert.metric in {s.metric for s in live}:
            return alert.metric
        mine = [s for s in live if alert.entity and s.entity == alert.entity and A.direction(s.metric)]
        text = f"{alert.title} {alert.text}".lower()
        for word, pattern in A._TEXT_METRICS:
            if re.search(pattern, text):
                named = sorted({s.metric for s in mine if word in s.metric.lower()})
                if named:
                    return A._on_statistic(named, alert) if word == "latency" else named[0]
        scored = [x for s in mine if (x := ref_score_one(s, first_baseline(s), onset)) is not None]
        return max(scored, key=lambda x: float(x.z.max())).metric if scored else ""

    metric = family()
    wanted = None if not metric else {metric} | {s.metric for s in live if A.direction(s.metric)}
    baselines = {(s.entity, s.metric, s.statistic): s for s in bundle.metrics if s.baseline}
    chosen = A._one_stat([s for s in live if wanted is None or s.metric in wanted], alert.labels.get("statistic", ""))
    scored = [x for s in chosen if (x := ref_score_one(s, baselines.get((s.entity, s.metric, s.statistic)), onset)) is not None]
    pool = [s for s in scored if not metric or s.metric == metric]
    others = [s for s in scored if metric and s.metric != metric and A.direction(s.metric)]
    alert_series = next((s for s in pool if alert.entity and s.entity == alert.entity), None)
    times, alert_z, confirmed = None, 0.0, None
    if alert_series is not None:
        alert_z = float(alert_series.z.max())
        confirmed = alert_z >= A.GATE_Z
        times = [float(t) for t, z in zip(alert_series.times, alert_series.z, strict=True) if z >= min(A.ROW_Z, alert_z)]

    def nodes(group: list[A.SeriesScore]) -> dict[str, A.NodeAnomaly]:
        out: dict[str, A.NodeAnomaly] = {}
        for s in group:
            mask = ref_at_times(s, times)
            if mask.any():
                i = int(np.argmax(np.where(mask, s.z, -np.inf)))
                cand = A.NodeAnomaly(entity=s.entity, z=float(s.z[i]), delta=float(s.delta[mask].max()),
                                     series=s, at=float(s.times[i]))
                if s.entity not in out or cand.z > out[s.entity].z:
                    out[s.entity] = cand
        return out

    return A.AnomalyView(metric=metric, alert_series=alert_series, alert_z=alert_z, confirmed=confirmed,
                         times=times if times is not None else [], nodes=nodes(pool), secondary=nodes(others))


# --- comparison ------------------------------------------------------------------------------------

def same_float(a: float, b: float) -> bool:
    return np.float64(a).tobytes() == np.float64(b).tobytes()


def same_array(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same_score(got: A.SeriesScore | None, want: A.SeriesScore | None) -> None:
    assert (got is None) == (want is None)
    if got is None or want is None:
        return
    assert (got.entity, got.metric, got.statistic, got.unit) == (want.entity, want.metric, want.statistic, want.unit)
    assert same_float(got.center, want.center) and same_float(got.step, want.step)
    for f in ("times", "values", "z", "delta"):
        assert same_array(getattr(got, f), getattr(want, f)), f
    assert [(np.float64(k).tobytes(), np.float64(v).tobytes()) for k, v in got.window.items()] == \
        [(np.float64(k).tobytes(), np.float64(v).tobytes()) for k, v in want.window.items()]


def assert_same_nodes(got: dict[str, A.NodeAnomaly], want: dict[str, A.NodeAnomaly]) -> None:
    assert list(got) == list(want)
    for e, g in got.items():
        w = want[e]
        assert same_float(g.z, w.z) and same_float(g.delta, w.delta) and same_float(g.at, w.at)
        assert_same_score(g.series, w.series)
        assert g.quote() == w.quote()


# --- generated inputs ------------------------------------------------------------------------------

VALUES = st.one_of(st.floats(-5, 5, allow_nan=False), st.just(float("nan")), st.just(0.0), st.just(-0.0),
                   st.sampled_from([0.1, 0.5, 1.0, 2.0, 100.0, 99.0]))
# timestamps on a 60 s grid (so points fall exactly half a step from each other), sometimes off it
TIMES = st.one_of(st.integers(-40, 15).map(lambda k: T0 + STEP * k),
                  st.integers(-80, 30).map(lambda k: T0 + STEP * k / 2), st.floats(T0 - 2400, T0 + 900))
METRICS = st.sampled_from(["latency", "availability", "requests", "cpu", "error_rate"])


@st.composite
def series(draw: st.DrawFn, *, entity: str | None = None, metric: str | None = None, baseline: bool = False,
           statistic: str | None = None) -> MetricSeries:
    n = draw(st.integers(0, 45))
    if draw(st.booleans()):
        ts = [T0 + STEP * (k - n + 10) for k in range(n)]        # a regular grid, the common case
        if draw(st.booleans()):
            ts = draw(st.permutations(ts))
    else:
        ts = draw(st.lists(TIMES, min_size=n, max_size=n))
    level = draw(st.sampled_from([0.0, 0.1, 1.0, 50.0, 100.0]))
    vals = [level + v if draw(st.booleans()) else level for v in draw(st.lists(VALUES, min_size=n, max_size=n))]
    cut = draw(st.integers(0, 2))
    vals = vals[:len(vals) - cut] if draw(st.booleans()) else vals      # mismatched lengths
    return MetricSeries(entity=entity or draw(st.sampled_from(["a", "b", "c"])), metric=metric or draw(METRICS),
                        statistic=statistic if statistic is not None else draw(st.sampled_from(["", "p99", "Average"])),
                        timestamps=ts, values=vals, baseline=baseline)


ONSETS = st.one_of(st.none(), st.just(T0), st.just(T0 + STEP / 2), st.floats(T0 - 1800, T0 + 600))


@SETTINGS
@given(st.data())
def test_score_one_is_the_reference(data: st.DataObject) -> None:
    s = data.draw(series())
    base = data.draw(st.one_of(st.none(), series(entity=s.entity, metric=s.metric, baseline=True)))
    onset = data.draw(ONSETS)
    assert_same_score(A.score_one(s, base, onset), ref_score_one(s, base, onset))


@SETTINGS
@given(st.data())
def test_at_times_is_the_reference(data: st.DataObject) -> None:
    scored = A.score_one(s := data.draw(series()), None, data.draw(ONSETS))
    if scored is None:
        scored = A.SeriesScore(entity="a", metric="m", statistic="", unit="", center=0.0, times=np.array([]),
                               values=np.array([]), z=np.array([]), delta=np.array([]), window={}, step=STEP)
    times = data.draw(st.one_of(st.none(), st.lists(st.one_of(
        TIMES, st.sampled_from([float(t) + d for t in s.timestamps[:5] for d in (scored.step / 2, -scored.step / 2)]
                               or [T0])), max_size=12)))
    near = None if times is None else np.sort(np.asarray(times, dtype=float))
    assert same_array(A._at_times(scored, near), ref_at_times(scored, times))


@SETTINGS
@given(st.data())
def test_analyze_is_the_reference(data: st.DataObject) -> None:
    metrics = []
    for entity in data.draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4, unique=True)):
        for metric in data.draw(st.lists(METRICS, min_size=1, max_size=3, unique=True)):
            stat = data.draw(st.sampled_from(["", "p99", "Average"]))
            metrics.append(data.draw(series(entity=entity, metric=metric, statistic=stat)))
            for _ in range(data.draw(st.integers(0, 2))):    # none, one, or a duplicate baseline
                metrics.append(data.draw(series(entity=entity, metric=metric, statistic=stat, baseline=True)))
    entity = data.draw(st.sampled_from(["a", "b", ""]))
    alert = Alert(title=data.draw(st.sampled_from(["", "high latency", "errors up", "service down", "cpu"])),
                  entity=entity, metric=data.draw(st.sampled_from(["", "latency", "requests", "nope"])),
                  started_at=data.draw(st.sampled_from([None, datetime.fromtimestamp(T0, UTC),
                                                        datetime.fromtimestamp(T0 + STEP / 2, UTC)])),
                  labels=data.draw(st.sampled_from([{}, {"statistic": "p99"}, {"statistic": "Average"}])))
    bundle = EvidenceBundle(alert=alert, metrics=metrics)
    got, want = A.analyze(bundle), ref_analyze(bundle)
    assert (got.metric, got.confirmed) == (want.metric, want.confirmed)
    assert same_float(got.alert_z, want.alert_z)
    assert [np.float64(t).tobytes() for t in got.times] == [np.float64(t).tobytes() for t in want.times]
    assert_same_score(got.alert_series, want.alert_series)
    assert_same_nodes(got.nodes, want.nodes)
    assert_same_nodes(got.secondary, want.secondary)
    for e in got.nodes:
        r1, r2 = got.correlation(e), want.correlation(e)
        assert (r1 is None and r2 is None) or same_float(r1, r2)  # type: ignore[arg-type]
