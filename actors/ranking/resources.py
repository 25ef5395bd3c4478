"""Resources: a service's own saturation, and the network in front of it.

Both findings come from a service's OWN series, scored against its normal period like every metric
(:func:`actors.ranking.anomaly.score_series`: robust z against the baseline, checked for a change
point at the onset), at the points measured after the alert's onset only (a point stamped before the
onset measured the time before it):

* **Saturation** (``cpu_saturation``, ``memory_saturation``): the service's CPU or memory
  (``cpu``/``memory`` metric families, as the planner's cAdvisor queries name them) rose to
  ``z ≥ TAU``. Waiting on a slow dependency does not burn a caller's CPU, so a saturated service is
  a cause rather than a victim.
* **Network delay** (``network_delay``): the latency of the calls *into* a service as its callers
  measure it (``call_latency_client``) rose to ``z ≥ TAU`` while the service's own measure of the
  same calls (``call_latency_server``) did not follow: the share of the rise the service does not
  see itself, ``(Δclient − Δserver) / Δclient``, is at least ``NETWORK_SHARE``, and the callers'
  latency at least ``NETWORK_RATIO`` × its baseline (a millisecond over a flat baseline is not a
  network fault). Its strength is the z of the *network time*, the callers' view minus the
  service's own at the same times, against that gap's own points before the onset: a caller's view
  swings with the service's own work, which the difference cancels. Without ``MIN_BASELINE`` such
  points the callers' z times the share stands in. A caller starved of CPU times its calls slow too, so when a caller of the service
  (call graph) is CPU-saturated the finding weighs ``CALLER_SATURATED``. The time is spent
  between the caller and the service, on the service's network path. Without a server-side series
  the finding is not made (a slow service looks the same from outside).

* **Calls stopped** (``calls_stopped``): the calls into a dependency vanished at the onset (its
  ``call_latency_client`` had points in at least ``STOPPED_BEFORE`` of the ``STOPPED_STEPS`` steps
  before the onset and at most one after, while other services' series go on), and a caller of it
  is still called itself: that caller fails before it reaches the dependency (an exception, an
  early return), fault class ``code``. A caller with another dependency that is saturated or
  delayed stopped because of it, so its finding weighs ``CALLER_SATURATED``.

Each finding scores ``BASE + (TOP - BASE) · (1 - exp(-(z - TAU) / SPREAD))``: just above the blame
threshold at ``TAU``, approaching ``TOP`` for extreme departures; ``details["fault"]`` names the
fault class (``cpu``, ``memory``, ``network``) for the RCA.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from actors.ranking.anomaly import MIN_BASELINE, REL_FLOOR, TAU, Scorer, SeriesScore, median, score_series
from actors.ranking.model import RESOURCE, Finding
from incidentfox.contracts import Evidence
from incidentfox.evidence import EvidenceBundle

BASE = 0.35
TOP = 0.85
SPREAD = 2 * TAU
NETWORK_SHARE = 0.5
CALLER_SATURATED = 0.5
NETWORK_RATIO = 2.0
SATURATION = {"cpu": "cpu_saturation", "memory": "memory_saturation"}
STOPPED_STEPS, STOPPED_BEFORE = 10, 8
CLIENT, SERVER = "call_latency_client", "call_latency_server"


def _score(z: float) -> float:
    return round(BASE + (TOP - BASE) * (1 - math.exp(-max(0.0, z - TAU) / SPREAD)), 4)


def _worst(s: SeriesScore, onset: float | None) -> int | None:
    """The index of the most anomalous point measured after ``onset`` (None: there is none)."""
    after = s.times >= onset if onset is not None else np.ones(len(s.times), dtype=bool)
    if not after.any():
        return None
    return int(np.argmax(np.where(after, s.z, -np.inf)))


def _quote(s: SeriesScore, i: int) -> str:
    unit = f" {s.unit}" if s.unit else ""
    return (f"{s.entity} {s.metric} {s.values[i]:.4g}{unit} vs baseline {s.center:.4g}{unit} "
            f"(robust z {s.z[i]:.1f})")


def _saturation(scored: list[SeriesScore], onset: float | None) -> list[Finding]:
    out = []
    for s in scored:
        i = _worst(s, onset) if s.metric in SATURATION else None
        if i is None:
            continue
        z = float(s.z[i])
        if z < TAU:
            continue
        fault = s.metric
        out.append(Finding(
            entity=s.entity, signal=RESOURCE, kind=SATURATION[s.metric], score=_score(z),
            summary=f"{s.entity} {s.metric} rose to {s.values[i]:.4g}{' ' + s.unit if s.unit else ''} "
                    f"from {s.center:.4g} (robust z {z:.1f}): the service itself is saturated",
            evidence=[Evidence(kind="metric", source=RESOURCE, quote=_quote(s, i))],
            details={"fault": fault, "metric": s.metric, "z": round(z, 2), "signals": ["anomaly"]},
        ))
    return out


def _gap_z(client: SeriesScore, server: SeriesScore, onset: float | None) -> tuple[float, float] | None:
    """(z, time) of the worst network time (client − server) after the onset, against the gap's own
    points before it; None without ``MIN_BASELINE`` such points or an onset."""
    if onset is None:
        return None
    common = sorted(set(client.window) & set(server.window))
    t = np.asarray(common, dtype=float)
    gap = np.asarray([client.window[x] - server.window[x] for x in common], dtype=float)
    pre, post = gap[t < onset - client.step / 2], t >= onset
    if len(pre) < MIN_BASELINE or not post.any():
        return None
    center = median(pre)
    scale = max(1.4826 * median(np.abs(pre - center)), REL_FLOOR * abs(client.center), 1e-12)
    z = np.where(post, (gap - center) / scale, -np.inf)
    k = int(np.argmax(z))
    return float(z[k]), float(t[k])


def _network(scored: list[SeriesScore], onset: float | None, starved: set[str],
             callers: dict[str, set[str]]) -> list[Finding]:
    server = {s.entity: s for s in scored if s.metric == SERVER}
    out = []
    for c in scored:
        i = _worst(c, onset) if c.metric == CLIENT and c.entity in server else None
        if i is None:
            continue
        srv = server[c.entity]
        gap = _gap_z(c, srv, onset)
        if gap is not None:
            i = int(np.argmin(np.abs(c.times - gap[1])))
        if c.delta[i] <= 0 or c.values[i] < NETWORK_RATIO * c.center:
            continue
        j = int(np.argmin(np.abs(srv.times - c.times[i]))) if len(srv.times) else -1
        seen = max(0.0, float(srv.delta[j])) if j >= 0 else 0.0
        share = max(0.0, (float(c.delta[i]) - seen) / float(c.delta[i]))
        z = gap[0] if gap is not None else float(c.z[i]) * share
        if share < NETWORK_SHARE or z < TAU:
            continue
        hungry = sorted(callers.get(c.entity, set()) & starved)
        evidence = [Evidence(kind="metric", source=RESOURCE, quote=_quote(c, i))]
        if j >= 0:
            evidence.append(Evidence(kind="metric", source=RESOURCE, quote=_quote(srv, j)))
        out.append(Finding(
            entity=c.entity, signal=RESOURCE, kind="network_delay",
            score=round(_score(z) * (CALLER_SATURATED if hungry else 1.0), 4),
            summary=f"calls into {c.entity} take {c.values[i]:.4g} {c.unit} as its callers see them "
                    f"(baseline {c.center:.4g}) while {c.entity} measures "
                    f"{srv.values[j]:.4g} {srv.unit} itself: {share:.0%} of the delay is on the network"
            if j >= 0 else f"calls into {c.entity} slowed on the network",
            evidence=evidence,
            details={"fault": "network", "metric": CLIENT, "z": round(z, 2), "network_share": round(share, 3),
                     "network_time_z": gap is not None,
                     "saturated_callers": hungry, "signals": ["anomaly"]},
        ))
    return out


def _stopped(bundle: EvidenceBundle, onset: float | None, callers: dict[str, set[str]],
             causes: set[str]) -> list[Finding]:
    """``calls_stopped`` findings on the callers of dependencies whose incoming calls vanished."""
    series = [s for s in bundle.metrics if s.metric == CLIENT and not s.baseline and s.timestamps]
    if onset is None or not series:
        return []
    step = float(np.median([np.median(np.diff(s.timestamps)) for s in series if len(s.timestamps) > 1] or [60.0]))
    before = {s.entity: sum(1 for t in s.timestamps if onset - STOPPED_STEPS * step <= t < onset) for s in series}
    after = {s.entity: sum(1 for t in s.timestamps if t >= onset) for s in series}
    gone = sorted(e for e in before if before[e] >= STOPPED_BEFORE and after[e] <= 1)
    if not gone or max(after.values()) < 2:
        return []        # nothing vanished, or the data ends at the onset for everyone
    alert = bundle.alert.entity
    blamed: dict[str, list[str]] = {}
    for dep in gone:
        for c in callers.get(dep, set()):
            if after.get(c, 0) >= 2 or c == alert:      # the caller is itself still called
                blamed.setdefault(c, []).append(dep)
    down: dict[str, set[str]] = {}
    for e in bundle.topology:
        down.setdefault(e.caller, set()).add(e.callee)
    out = []
    for c, deps in sorted(blamed.items()):
        other = sorted((down.get(c, set()) - set(deps)) & causes)
        score = min(TOP, BASE + 0.1 * len(deps)) * (CALLER_SATURATED if other else 1.0)
        out.append(Finding(
            entity=c, signal=RESOURCE, kind="calls_stopped", score=round(score, 4),
            summary=f"{c} stopped calling {', '.join(deps)} at the onset while it is still called itself: "
                    f"it fails before reaching {'them' if len(deps) > 1 else 'it'}",
            evidence=[Evidence(kind="metric", source=RESOURCE,
                               quote=f"{CLIENT} into {d}: {before[d]} points in the {STOPPED_STEPS} steps before "
                                     f"the onset, {after[d]} after") for d in deps],
            details={"fault": "code", "stopped": deps, "saturated_dependencies": other, "signals": ["anomaly"]},
        ))
    return out


def resource_findings(bundle: EvidenceBundle, scorer: Scorer | None = None) -> list[Finding]:
    """Saturation and network-delay findings from each service's own series (see module doc);
    ``scorer``: the bundle's, shared with the anomaly view."""
    scored = score_series(bundle, metrics={*SATURATION, CLIENT, SERVER}, scorer=scorer)
    at = bundle.alert.started_at
    onset = at.timestamp() if isinstance(at, datetime) else None
    saturated = _saturation(scored, onset)
    callers: dict[str, set[str]] = {}
    for e in bundle.topology:
        callers.setdefault(e.callee, set()).add(e.caller)
    starved = {f.entity for f in saturated if f.details["fault"] == "cpu"}
    found = [*saturated, *_network(scored, onset, starved, callers)]
    causes = {f.entity for f in found if not f.details.get("saturated_callers")}
    return sorted([*found, *_stopped(bundle, onset, callers, causes)], key=lambda f: -f.score)
