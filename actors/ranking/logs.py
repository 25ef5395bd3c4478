"""Log signatures: recurring error lines and slow operations, per entity.

* **Error signature.** A line is an error when its level says so (error, fatal, critical) or, with
  no level, when it reads like one (exception, failed, refused, timed out…). Lines group by
  signature: the text with numbers, ids, hex and quoted values masked. The entity's most frequent
  signature scores ``0.3 + 0.1·log10(1 + count)`` (at most ``ERROR_MAX``), ``FATAL_BONUS`` more when
  the lines are fatal/critical (the component reports its own failure). A signature that already
  occurred ``OLD_BEFORE`` (15 min) before the onset is not new with this incident and counts half;
  so does one that stopped
  recurring early in the log (its last line within the first half of the log's time span) is
  transient and counts half.
* **Slow operation.** A line reporting a duration (``completed in 8.01 seconds``, ``took 750ms``)
  at or above the alert's own threshold (``longer than 3 seconds``, ``> 4s``), else 1 s.
* **Known failures.** An error matching a well-known signature (disk full, connection limit, out of
  memory, permission denied, TLS) is named, so the RCA can recommend the matching fix.
* **Dependency.** An error line naming what it could not reach (``tried: prod-db:3333``,
  ``connection refused … host:port``, ``getaddrinfo … name``) records it for the RCA.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache

from actors.ranking.model import LOG_SIGNATURE, Finding
from incidentfox.contracts import Evidence
from incidentfox.evidence import Alert, LogLine

ERROR_MAX = 0.6
OLD_BEFORE = timedelta(minutes=15)   # a signature seen this long before the onset is not new
FATAL_BONUS = 0.1        # the component itself reports a fatal/panic/critical failure
SLOW_SCORE = 0.55
DEFAULT_SLOW_S = 1.0
_ERROR_LEVELS = {"error", "err", "fatal", "critical", "crit", "emerg", "alert", "panic"}
_FATAL_LEVELS = {"fatal", "critical", "crit", "emerg", "panic"}
_QUIET_LEVELS = {"info", "debug", "trace", "notice"}
_ERROR_WORDS = re.compile(
    r"(?i)\b(error|exception|traceback|fatal|panic|failed|failure|refused|timed? ?out|unreachable|denied|"
    r"no such|not found|cannot|could not|unable to|no available connection)\b")
_DURATION = re.compile(
    r"(?i)\b(?:in|took|after|duration[=:]?|elapsed[=:]?|latency[=:]?)\s*(\d+(?:\.\d+)?)\s*"
    r"(ms|milliseconds|msec|s|sec|secs|seconds)\b")
_THRESHOLD = re.compile(
    r"(?i)(?:longer than|more than|greater than|over|exceeds?|above|>)\s*(\d+(?:\.\d+)?)\s*"
    r"(ms|milliseconds|s|sec|secs|seconds)\b")
_DEPENDENCY = (
    re.compile(r"tried:\s*([\w.-]+:\d+)"),
    re.compile(r"(?i)(?:connect(?:ion)? (?:to|refused)|dial tcp|could not connect to|unable to connect to)\s+"
               r"(\w[\w.-]*(?::\d+)?)"),
    re.compile(r"(?i)getaddrinfo \w+\s+([\w.-]+)"),
    re.compile(r"(?i)\bhost[s]?[ =:]+([\w.-]+:\d+)"),
)
# Well-known failure signatures: (pattern, name). The RCA derives an action from the name.
KNOWN_ERRORS = (
    (re.compile(r"(?i)no space left on device|disk ?full|diskfull|out of disk"), "disk_full"),
    (re.compile(r"(?i)too many (?:open )?connections|pool exhausted|connection is not available|"
                r"remaining connection slots"), "connection_limit"),
    (re.compile(r"(?i)out of memory|heap limit|oomkill|memory limit exceeded"), "out_of_memory"),
    (re.compile(r"(?i)permission denied|access denied|unauthori[sz]ed|forbidden"), "permission_denied"),
    (re.compile(r"(?i)x509|certificate (?:has )?expired|tls handshake"), "tls"),
)
_MASKS = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE), "<id>"),
    (re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]{12,}\b", re.IGNORECASE), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<q>"),
)


@lru_cache(maxsize=8192)   # pure; log lines repeat within a run and across runs of one world
def signature(text: str) -> str:
    """The line with ids, hex, numbers and quoted values masked: lines that differ only there share it."""
    s = text.strip().lower()
    for pattern, repl in _MASKS:
        s = pattern.sub(repl, s)
    return " ".join(s.split())[:200]


def is_error(line: LogLine) -> bool:
    level = line.level.lower()
    if level in _ERROR_LEVELS:
        return True
    if level in _QUIET_LEVELS or level.startswith("warn"):
        return False
    return bool(_ERROR_WORDS.search(line.text))


def dependency_of(text: str) -> str:
    """The endpoint an error line says it could not reach, if it names one."""
    for pattern in _DEPENDENCY:
        m = pattern.search(text)
        if m:
            return m.group(1).rstrip(".:")
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


def _before_onset(lines: list[LogLine], alert: Alert) -> bool:
    """The signature already occurred well before the onset: it is not new with this incident."""
    if alert.started_at is None:
        return False
    cutoff = alert.started_at - OLD_BEFORE
    return any(ln.at is not None and ln.at < cutoff for ln in lines)


def log_findings(logs: list[LogLine], alert: Alert) -> list[Finding]:
    """Error-signature and slow-operation findings, at most one of each per entity."""
    by_entity: dict[str, list[LogLine]] = defaultdict(list)
    for ln in logs:
        by_entity[ln.entity].append(ln)
    threshold = slow_threshold(alert)
    out: list[Finding] = []
    for entity, lines in by_entity.items():
        errors: dict[str, list[LogLine]] = defaultdict(list)
        slow: dict[str, list[tuple[float, LogLine]]] = defaultdict(list)
        for ln in lines:
            if is_error(ln):
                errors[signature(ln.text)].append(ln)
            m = _DURATION.search(ln.text)
            if m and (secs := _seconds(m.group(1), m.group(2))) >= threshold:
                slow[signature(ln.text)].append((secs, ln))
        if errors:
            sig, hits = max(errors.items(), key=lambda kv: len(kv[1]))
            score = min(ERROR_MAX, 0.3 + 0.1 * math.log10(1 + len(hits)))
            if any(ln.level.lower() in _FATAL_LEVELS for ln in hits):
                score = min(ERROR_MAX + FATAL_BONUS, score + FATAL_BONUS)
            transient = _transient(hits, lines)
            if transient:
                score /= 2
            old = _before_onset(hits, alert)
            if old:
                score /= 2
            dep = next((d for ln in hits if (d := dependency_of(ln.text))), "")
            known = next((name for pat, name in KNOWN_ERRORS if pat.search(hits[-1].text)), "")
            out.append(Finding(
                entity=entity, signal=LOG_SIGNATURE, kind="error_signature", score=round(score, 4),
                summary=f"{entity} logs a recurring error ({len(hits)}×{', early only' if transient else ''}): "
                        f"{hits[-1].text.strip()[:160]}",
                evidence=[Evidence(kind="log", source=LOG_SIGNATURE, quote=hits[-1].text.strip()[:400],
                                   at=hits[-1].at)],
                details={"count": len(hits), "signature": sig, "dependency": dep, "transient": transient,
                         "signatures": len(errors), "known": known, "new": not old},
            ))
        if slow:
            sig, hits = max(slow.items(), key=lambda kv: (len(kv[1]), _names_dependency(kv[0])))
            secs, worst = max(hits, key=lambda h: h[0])
            out.append(Finding(
                entity=entity, signal=LOG_SIGNATURE, kind="slow_operation",
                score=SLOW_SCORE if len(hits) > 1 else SLOW_SCORE * 0.75,
                summary=f"{entity} logs slow operations ({len(hits)}×, up to {secs:g} s, threshold {threshold:g} s): "
                        f"{worst.text.strip()[:160]}",
                evidence=[Evidence(kind="log", source=LOG_SIGNATURE, quote=worst.text.strip()[:400], at=worst.at)],
                details={"count": len(hits), "max_seconds": secs, "threshold_seconds": threshold,
                         "operation": worst.text.strip()[:200]},
            ))
    return out


def _names_dependency(sig: str) -> bool:
    return bool(re.search(r"database|\bdb\b|query|sql|call|request|redis|cache|upstream|http", sig))
