"""incidentfox/metrics.py: every metric declared once as an object, well-formed, used, and checked.

Without Ray (unit tests) recording only checks its tags; with a (fake) Ray the declared objects are
created once with the declared name, description, tag keys and boundaries.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from incidentfox import metrics
from incidentfox.metrics import METRICS, Counter, Gauge, Histogram, Metric, MetricKind

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("incidentfox", "actors", "serve_apps", "config_service", "cluster", "cli", "evaluation")
METRICS_PY = ROOT / "incidentfox" / "metrics.py"
RAY_LABELS = {"WorkerId", "NodeAddress", "SessionName", "Component", "Version", "JobId", "le"}


def _declared() -> dict[str, Metric]:
    """Module constant name → metric."""
    return {name: value for name, value in vars(metrics).items() if isinstance(value, Metric)}


def _production_sources() -> dict[Path, str]:
    return {p: p.read_text() for d in PRODUCTION for p in (ROOT / d).rglob("*.py")
            if p != METRICS_PY and "__pycache__" not in p.parts}


def test_every_metric_is_declared_once_and_well_formed() -> None:
    declared = _declared()
    assert sorted(m.name for m in declared.values()) == sorted(METRICS), "METRICS lists every declared object"
    assert len({id(m) for m in declared.values()}) == len(declared) == len(METRICS)
    for const, m in declared.items():
        assert re.fullmatch(r"incidentfox_[a-z][a-z0-9_]*", m.name), m.name
        assert const == m.name.removeprefix("incidentfox_").upper(), (const, m.name)
        assert m.description.strip().endswith("."), m.name
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", k) for k in m.tag_keys), m.tag_keys
        assert len(set(m.tag_keys)) == len(m.tag_keys) and not set(m.tag_keys) & RAY_LABELS
        if m.kind is MetricKind.COUNTER:
            assert m.name.endswith("_total") and isinstance(m, Counter)
        else:
            assert not m.name.endswith("_total"), m.name
        if m.kind is MetricKind.HISTOGRAM:
            assert isinstance(m, Histogram) and m.name.endswith("_seconds")
            assert m.boundaries and all(0 < a < b for a, b in zip(m.boundaries, m.boundaries[1:]))
        else:
            assert m.boundaries == (), m.name
        assert m.exported()[0].startswith("ray_" + m.name)


def test_every_declared_metric_is_recorded_somewhere() -> None:
    """Referenced as ``metrics.X`` / imported as ``X`` outside metrics.py, or through a helper in
    metrics.py (e.g. ``record_llm_tokens``) that is itself used outside."""
    sources = "\n".join(_production_sources().values())
    tree = ast.parse(METRICS_PY.read_text())
    via_helper: dict[str, set[str]] = {}
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")):
        for node in ast.walk(fn):
            if isinstance(node, ast.Name):
                via_helper.setdefault(node.id, set()).add(fn.name)
    for const in _declared():
        direct = re.search(rf"\b(metrics\.{const}|import[^\n]*\b{const})\b", sources)
        helpers = via_helper.get(const, set())
        indirect = any(re.search(rf"\b{h}\(", sources) for h in helpers)
        assert direct or indirect, f"{const} is declared but never recorded"


def test_no_metric_is_looked_up_by_name() -> None:
    """Metric names appear as string literals only in metrics.py (the Grafana builder's PromQL
    names the exported ``ray_…`` series, which is not a lookup)."""
    names = set(METRICS)
    for path, text in _production_sources().items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in names, f"{path.relative_to(ROOT)} names {node.value!r}"


def test_tags_are_checked_without_ray() -> None:
    metrics.RUNS_TOTAL.inc(status="succeeded")            # declared tags: a no-op without Ray
    metrics.RUN_SECONDS.observe(1.5)
    with pytest.raises(ValueError, match="incidentfox_runs_total takes the tags"):
        metrics.RUNS_TOTAL.inc(stauts="succeeded")
    with pytest.raises(ValueError):
        metrics.TOOL_CALL_SECONDS.observe(0.1, tool="x")   # missing "status"
    with pytest.raises(ValueError):
        metrics.RUNS_ACTIVE.set(3, team="t")               # a gauge without tags


def test_with_ray_the_declared_object_is_created_once(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[str, str, dict[str, Any]]] = []
    recorded: list[tuple[str, float, dict[str, str] | None]] = []

    def fake(kind: str):
        class Fake:
            def __init__(self, name: str, description: str, **kw: Any) -> None:
                made.append((kind, name, {"description": description, **kw}))
                self.name = name

            def inc(self, value: float, tags: dict[str, str] | None = None) -> None:
                recorded.append((self.name, value, tags))

            set = observe = inc
        return Fake

    from ray.util import metrics as rm

    monkeypatch.setattr(metrics, "_ray_connected", lambda: True)
    for kind in ("Counter", "Gauge", "Histogram"):
        monkeypatch.setattr(rm, kind, fake(kind))
    counter = Counter("incidentfox_test_total", "A test counter.", tag_keys=("status",))
    hist = Histogram("incidentfox_test_seconds", "A test histogram.")
    gauge = Gauge("incidentfox_test_active", "A test gauge.")
    counter.inc(status="ok")
    counter.inc(2, status=200)
    hist.observe(0.3)
    gauge.set(4)
    assert made == [
        ("Counter", "incidentfox_test_total", {"description": "A test counter.", "tag_keys": ("status",)}),
        ("Histogram", "incidentfox_test_seconds", {"description": "A test histogram.",
                                                    "boundaries": list(metrics.LATENCY_BUCKETS_S), "tag_keys": ()}),
        ("Gauge", "incidentfox_test_active", {"description": "A test gauge.", "tag_keys": ()}),
    ]
    assert recorded == [("incidentfox_test_total", 1.0, {"status": "ok"}),
                        ("incidentfox_test_total", 2, {"status": "200"}),
                        ("incidentfox_test_seconds", 0.3, None), ("incidentfox_test_active", 4, None)]
