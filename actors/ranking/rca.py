"""Turn a :class:`~actors.ranking.model.Ranking` into the user-facing :class:`~incidentfox.contracts.RCA`.

* **summary**: the alert as reported, then the most likely root cause with its strongest finding
  and confidence; or "No incident: …" with the reason (and why a heartbeat alert fires).
* **root causes**: the suspects that reach the blame threshold (at most three) and relate to the
  alert, each described by its findings and quoting their evidence verbatim.
* **affected services**: the alert's subject, the anomalous callers the root cause explains, and
  the suspects.
* **timeline**: changes, events and quoted evidence that carry a time, within ``TIMELINE_SPAN`` of
  the alert's start, plus the start itself; the latest ``MAX_TIMELINE`` entries.
* **recommended actions**: templated by finding kind (roll back the deploy, raise the memory limit,
  fix the image reference, free GPU capacity…), most specific first; they may name an image, a
  command or a dependency from the evidence, quoted as data. Only findings that reach the blame
  threshold yield actions.

When the root cause has a strong recent change, the summary leads with the change (the actionable
cause) and then the strongest symptom.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from actors.ranking.changes import change_quote, dedupe_changes
from actors.ranking.model import Finding, Ranking, Suspect
from actors.ranking.no_incident import MIN_BLAME
from incidentfox.contracts import RCA, RootCause, TimelineEntry
from incidentfox.evidence import EvidenceBundle

MAX_ROOT_CAUSES = 3
MAX_TIMELINE = 15
TIMELINE_SPAN = timedelta(hours=6)
STRONG_CHANGE = 0.5
# Action order: the actionable cause first, generic advice last.
_PRIORITY = {"recent_change": 0, "image_pull": 1, "oom_killed": 1, "failed_scheduling": 1, "job_failed": 1,
             "crash_loop": 1, "container_error": 2, "slow_span": 2, "error_signature": 3, "slow_operation": 3,
             "failed_mount": 3, "evicted": 3, "probe_failed": 4, "failed_create": 4, "unavailable_replicas": 5,
             "unready": 5, "root_of_anomaly": 6}
_KNOWN_ACTIONS = {
    "disk_full": "Free disk space or grow the storage of {e} (its logs say the device is full).",
    "connection_limit": "Restore the connection capacity of {e}: raise the pool or connection limit, or cut the load.",
    "out_of_memory": "Give {e} more memory or fix its memory growth (its logs report running out of memory).",
    "permission_denied": "Fix the credentials or permissions {e} uses (its logs report access denied).",
    "tls": "Renew or fix the TLS certificate {e} presents or trusts.",
}


def _action(f: Finding, e: str) -> str:
    """The action for one finding about suspect ``e``."""
    d = f.details
    match f.kind:
        case "oom_killed":
            limit = f" (now {d['memory_limit']})" if d.get("memory_limit") else ""
            return f"Raise the memory limit of {e}{limit} or fix its memory growth; it is OOMKilled and restarting."
        case "crash_loop" | "container_error" if d.get("missing_executable"):
            hint = f" — did you mean `{d['suggested_executable']}`?" if d.get("suggested_executable") else ""
            return (f"Fix the container command of {e}: `{d['missing_executable']}` is not found in the image "
                    f"(a typo or a missing binary){hint}")
        case "crash_loop" | "container_error":
            why = f": {d['explanation'][:160]}" if d.get("explanation") else ""
            return f"Fix what makes {e} crash{why}; `kubectl logs --previous` shows the last crash."
        case "image_pull":
            image = f" `{d['image']}`" if d.get("image") else ""
            return (f"Fix the image reference{image} of {e}: make sure the repository and tag exist and that "
                    "the pull credentials (imagePullSecrets) can read them.")
        case "failed_scheduling":
            what = " and ".join(d.get("resource_names") or []) or "the requested resources"
            return (f"Provide {what} for {e}: add nodes that have {', '.join(d.get('resources') or []) or what} "
                    "or lower the pod's requests; until then it cannot be scheduled.")
        case "job_failed":
            dep = f": restore connectivity to {d['dependency']}" if d.get("dependency") else ""
            return f"Fix the failure of job {e}{dep}, then re-run the job."
        case "recent_change" if d.get("change_kind") in ("commit", "pull_request"):
            ref = f" {d['ref']}" if d.get("ref") else ""
            return f"Check whether the {d['change_kind'].replace('_', ' ')}{ref} to {e} is deployed and revert it if so."
        case "recent_change":
            ref = f" ({d['ref']})" if d.get("ref") else ""
            return f"Roll back the {d.get('change_kind', 'change')} of {f.entity}{ref} and check the symptoms clear."
        case "root_of_anomaly":
            return (f"Investigate {e}: its {d.get('metric', 'metrics')} departed from baseline first (robust z "
                    f"{float(d.get('z', 0)):.0f}); check its recent changes, saturation and dependencies.")
        case "error_signature" if d.get("known") in _KNOWN_ACTIONS:
            return _KNOWN_ACTIONS[d["known"]].format(e=e)
        case "error_signature":
            dep = f"; check that {d['dependency']} is reachable" if d.get("dependency") else ""
            return f"Fix the recurring error in {e}{dep}."
        case "slow_operation":
            return f"Speed up the slow operation in {e} ({d.get('operation', '')[:120]})."
        case "slow_span" if d.get("database"):
            stmt = f" `{d['db_statement']}`" if d.get("db_statement") else ""
            return f"Optimise the slow database query{stmt} in {e}: check its plan and indexes."
        case "slow_span":
            return f"Profile {d.get('operation', 'the slow operation')} in {e}."
        case "unavailable_replicas" | "unready":
            return f"Find why {e} is not ready: check its pods' events, scheduling and probes."
        case "failed_mount":
            return f"Fix the volume mount of {e} (missing secret, config map or volume)."
        case "evicted":
            return f"Find why {e} was evicted (node pressure) and size its requests accordingly."
        case "probe_failed":
            return f"Fix the failing readiness/liveness probe of {e}, or what makes the service unhealthy."
        case "failed_create":
            return f"Fix what blocks creating {e}'s pods (quota, admission, service account)."
    return ""


def _relevant(s: Suspect) -> bool:
    """False when every finding about the suspect is unrelated to the alert."""
    return any(not f.details.get("unrelated_to_alert") for f in s.findings)


def _cause(s: Suspect) -> str:
    """Lead with a strong recent change (the actionable cause), then the strongest other finding."""
    change = next((f for f in s.findings if f.kind == "recent_change" and f.score >= STRONG_CHANGE), None)
    other = next((f for f in s.findings if f.kind != "recent_change"), None)
    if change is None:
        return s.findings[0].summary
    return change.summary + (f"; {other.summary}" if other is not None else "")


def _describe(s: Suspect) -> str:
    parts = []
    for f in s.findings[:3]:
        if f.summary not in parts:
            parts.append(f.summary)
    return "; ".join(parts)


def _timeline(ranking: Ranking, bundle: EvidenceBundle, causes: list[Suspect]) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    for c in dedupe_changes(bundle.changes):
        entries.append(TimelineEntry(at=c.at, event=change_quote(c)))
    for ev in bundle.events:
        if ev.type == "Warning" and ev.at is not None:
            entries.append(TimelineEntry(at=ev.at, event=f"{ev.kind}/{ev.name} {ev.reason}: {ev.message[:160]}"))
    for s in causes:
        for e in s.evidence:
            if e.at is not None and e.kind != "change":
                entries.append(TimelineEntry(at=e.at, event=e.quote[:200]))
    start = ranking.alert.started_at
    if start is not None:
        entries.append(TimelineEntry(at=start, event=f"alert fired: {ranking.alert.title}"))
        entries = [t for t in entries if t.at is None or abs(t.at - start) <= TIMELINE_SPAN]
    seen, out = set(), []
    for t in sorted(entries, key=lambda t: t.at or datetime.max.replace(tzinfo=UTC)):
        if t.event not in seen:
            seen.add(t.event)
            out.append(t)
    timed = [t for t in out if t.at is not None][-MAX_TIMELINE:]
    return timed or out[:MAX_TIMELINE]


def build_rca(ranking: Ranking, bundle: EvidenceBundle) -> RCA:
    """The RCA shown to users: every root cause quotes the evidence it rests on."""
    alert = ranking.alert
    first = alert.text.strip().splitlines()[0].strip() if alert.text.strip() else ""
    said = f" — {first}" if first and first.rstrip(".") != alert.title.rstrip(".") else ""
    headline = f"{alert.title}{said}".strip(" —").rstrip(".") or "Alert"
    if ranking.no_incident:
        notes = " ".join(ranking.notes)
        actions = ["No action needed for this alert: nothing in the evidence points to a failure."]
        if notes:
            actions.append("Keep this heartbeat routed to a dead man's switch: only its absence is an incident.")
        return RCA(summary=f"No incident ({headline}): {ranking.reason.removeprefix('No incident: ')} {notes}".strip(),
                   affected_services=[], timeline=_timeline(ranking, bundle, []),
                   recommended_actions=actions, no_incident=True)
    causes = [s for s in ranking.suspects if s.score >= MIN_BLAME and _relevant(s)][:MAX_ROOT_CAUSES] \
        or ranking.suspects[:1]
    top = causes[0]
    summary = (f"{headline}. Most likely root cause: {top.entity} — {_cause(top)} "
               f"(confidence {top.confidence:.0%}).")
    root_causes = [RootCause(entity=s.entity, description=_describe(s), confidence=s.confidence,
                             evidence=s.evidence[:6]) for s in causes]
    affected = list(dict.fromkeys([*ranking.affected, *(s.entity for s in causes)]))
    actions: list[str] = []
    known_done: set[str] = set()   # a known failure (disk full…) is fixed once, at the highest-ranked suspect
    for s in causes:
        kinds = {f.kind for f in s.findings}
        done: set[str] = set()
        for f in sorted(s.findings, key=lambda f: (_PRIORITY.get(f.kind, 5), -f.score)):
            if f.kind in done or f.score < MIN_BLAME or (f.kind == "crash_loop" and "oom_killed" in kinds
                                                          and not f.details.get("missing_executable")):
                continue   # one action per kind per suspect; an OOM kill already explains the crash loop
            done.add(f.kind)
            known = f.details.get("known", "")
            if known in known_done:
                continue
            if known:
                known_done.add(known)
            a = _action(f, s.entity)
            if a and a not in actions:
                actions.append(a)
    return RCA(summary=summary, root_causes=root_causes, affected_services=affected,
               timeline=_timeline(ranking, bundle, causes), recommended_actions=actions[:6], no_incident=False)
