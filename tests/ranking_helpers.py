"""Small synthetic bundles for the ranking tests (no datasets, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from incidentfox.evidence import Alert, MetricSeries, TopologyEdge

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
STEP = 60.0


def ts(n: int, start: datetime = T0 - timedelta(minutes=10)) -> list[float]:
    return [start.timestamp() + i * STEP for i in range(n)]


def series(entity: str, values: list[float], *, metric: str = "latency", statistic: str = "Average",
           start: datetime = T0 - timedelta(minutes=10), baseline: bool = False) -> MetricSeries:
    return MetricSeries(entity=entity, metric=metric, statistic=statistic, timestamps=ts(len(values), start),
                        values=values, baseline=baseline)


def baseline(entity: str, level: float, *, n: int = 60, jitter: float = 0.02, metric: str = "latency",
             statistic: str = "Average") -> MetricSeries:
    """A steady normal-operation series: ``level`` with a small deterministic wiggle."""
    vals = [level * (1 + jitter * ((i * 7) % 5 - 2) / 2) for i in range(n)]
    return series(entity, vals, metric=metric, statistic=statistic, start=T0 - timedelta(hours=5), baseline=True)


def incident(entity: str, level: float, peak: float, *, metric: str = "latency", statistic: str = "Average",
             n_pre: int = 10, n_post: int = 5) -> MetricSeries:
    """``n_pre`` points at ``level`` before T0, then ``n_post`` points at ``peak``."""
    return series(entity, [level] * n_pre + [peak] * n_post, metric=metric, statistic=statistic)


def alert(entity: str = "", metric: str = "latency", **kw: object) -> Alert:
    return Alert(title=kw.pop("title", f"{entity} {metric} high"), entity=entity, metric=metric,  # type: ignore[arg-type]
                 started_at=T0, **kw)  # type: ignore[arg-type]


def edges(*pairs: tuple[str, str]) -> list[TopologyEdge]:
    return [TopologyEdge(caller=a, callee=b) for a, b in pairs]
