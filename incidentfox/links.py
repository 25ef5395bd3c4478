"""The links IncidentFox puts into messages, each built by one function.

A link is the install's public base URL (setting ``public_url``) plus the path of the page that
shows the thing. Every message that links a run or a report calls :func:`run_url` or
:func:`report_url`, so when the web console arrives its pages replace these paths here, once.

Today a run links to its resource in the agent API (``GET /api/v1/agent/runs/{id}``) and a report
to the reports API (``GET /api/v1/reports/{id}``); both answer JSON to a bearer token of the run's
team. With no public URL configured there is no link (``None``): a message never carries a link
that cannot resolve.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

RUN_PATH = "/api/v1/agent/runs/{id}"
REPORT_PATH = "/api/v1/reports/{id}"


def check_public_url(value: str) -> str:
    """The base URL without its trailing slash; ``""`` stays ``""`` (no links). Raises ``ValueError``
    for anything that would make a broken link: not http(s), no host, a query or fragment, or a
    character Slack's ``<url|text>`` markup reserves."""
    value = (value or "").strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"public_url must be an http(s) URL with a host, not {value!r}")
    if parts.query or parts.fragment or any(c in value for c in "<>| "):
        raise ValueError(f"public_url must be a plain base URL (no query, fragment, spaces or <>|): {value!r}")
    return value


def _link(public_url: str, path: str, ident: str) -> str | None:
    base = check_public_url(public_url)
    return f"{base}{path.format(id=quote(ident, safe=''))}" if base and ident else None


def run_url(public_url: str, run_id: str) -> str | None:
    """Where a person opens ``run_id``; ``None`` when no public URL is configured."""
    return _link(public_url, RUN_PATH, run_id)


def report_url(public_url: str, report_id: str) -> str | None:
    """Where a person opens stored report ``report_id``; ``None`` when no public URL is configured."""
    return _link(public_url, REPORT_PATH, report_id)
