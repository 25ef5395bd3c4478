"""Slack text formatting shared by every message IncidentFox posts: escaping untrusted text, header
titles, dates each reader sees in their own zone, and links.

Pure functions, no client. Limits are Slack's: a ``header`` block's plain text is at most 150
characters, a ``section``'s text 3,000.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

HEADER_MAX = 150
SECTION_MAX = 2900    # Slack caps a section's text at 3,000 characters; room for a suffix

# Slack's own markup in text it sends us: <@U123>, <#C123|name>, <!here>, <https://x|label>, <https://x>.
_MARKUP_RE = re.compile(r"<([@#!]?)([^<>|]*)(?:\|([^<>]*))?>")


def clip(text: str, limit: int = SECTION_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Untrusted text shown in mrkdwn: neutralise mentions/links and code fences."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("```", "'''")


def plain(text: str) -> str:
    """Slack-formatted text (a mention's first line) as readable plain text: ``<@U1>`` → ``@U1``,
    ``<#C1|ops>`` → ``#ops``, ``<url|label>`` → ``label``, entities decoded, whitespace collapsed."""
    def one(m: re.Match[str]) -> str:
        sigil, target, label = m.group(1), m.group(2), m.group(3)
        if sigil in ("@", "#"):
            return sigil + (label or target)
        if sigil == "!":
            return "@" + (label or target.split("^")[0])
        return label or target
    text = _MARKUP_RE.sub(one, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


def header_block(icon: str, title: str, *, fallback: str) -> dict[str, Any]:
    """A ``header`` block reading ``<icon> <title>`` (``fallback`` when there is no title), cut to
    Slack's 150 characters."""
    text = f"{icon} {plain(title) or fallback}".strip()
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, HEADER_MAX), "emoji": True}}


def as_utc(at: datetime) -> datetime:
    """``at`` in UTC; a naive datetime is taken to be UTC already (the database stores UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def slack_date(at: datetime, *, seconds: bool = False) -> str:
    """``at`` as Slack's date token: each reader sees it in their own time zone, with its date
    (``{date_short_pretty}``: "Today", "Yesterday" or e.g. "May 4"). Clients that cannot render
    the token show the fallback: the ISO date and time in UTC."""
    utc = as_utc(at)
    fmt = "{date_short_pretty} {time_secs}" if seconds else "{date_short_pretty} {time}"
    fallback = utc.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(utc.timestamp())}^{fmt}|{fallback}>"


def link(url: str | None, label: str) -> str:
    """``<url|label>`` in mrkdwn, or ``""`` when there is no URL (never a link that cannot resolve)."""
    if not url:
        return ""
    return f"<{url}|{escape(label).replace('|', '/')}>"
