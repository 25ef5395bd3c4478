"""Health report and digest content computed from seeded runs; Block Kit and chart rendering."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest

from actors.scheduler import reports
from actors.scheduler.render import digest_blocks, health_blocks, health_chart_png
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs.models import Run, RunFeedback, ToolCall

T0 = datetime(2026, 5, 4, tzinfo=UTC)   # a Monday


def _run(i: int, *, source: str, status: str, ack: float | None = None, resolve: float | None = None,
         title: str = "", services=(), absorbed=(), team: str = "payments", result=None) -> Run:
    created = T0 + timedelta(hours=i)
    return Run(id=f"run_{i:03d}", org_id="acme", team_id=team, status=status, source=source,
               trigger={"title": title, "services": list(services), "is_alert": source != "slack"},
               created_at=created, absorbed=list(absorbed), result=result,
               acknowledged_at=created + timedelta(seconds=ack) if ack is not None else None,
               resolved_at=created + timedelta(seconds=resolve) if resolve is not None else None,
               first_message_at=created + timedelta(seconds=2))


@pytest.fixture
async def seeded(db_url):
    engine = make_async_engine(db_url)
    sessions = session_factory(engine)
    async with sessions() as s:
        s.add_all([
            _run(1, source="pagerduty", status="succeeded", ack=60, resolve=600, title="High latency",
                 services=["checkout"],
                 absorbed=[{"title": "High latency", "services": ["checkout"]},
                           {"title": "5xx rate", "services": ["checkout"]}],
                 result={"summary": "bad deploy", "root_causes": [{"entity": "deployment/checkout"}]}),
            _run(2, source="pagerduty", status="failed", ack=120, resolve=1200, title="High latency",
                 services=["checkout"]),
            _run(3, source="alertmanager", status="succeeded", resolve=300, title="PodCrashLooping",
                 services=["cart"]),
            _run(30, source="slack", status="cancelled"),
            _run(4, source="slack", status="succeeded", team="other-team"),          # another team
            _run(200, source="pagerduty", status="succeeded", title="Out of period"),  # next week
        ])
        await s.flush()
        s.add_all([ToolCall(run_id="run_001", agent="metrics", tool="prometheus_query_range", status="error"),
                   ToolCall(run_id="run_002", agent="metrics", tool="prometheus_query_range", status="timeout"),
                   ToolCall(run_id="run_002", agent="logs", tool="loki_query", status="ok"),
                   RunFeedback(run_id="run_001", user="U1", value=1),
                   RunFeedback(run_id="run_001", user="U2", value=1),
                   RunFeedback(run_id="run_002", user="U1", value=-1)])
        await s.commit()
    yield sessions
    await engine.dispose()


async def test_health_report_aggregates_the_teams_period(seeded):
    async with seeded() as s:
        c = await reports.health_report(s, org_id="acme", team_id="payments", start=T0,
                                        end=T0 + timedelta(days=7))
    assert c["runs"] == {"total": 4, "outcomes": {"cancelled": 1, "failed": 1, "succeeded": 2}}
    pd = c["by_source"]["pagerduty"]
    assert pd == {"runs": 2, "mtta_s": 90.0, "mttr_s": 900.0, "time_to_first_message_s": 2.0}
    assert c["by_source"]["alertmanager"]["mtta_s"] is None and c["by_source"]["alertmanager"]["mttr_s"] == 300.0
    # run 1 and the two alerts it absorbed, plus run 2: "High latency" fired 3 times.
    assert c["noisiest_alerts"][0] == {"title": "High latency", "count": 3}
    assert c["noisiest_services"][0] == {"service": "checkout", "count": 4}
    assert c["failed_integrations"] == [{"tool": "prometheus_query_range", "failures": 2}]
    assert c["feedback"] == {"up": 2, "down": 1}
    assert len(c["daily"]) == 7 and c["daily"][0] == {"day": "2026-05-04", "succeeded": 2, "failed": 1}
    assert c["daily"][1] == {"day": "2026-05-05", "cancelled": 1}


async def test_digest_lists_incidents_with_root_cause(seeded):
    async with seeded() as s:
        d = await reports.digest(s, org_id="acme", team_id="payments", start=T0, end=T0 + timedelta(days=7))
    assert [i["run_id"] for i in d["incidents"]] == ["run_001", "run_002", "run_003", "run_030"]
    assert d["incidents"][0]["root_cause"] == "deployment/checkout"
    text = str(digest_blocks(d))
    assert "deployment/checkout" in text and "High latency" in text


async def test_rendering_block_kit_and_chart(seeded):
    async with seeded() as s:
        c = await reports.health_report(s, org_id="acme", team_id="payments", start=T0,
                                        end=T0 + timedelta(days=7))
    blocks = health_blocks(c, report_url="http://x/api/v1/reports/rep_1")
    assert blocks[0]["type"] == "header"
    text = str(blocks)
    assert "MTTA 90 s" in text and "MTTR 15.0 min" in text and "👍 2" in text
    png = health_chart_png(c)
    assert png is not None and png.startswith(b"\x89PNG")
    empty = {**c, "daily": [{"day": "2026-05-04"}]}
    assert health_chart_png(empty) is None


def _content(start: datetime, end: datetime, kind: str = "health_report") -> dict:
    base = {"kind": kind, "team_id": "payments", "period": {"start": start.isoformat(), "end": end.isoformat()}}
    if kind == "digest":
        return {**base, "incidents": []}
    return {**base, "runs": {"total": 0, "outcomes": {}}, "by_source": {}, "noisiest_alerts": [],
            "noisiest_services": [], "failed_integrations": [], "feedback": {"up": 0, "down": 0}, "daily": []}


@pytest.mark.parametrize(("start", "end", "title"), [
    (T0, T0 + timedelta(days=7), "Weekly health report · payments · 2026-05-04 → 2026-05-10"),
    (T0 + timedelta(hours=9), T0 + timedelta(days=7, hours=9),
     "Weekly health report · payments · 2026-05-04 → 2026-05-11"),
    (T0, T0 + timedelta(days=1), "Daily health report · payments · 2026-05-04"),
    (T0, T0 + timedelta(days=30), "Monthly health report · payments · 2026-05-04 → 2026-06-02"),
    (T0, T0 + timedelta(days=3), "3-day health report · payments · 2026-05-04 → 2026-05-06"),
])
def test_the_health_reports_title_matches_its_period(start, end, title):
    blocks = health_blocks(_content(start, end))
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": title}}
    # The body gives the exact period as date tokens, each reader's zone, with a UTC fallback.
    body = blocks[1]["text"]["text"]
    assert (f"Period <!date^{int(start.timestamp())}^{{date_short_pretty}} {{time}}|"
            f"{start:%Y-%m-%d %H:%M} UTC> → <!date^{int(end.timestamp())}^") in body


def test_the_digests_title_matches_its_period_and_it_links_the_full_report():
    blocks = digest_blocks(_content(T0, T0 + timedelta(days=1), kind="digest"),
                           report_url="https://fox.example.com/api/v1/reports/rep_9")
    assert blocks[0]["text"]["text"] == "Daily incident digest · payments · 2026-05-04"
    assert "<https://fox.example.com/api/v1/reports/rep_9|full report>" in blocks[-1]["elements"][0]["text"]


def test_no_full_report_link_without_a_url():
    text = str(health_blocks(_content(T0, T0 + timedelta(days=7)), report_url=None))
    assert "full report" not in text and "<http" not in text


async def test_without_matplotlib_the_report_has_no_chart(seeded, monkeypatch, caplog):
    async with seeded() as s:
        c = await reports.health_report(s, org_id="acme", team_id="payments", start=T0,
                                        end=T0 + timedelta(days=7))
    for name in ("matplotlib", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)   # `import matplotlib` now raises ImportError
    with caplog.at_level("WARNING", logger="actors.scheduler.render"):
        assert health_chart_png(c) is None
    assert "incidentfox[charts]" in caplog.text
    assert health_blocks(c)[0]["type"] == "header"   # the report itself is unaffected
