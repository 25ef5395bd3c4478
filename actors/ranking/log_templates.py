"""Log templates: lines mined into templates with Drain, and which templates are new or surging.

* **Masking.** Before mining, the parts of a line that vary between occurrences of one message are
  masked with generic patterns (:data:`MASKS`): UUIDs, Kubernetes pod-name suffixes (the
  ReplicaSet hash and pod id, drawn from Kubernetes' vowel-free alphabet), IPv4 addresses with an
  optional port, hex ids, durations (``250ms``, ``8.01 seconds``, ``1m30s``), quoted values and
  numbers. No mask names a service, a namespace or a dataset.
* **Mining.** `drain3 <https://github.com/logpai/Drain3>`_ (Drain, He et al., ICWS 2017) groups the
  masked lines into templates; tokens that still vary within a template become ``<*>``. Its
  configuration is built here (no ini file, no persistence): similarity ``SIM_TH``, tree depth
  ``DEPTH``. Drain is order dependent but deterministic: the same lines in the same order give the
  same templates and ids.
* **Windows.** With an onset (the alert's or the anomaly's start), a line before
  ``onset − LEAD`` is in the *baseline* window, any other line (or an untimed one) in the
  *incident* window. ``LEAD`` (15 min) allows for the fault preceding the page. The baseline window
  runs from the earliest timed line to ``onset − LEAD``, the incident window from there to the
  latest timed line (each at least one minute).
* **New or surging.** Rates are lines per minute in each window;
  ``ratio = (incident_rate + SMOOTH) / (baseline_rate + SMOOTH)``, ``SMOOTH = 0.1`` (one line per ten
  minutes: rare lines do not look like surges, yet a quiet error going from one line in ten minutes
  to one a minute does; ``+1`` per minute would hide every spike slower than a line a minute). A
  template is *new* when it occurs in the incident window and never in the baseline, *surging* when
  ``ratio ≥ SURGE_RATIO`` with at least ``MIN_SURGE`` incident lines, *steady* when it occurs in both
  otherwise, *gone* when only in the baseline. Its ``score`` is ``log2(ratio)``, halved for templates without an error line (by level,
  or by wording when the line has no level): errors first, then the sharpest rise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from drain3.drain import Drain, LogCluster
from pydantic import BaseModel

from incidentfox.evidence import LogLine

SIM_TH = 0.7            # Drain's similarity threshold (drain3's default 0.4 merges messages that share only
                        # a boilerplate prefix such as `TraceID: <HEX> SpanID: <HEX>`)
DEPTH = 5               # Drain's prefix-tree depth (3 leading tokens route a line)
LEAD = timedelta(minutes=15)
SMOOTH = 0.1            # lines per minute added to both rates
SURGE_RATIO = 2.0
MIN_SURGE = 3
QUIET_WEIGHT = 0.5      # templates with no error line count half in `score`
Status = Literal["new", "surging", "steady", "gone"]

_SAFE = "bcdfghjklmnpqrstvwxz2456789"   # Kubernetes' generated-name alphabet (no vowels, no 0/1/3)
_UNITS = r"(?:ns|us|µs|ms|s|m|h)"
# (pattern, mask name), applied in order: the specific shapes before the bare numbers inside them.
MASKS: tuple[tuple[str, str], ...] = (
    (r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "UUID"),
    (rf"(?<=[a-z0-9]-)(?:[{_SAFE}]{{6,10}}-[{_SAFE}]{{5}}|(?=[{_SAFE}]*\d)[{_SAFE}]{{5}})\b", "POD"),
    (r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b", "IP"),
    (r"(?i)\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", "HEX"),
    ((rf"(?i)\b(?:\d+(?:\.\d+)?{_UNITS}){{2,}}\b|\b\d+(?:\.\d+)?{_UNITS}\b|"
      r"\b\d+(?:\.\d+)?\s?(?:millis(?:econds?)?|msecs?|secs?|seconds?|mins?|minutes?|hours?)\b"), "DURATION"),
    (r"\"[^\"]*\"|(?<!\w)'[^']*'", "STR"),
    (r"\d+(?:\.\d+)?", "NUM"),
)
_ERROR_LEVELS = {"error", "err", "fatal", "critical", "crit", "emerg", "alert", "panic"}
_FATAL_LEVELS = {"fatal", "critical", "crit", "emerg", "panic"}
_QUIET_LEVELS = {"info", "debug", "trace", "notice"}
_ERROR_WORDS = re.compile(
    r"(?i)\b(error|exception|traceback|fatal|panic|failed|failure|refused|timed? ?out|unreachable|denied|"
    r"no such|not found|cannot|could not|unable to|no available connection)\b")
_COMPILED = tuple((re.compile(p), f"<{name}>") for p, name in MASKS)


class TemplateStats(BaseModel):
    """One mined template and how often it occurred in each window."""

    template_id: int                 # Drain's cluster id: 1, 2, … in order of first occurrence
    template: str                    # masked text, varying tokens as <*>
    baseline_count: int
    incident_count: int
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    example: str                     # the latest incident-window line (else the latest line), verbatim
    example_at: datetime | None = None
    error: bool = False              # at least one of its lines is an error
    fatal: bool = False              # at least one of its lines is fatal/critical by level
    lines: list[int]                 # indices of its lines in the input, in input order


class TemplateChange(BaseModel):
    """A template judged against the baseline (module docstring: the formula)."""

    stats: TemplateStats
    status: Status
    baseline_rate: float             # lines per minute
    incident_rate: float
    ratio: float
    score: float


def is_error(line: LogLine) -> bool:
    """An error by its level (error, fatal, critical…), or, with no level, by its wording."""
    level = line.level.lower()
    if level in _ERROR_LEVELS:
        return True
    if level in _QUIET_LEVELS or level.startswith("warn"):
        return False
    return bool(_ERROR_WORDS.search(line.text))


def is_fatal(line: LogLine) -> bool:
    return line.level.lower() in _FATAL_LEVELS


def mask(text: str) -> str:
    """The line with :data:`MASKS` applied, as Drain sees it."""
    for pattern, repl in _COMPILED:
        text = pattern.sub(repl, text)
    return text


def _drain() -> Drain:
    """Drain as drain3's ``TemplateMiner`` builds it from its default configuration (parameters
    written ``<*>``, numeric tokens parametrised), with our similarity and depth."""
    return Drain(sim_th=SIM_TH, depth=DEPTH, param_str="<*>", parametrize_numeric_tokens=True)


def mine(texts: Sequence[str]) -> tuple[list[int], dict[int, str]]:
    """Template id of each text (in order) and the final text of each template.

    What drain3's ``TemplateMiner.add_log_message`` does (:func:`mask`, then Drain), with each
    distinct text masked once: a log repeats the same lines many times, and masking (seven regular
    expressions a line) is most of the mining's cost. Drain still sees every line, in order.

    Drain is asked only when its answer may differ from the last time: a masked text added again
    while no template changed and no cluster was created since it was last added goes to the same
    cluster and changes nothing (right after a text is added its cluster matches it at least as well
    as before, and no better cluster appeared), so only the cluster's size is counted. A text with a
    literal ``<*>`` always goes to Drain (a new cluster of it may match it too weakly to be chosen).
    """
    drain = _drain()
    masked: dict[str, str] = {}
    version = 0                           # bumped whenever Drain's templates or clusters change
    seen: dict[str, tuple[int, LogCluster]] = {}     # masked text -> (version when last added, cluster)
    ids = []
    for text in texts:
        m = masked.get(text)
        if m is None:
            m = masked[text] = mask(" ".join(text.split()))
        last = seen.get(m)
        if last is not None and last[0] == version:
            cluster = last[1]
            cluster.size += 1             # what Drain itself does for a matching line
        else:
            cluster, change = drain.add_log_message(m)
            if change != "none":
                version += 1
            if "<*>" not in m:
                seen[m] = (version, cluster)
        ids.append(cluster.cluster_id)
    return ids, {c.cluster_id: c.get_template() for c in drain.clusters}


def mine_templates(lines: Sequence[LogLine], *, cutoff: datetime | None = None) -> list[TemplateStats]:
    """Mine ``lines`` into templates and count each window (baseline: timed lines before ``cutoff``).

    Without a cutoff every line is in the incident window. Templates in order of first occurrence.
    """
    ids, texts = mine([ln.text for ln in lines])
    members: dict[int, list[int]] = {}
    for i, tid in enumerate(ids):
        members.setdefault(tid, []).append(i)
    out = []
    for tid, idx in members.items():
        group = [lines[i] for i in idx]
        base = [ln for ln in group if _in_baseline(ln, cutoff)]
        incident = [ln for ln in group if not _in_baseline(ln, cutoff)]
        example = (incident or base)[-1]
        times = [ln.at for ln in group if ln.at is not None]
        out.append(TemplateStats(
            template_id=tid, template=texts[tid], baseline_count=len(base), incident_count=len(incident),
            first_seen=min(times, default=None), last_seen=max(times, default=None),
            example=example.text.strip(), example_at=example.at,
            error=any(is_error(ln) for ln in group), fatal=any(is_fatal(ln) for ln in group), lines=idx))
    return out


def _in_baseline(line: LogLine, cutoff: datetime | None) -> bool:
    return cutoff is not None and line.at is not None and line.at < cutoff


def score_templates(stats: Sequence[TemplateStats], *, baseline_minutes: float,
                    incident_minutes: float) -> list[TemplateChange]:
    """Classify and score each template against the baseline; best first (score, then incident lines)."""
    out = []
    for s in stats:
        base_rate = s.baseline_count / baseline_minutes if baseline_minutes > 0 else 0.0
        inc_rate = s.incident_count / max(incident_minutes, 1.0)
        ratio = (inc_rate + SMOOTH) / (base_rate + SMOOTH)
        status: Status
        if s.incident_count == 0:
            status = "gone"
        elif s.baseline_count == 0:
            status = "new"
        elif ratio >= SURGE_RATIO and s.incident_count >= MIN_SURGE:
            status = "surging"
        else:
            status = "steady"
        score = math.log2(ratio) * (1.0 if s.error else QUIET_WEIGHT)
        out.append(TemplateChange(stats=s, status=status, baseline_rate=round(base_rate, 4),
                                  incident_rate=round(inc_rate, 4), ratio=round(ratio, 4), score=round(score, 4)))
    return sorted(out, key=lambda c: (-c.score, -c.stats.incident_count, c.stats.template_id))


def template_changes(lines: Sequence[LogLine], *, onset: datetime | None, lead: timedelta = LEAD,
                     start: datetime | None = None, end: datetime | None = None) -> list[TemplateChange]:
    """Mine ``lines`` and judge every template against the baseline before ``onset − lead``.

    ``start``/``end`` bound the windows (the query's time range); by default the earliest and latest
    timed line. Without an onset every template is new. Best first.
    """
    times = [ln.at for ln in lines if ln.at is not None]
    start = start or min(times, default=None)
    end = end or max(times, default=None)
    cutoff = onset - lead if onset is not None else None
    baseline_minutes = incident_minutes = 0.0
    if cutoff is not None and start is not None and start < cutoff:
        baseline_minutes = max((cutoff - start).total_seconds() / 60, 1.0)
    if end is not None and start is not None:
        from_ = cutoff if cutoff is not None and cutoff > start else start
        incident_minutes = max((end - from_).total_seconds() / 60, 1.0)
    stats = mine_templates(lines, cutoff=cutoff)
    return score_templates(stats, baseline_minutes=baseline_minutes, incident_minutes=incident_minutes)


def new_or_surging(changes: Sequence[TemplateChange]) -> list[TemplateChange]:
    """The templates that rose with the incident, in the given order."""
    return [c for c in changes if c.status in ("new", "surging")]
