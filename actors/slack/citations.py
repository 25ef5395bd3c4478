"""What the knowledge base gave an RCA, in Slack: "seen before" and the cited sources.

* :func:`seen_before_text`: ``🔁 Seen before: <title> (<when>), fixed by <action>`` for the similar
  past incident the run found (:mod:`actors.engine.knowledge_use`), linked to that run;
* :func:`sources_text`: the runbook sections and postmortems the analysis cited, each linked.

Titles, sections and fixes are tenant text: escaped, clipped, and linked only through an ``http(s)``
URL with no Slack markup in it.
"""

from __future__ import annotations

import re

from actors.slack.mrkdwn import clip, escape, link, slack_date
from incidentfox.contracts import RCA, Citation

MAX_SOURCES = 4
_SAFE_URL = re.compile(r"^https?://[^\s<>|]{1,2000}$")


def _label(c: Citation) -> str:
    title = clip(c.title, 120)
    return f"{title} › {clip(c.section, 80)}" if c.section else title


def _linked(c: Citation, label: str) -> str:
    if c.url and _SAFE_URL.match(c.url):
        return link(c.url, label)
    return escape(label)


def seen_before(rca: RCA) -> Citation | None:
    return next((c for c in rca.citations if c.used_for == "seen_before"), None)


def seen_before_text(rca: RCA) -> str:
    """The "seen before" line, or "" when the run found no similar past incident."""
    c = seen_before(rca)
    if c is None:
        return ""
    when = f" ({slack_date(c.when)})" if c.when else ""
    fixed = f", fixed by {escape(clip(c.fixed_by, 200))}" if c.fixed_by else ""
    return clip(f"🔁 *Seen before:* {_linked(c, clip(c.title, 120))}{when}{fixed}")


def sources_text(rca: RCA) -> str:
    """The cited runbook sections and postmortems (``*Sources*`` and one line each), or ""."""
    docs = [c for c in rca.citations if c.used_for != "seen_before"][:MAX_SOURCES]
    if not docs:
        return ""
    icon = {"runbook": "📘", "postmortem": "📝", "incident": "🔁"}
    rows = [f"{icon.get(c.kind, '•')} {_linked(c, _label(c))}" + (" (recommended actions)" if c.used_for == "action" else "")
            for c in docs]
    return clip("*Sources*\n" + "\n".join(rows))
