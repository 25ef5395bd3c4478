"""The Grafana dashboard is valid JSON, generated from one place, and queries only real metric names."""

from __future__ import annotations

import json
import re
from pathlib import Path

from incidentfox.metrics import METRICS, exported_names

ROOT = Path(__file__).resolve().parents[2]
DASH = ROOT / "cluster" / "grafana" / "incidentfox.json"
PROMQL_FUNCS = {"sum", "rate", "histogram_quantile", "by", "le", "avg", "max", "min", "increase", "irate"}


def _load_builder():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_dashboard", DASH.with_name("build_dashboard.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _metric_names(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}", "", expr)           # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)          # range selectors
    expr = re.sub(r"by \([^)]*\)", "", expr)        # grouping labels
    return {t for t in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr) if t not in PROMQL_FUNCS}


def test_committed_json_is_the_generated_one():
    assert json.loads(DASH.read_text()) == _load_builder().build()


def test_every_query_references_an_exported_name():
    builder = _load_builder()
    ours = {n for names in exported_names().values() for n in names}
    known = ours | set(builder.RAY_BUILTIN_METRICS)
    dash = json.loads(DASH.read_text())
    used: set[str] = set()
    for panel in dash["panels"]:
        for target in panel["targets"]:
            names = _metric_names(target["expr"])
            assert names, panel["title"]
            unknown = names - known
            assert not unknown, f"{panel['title']}: {unknown}"
            used |= names
    # Every declared IncidentFox metric is on the dashboard.
    for declared in METRICS:
        assert any(n.startswith("ray_" + declared) for n in used), declared
