"""Turning report content into what Slack shows: Block Kit and a matplotlib chart PNG.

A report's header says what period it covers, from the period itself (:func:`period_title`): a
one-day report is "Daily … · 2026-05-04", a seven-day one "Weekly … · 2026-05-04 → 2026-05-11"
(the dates it covers, UTC). Its body gives the exact period as Slack date tokens (each reader's
own zone, a UTC fallback), and the "full report" link is :func:`incidentfox.links.report_url`.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta
from typing import Any

from actors.slack.mrkdwn import HEADER_MAX, as_utc, clip, escape, link, slack_date

log = logging.getLogger(__name__)

STATUS_COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828", "cancelled": "#9e9e9e",
                  "running": "#1565c0", "queued": "#f9a825"}


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v / 60:.1f} min" if v >= 120 else f"{v:.0f} s"


def health_chart_png(content: dict[str, Any]) -> bytes | None:
    """Runs per day by outcome, as a stacked bar chart. None when there is nothing to plot, or when
    matplotlib (the optional ``charts`` extra) is not installed: the report then goes without it."""
    daily = content.get("daily") or []
    if not any(sum(v for k, v in d.items() if k != "day") for d in daily):
        return None
    try:
        import matplotlib
    except ImportError:
        log.warning("no chart in the health report: matplotlib is not installed "
                    "(pip install 'incidentfox[charts]')")
        return None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = [d["day"][5:] for d in daily]
    fig, ax = plt.subplots(figsize=(7, 3), dpi=100)
    bottom = [0] * len(daily)
    for status, colour in STATUS_COLOURS.items():
        values = [d.get(status, 0) for d in daily]
        if any(values):
            ax.bar(days, values, bottom=bottom, color=colour, label=status)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_title("Investigations per day")
    ax.set_ylabel("runs")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


_CADENCE = {1: "Daily", 7: "Weekly", 14: "Fortnightly"}


def _period(content: dict[str, Any]) -> tuple[datetime, datetime]:
    p = content["period"]
    return as_utc(datetime.fromisoformat(p["start"])), as_utc(datetime.fromisoformat(p["end"]))


def period_title(noun: str, content: dict[str, Any]) -> str:
    """``Weekly health report · sre · 2026-05-04 → 2026-05-11``: the cadence named by the period's
    length (``N-day`` when it has no name) and the UTC dates the period covers (one date when it
    fits in one day), cut to Slack's header limit."""
    start, end = _period(content)
    days = round((end - start) / timedelta(days=1))
    cadence = _CADENCE.get(days) or ("Monthly" if 28 <= days <= 31 else f"{max(days, 1)}-day")
    last = (end - timedelta(microseconds=1)).date() if end > start else start.date()
    dates = start.date().isoformat() + ("" if last == start.date() else f" → {last.isoformat()}")
    return clip(f"{cadence} {noun} · {content['team_id']} · {dates}", HEADER_MAX)


def period_text(content: dict[str, Any]) -> str:
    start, end = _period(content)
    return f"Period {slack_date(start)} → {slack_date(end)}"


def health_blocks(content: dict[str, Any], *, report_url: str | None = None) -> list[dict[str, Any]]:
    runs = content["runs"]
    outcomes = ", ".join(f"{k}: {v}" for k, v in runs["outcomes"].items()) or "none"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": period_title("health report", content)}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"*{runs['total']} investigations* ({outcomes})\n{period_text(content)}"}},
    ]
    if content["by_source"]:
        lines = [f"• *{src}*: {v['runs']} runs, MTTA {_fmt_s(v['mtta_s'])}, MTTR {_fmt_s(v['mttr_s'])}"
                 for src, v in content["by_source"].items()]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*By source*\n" + "\n".join(lines)}})
    if content["noisiest_alerts"]:
        lines = [f"• {escape(a['title'])} ({a['count']})" for a in content["noisiest_alerts"]]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Noisiest alerts*\n" + "\n".join(lines)}})
    if content["noisiest_services"]:
        lines = [f"• {escape(s['service'])} ({s['count']})" for s in content["noisiest_services"]]
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": "*Noisiest services*\n" + "\n".join(lines)}})
    if content["failed_integrations"]:
        lines = [f"• {f['tool']}: {f['failures']} failures" for f in content["failed_integrations"]]
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": "*Failing integrations*\n" + "\n".join(lines)}})
    fb = content["feedback"]
    full = link(report_url, "full report")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn",
                                                     "text": f"Feedback: 👍 {fb['up']}  👎 {fb['down']}"
                                                             + (f"  ·  {full}" if full else "")}]})
    return blocks


def digest_blocks(content: dict[str, Any], *, report_url: str | None = None) -> list[dict[str, Any]]:
    items = content["incidents"]
    lines = [f"• {slack_date(datetime.fromisoformat(i['created_at']))} {escape(i['title'] or i['run_id'])}: "
             f"{i['status']}" + (f" (root cause: {escape(i['root_cause'])})" if i["root_cause"] else "")
             for i in items[:20]]
    full = link(report_url, "full report")
    return [{"type": "header", "text": {"type": "plain_text", "text": period_title("incident digest", content)}},
            {"type": "section", "text": {"type": "mrkdwn",
                                         "text": clip("\n".join(lines) if lines else "No incidents this period.")}},
            {"type": "context", "elements": [{"type": "mrkdwn",
                                              "text": period_text(content) + (f"  ·  {full}" if full else "")}]}]
