"""Log signatures: new or surging error templates and slow operations, per entity.

* **Error templates.** Each entity's lines are mined into templates
  (:mod:`actors.ranking.log_templates`: generic masks, then Drain) and judged against the baseline
  before the onset: *new* (absent from the baseline), *surging* (its rate rose at least
  ``SURGE_RATIO``-fold) or *steady*. A line is an error when its level says so (error, fatal,
  critical) or, with no level, when it reads like one (exception, failed, refused, timed out…). The
  entity's best new-or-surging error template (highest rate ratio, then most lines) scores
  ``0.3 + 0.1·log10(1 + count)`` over its incident-window lines (at most ``ERROR_MAX``),
  ``FATAL_BONUS`` more when the lines are fatal/critical (the component reports its own failure).
  With no such template, the most frequent steady error template counts half (it is not new with
  this incident); errors seen only in the baseline are not evidence. A template that stopped
  recurring early in the log (its last line within the first half of the log's time span) is
  transient and counts half. The evidence quotes an example line of each of up to
  ``MAX_QUOTES`` new or surging error templates, with their counts in the details.
* **Slow operation.** A line reporting a duration (``completed in 8.01 seconds``, ``took 750ms``)
  at or above the alert's own threshold (``longer than 3 seconds``, ``> 4s``), else 1 s, grouped by
  template.
* **Known failures.** An error matching a well-known signature (disk full, connection limit, out of
  memory, permission denied, TLS) is named, so the RCA can recommend the matching fix.
* **Dependency.** An error line naming what it could not reach records it for the RCA: a database
  driver's ``tried: /host:port`` (Cassandra/Scylla drivers), libpq's ``connection to server at
  "host", port N``, Go's ``lookup host … no such host``, ``could not connect to X at host:port``,
  ``dial tcp host:port``, ``getaddrinfo ENOTFOUND host``, ``host=host:port``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable

from actors.ranking.log_templates import TemplateChange, is_error, new_or_surging, template_changes
from actors.ranking.model import LOG_SIGNATURE, Finding
from incidentfox.contracts import Evidence
from incidentfox.evidence import Alert, LogLine

ERROR_MAX = 0.6
FATAL_BONUS = 0.1        # the component itself reports a fatal/panic/critical failure
SLOW_SCORE = 0.55
DEFAULT_SLOW_S = 1.0
MAX_QUOTES = 3           # new or surging error templates quoted as evidence
_DURATION = re.compile(
    r"(?i)\b(?:in|took|after|duration[=:]?|elapsed[=:]?|latency[=:]?)\s*(\d+(?:\.\d+)?)\s*"
    r"(ms|milliseconds|msec|s|sec|secs|seconds)\b")
_THRESHOLD = re.compile(
    r"(?i)(?:longer than|more than|greater than|over|exceeds?|above|>)\s*(\d+(?:\.\d+)?)\s*"
    r"(ms|milliseconds|s|sec|secs|seconds)\b")
_HOST_PORT = r"([A-Za-z0-9][\w.-]*:\d{1,5})"
_DEPENDENCY = (
    # Cassandra/Scylla drivers: "All host(s) tried for query failed (tried: /10.0.0.7:9042 (…))"
    re.compile(r"tried:\s*/?" + _HOST_PORT),
    # libpq ≥ 14: 'connection to server at "orders-db" (10.0.0.5), port 5432 failed'
    re.compile(r'(?i)connection to server at "([^"]+)"(?: \([^)]*\))?, port (\d+)'),
    # Go resolver: "dial tcp: lookup orders-db on 10.96.0.10:53: no such host"
    re.compile(r"(?i)\blookup ([\w.-]+)(?: on [\w.:\[\]]+)?: (?:no such host|server misbehaving|i/o timeout)"),
    # "could not connect to Redis at cache-0:6379", "connect to orders-db:5432", "dial tcp 10.0.0.5:5432"
    re.compile(r"(?i)(?:connect(?:ion)? (?:to|refused)|dial tcp|could not connect to|unable to connect to|"
               r"failed to connect to|cannot connect to)\s+(?:\w+ at\s+)?(\w[\w.-]*(?::\d+)?)"),
    re.compile(r"(?i)getaddrinfo \w+\s+([\w.-]+)"),
    re.compile(r"(?i)\bhost[s]?[ =:]+" + _HOST_PORT),
)
# Well-known failure signatures: (pattern, name). The RCA derives an action from the name.
KNOWN_ERRORS = (
    (re.compile(r"(?i)no space left on device|disk ?full|diskfull|out of disk"), "disk_full"),
    (re.compile(r"(?i)too many (?:open )?(?:connections|clients)|pool exhausted|connection is not available|"
                r"remaining connection slots|max_connections"), "connection_limit"),
    (re.compile(r"(?i)out ?of ?memory|heap limit|oomkill|memory limit exceeded|cannot allocate memory"),
     "out_of_memory"),
    (re.compile(r"(?i)permission denied|access denied|unauthori[sz]ed|forbidden"), "permission_denied"),
    (re.compile(r"(?i)x509|certificate (?:has )?expired|tls handshake"), "tls"),
)


def dependency_of(text: str) -> str:
    """The endpoint an error line says it could not reach, if it names one."""
    for pattern in _DEPENDENCY:
        m = pattern.search(text)
        if m:
            return ":".join(g for g in m.groups() if g).rstrip(".:")
    return ""


def _seconds(value: str, unit: str) -> float:
    return float(value) / 1000 if unit.lower().startswith("m") else float(value)


def slow_threshold(alert: Alert) -> float:
    """The duration the alert itself calls too slow, else ``DEFAULT_SLOW_S``."""
    m = _THRESHOLD.search(f"{alert.title} {alert.text}")
    return _seconds(m.group(1), m.group(2)) if m else DEFAULT_SLOW_S


def explaining_line(lines: Iterable[LogLine]) -> LogLine | None:
    """The line that best explains a failure: the last error line, else the last non-empty line."""
    lines = [ln for ln in lines if ln.text.strip()]
    errors = [ln for ln in lines if is_error(ln)]
    return (errors or lines or [None])[-1]


def _transient(lines: list[LogLine], all_lines: list[LogLine]) -> bool:
    times = [ln.at.timestamp() for ln in all_lines if ln.at]
    last = max((ln.at.timestamp() for ln in lines if ln.at), default=None)
    if last is None or len(times) < 2:
        return False
    lo, hi = min(times), max(times)
    return hi - lo > 0 and (last - lo) < 0.5 * (hi - lo)


def log_findings(logs: list[LogLine], alert: Alert) -> list[Finding]:
    """Error-template and slow-operation findings, at most one of each per entity."""
    by_entity: dict[str, list[LogLine]] = defaultdict(list)
    for ln in logs:
        by_entity[ln.entity].append(ln)
    times = [ln.at for ln in logs if ln.at is not None]   # the query's time range, shared by all entities
    start, end = min(times, default=None), max(times, default=None)
    threshold = slow_threshold(alert)
    out: list[Finding] = []
    for entity, lines in by_entity.items():
        changes = template_changes(lines, onset=alert.started_at, start=start, end=end)
        if (f := _error_finding(entity, lines, changes)) is not None:
            out.append(f)
        if (f := _slow_finding(entity, lines, changes, threshold)) is not None:
            out.append(f)
    return out


def _error_finding(entity: str, lines: list[LogLine], changes: list[TemplateChange]) -> Finding | None:
    errors = [c for c in changes if c.stats.error and c.stats.incident_count]
    fresh = new_or_surging(errors)   # best first (rate ratio)
    if not errors:
        return None
    best = fresh[0] if fresh else max(errors, key=lambda c: (c.stats.incident_count, -c.stats.template_id))
    hits = [lines[i] for i in best.stats.lines if is_error(lines[i])]
    count = best.stats.incident_count
    score = min(ERROR_MAX, 0.3 + 0.1 * math.log10(1 + count))
    if best.stats.fatal:
        score = min(ERROR_MAX + FATAL_BONUS, score + FATAL_BONUS)
    transient = _transient(hits, lines)
    if transient:
        score /= 2
    if not fresh:
        score /= 2
    example = best.stats.example
    dep = next((d for text in dict.fromkeys(ln.text for ln in hits) if (d := dependency_of(text))), "")
    known = next((name for pat, name in KNOWN_ERRORS if pat.search(example)), "")
    quoted = fresh[:MAX_QUOTES] or [best]
    since = {"new": f"new, {count}×", "surging": f"surging, {count}× vs {best.stats.baseline_count}× in the baseline",
             }.get(best.status, f"{count}×, also before the incident")
    return Finding(
        entity=entity, signal=LOG_SIGNATURE, kind="error_signature", score=round(score, 4),
        summary=f"{entity} logs a recurring error ({since}{', early only' if transient else ''}): "
                f"{example[:160]}",
        evidence=[Evidence(kind="log", source=LOG_SIGNATURE, quote=c.stats.example[:400], at=c.stats.example_at)
                  for c in quoted],
        details={"count": count, "signature": best.stats.template, "dependency": dep, "transient": transient,
                 "signatures": len(errors), "known": known, "new": bool(fresh), "status": best.status,
                 "baseline_count": best.stats.baseline_count, "ratio": best.ratio,
                 "templates": [_template_detail(c) for c in quoted]},
    )


def _template_detail(c: TemplateChange) -> dict:
    return {"template_id": c.stats.template_id, "template": c.stats.template, "status": c.status,
            "baseline_count": c.stats.baseline_count, "incident_count": c.stats.incident_count,
            "ratio": c.ratio, "first_seen": c.stats.first_seen.isoformat() if c.stats.first_seen else None,
            "example": c.stats.example[:400]}


def _slow_finding(entity: str, lines: list[LogLine], changes: list[TemplateChange],
                  threshold: float) -> Finding | None:
    slow: list[tuple[str, list[tuple[float, LogLine]]]] = []
    durations: dict[str, float | None] = {}   # per distinct text: a log repeats its lines

    def duration(text: str) -> float | None:
        if text not in durations:
            m = _DURATION.search(text)
            durations[text] = _seconds(m.group(1), m.group(2)) if m else None
        return durations[text]

    for c in sorted(changes, key=lambda c: c.stats.template_id):
        hits = [(secs, lines[i]) for i in c.stats.lines
                if (secs := duration(lines[i].text)) is not None and secs >= threshold]
        if hits:
            slow.append((c.stats.template, hits))
    if not slow:
        return None
    _, hits = max(slow, key=lambda kv: (len(kv[1]), _names_dependency(kv[0])))
    secs, worst = max(hits, key=lambda h: h[0])
    return Finding(
        entity=entity, signal=LOG_SIGNATURE, kind="slow_operation",
        score=SLOW_SCORE if len(hits) > 1 else SLOW_SCORE * 0.75,
        summary=f"{entity} logs slow operations ({len(hits)}×, up to {secs:g} s, threshold {threshold:g} s): "
                f"{worst.text.strip()[:160]}",
        evidence=[Evidence(kind="log", source=LOG_SIGNATURE, quote=worst.text.strip()[:400], at=worst.at)],
        details={"count": len(hits), "max_seconds": secs, "threshold_seconds": threshold,
                 "operation": worst.text.strip()[:200]},
    )


def _names_dependency(template: str) -> bool:
    return bool(re.search(r"(?i)database|\bdb\b|query|sql|call|request|redis|cache|upstream|http", template))
