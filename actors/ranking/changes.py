"""Change correlation: a deploy or config change shortly before the onset.

A change at ``t`` before the onset ``T`` (the alert's start, else ``now``) scores
``weight(kind) · (0.35 + 0.5·exp(-(T - t) / HALF_LIFE))`` when ``0 ≤ T - t ≤ WINDOW`` (a small
clock skew ``SKEW`` after ``T`` is tolerated). Deploys, rollbacks and config changes weigh 1,
commits and pull requests 0.7 (they may not be deployed). Changes without a time score 0.3; changes
after the onset cannot have caused it and are ignored.

The same change often arrives twice: found by a tool (GitHub's REST API, the rollout history) and
recorded from a webhook (:mod:`actors.tools.recorded_changes`), or as a deployment and then its
status. :func:`dedupe_changes` keeps one per ``(entity, kind, ref)`` (without a ref:
``(entity, kind, time, description)``), the one with the time and the longest description, so a
change counts once with the weight of its kind whichever way it was found.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from actors.ranking.model import CHANGE, Finding
from incidentfox.contracts import Evidence
from incidentfox.evidence import ChangeEvent

WINDOW = timedelta(hours=2)
HALF_LIFE = timedelta(minutes=30)
SKEW = timedelta(minutes=2)
_WEIGHTS = {"deploy": 1.0, "rollback": 1.0, "config": 1.0, "commit": 0.7, "pull_request": 0.7}


def change_quote(c: ChangeEvent) -> str:
    when = c.at.isoformat(timespec="seconds") if c.at else "unknown time"
    who = f" by {c.author}" if c.author else ""
    ref = f" ({c.ref})" if c.ref else ""
    return f"{c.kind} of {c.entity}{ref} at {when}{who}: {c.description}".rstrip(": ")


def _key(c: ChangeEvent) -> tuple[str, ...]:
    if c.ref:
        return (c.entity, c.kind, c.ref)
    return (c.entity, c.kind, c.at.isoformat() if c.at else "", c.description)


def dedupe_changes(changes: list[ChangeEvent]) -> list[ChangeEvent]:
    """One change per key (see the module doc), in first-seen order; of two copies the one with a
    time wins, then the longer description (a deployment's status says more than the deployment)."""
    kept: dict[tuple[str, ...], ChangeEvent] = {}
    for c in changes:
        key = _key(c)
        old = kept.get(key)
        if old is None:
            kept[key] = c
        elif (old.at is None and c.at is not None) or (
                (old.at is None) == (c.at is None) and len(c.description) > len(old.description)):
            kept[key] = c.model_copy(update={"at": c.at or old.at, "author": c.author or old.author})
    return list(kept.values())


def change_findings(changes: list[ChangeEvent], onset: datetime | None) -> list[Finding]:
    out = []
    for c in dedupe_changes(changes):
        weight = _WEIGHTS.get(c.kind, 0.7)
        if c.at is None or onset is None:
            score, age = 0.3 * weight, None
        else:
            age = onset - c.at
            if age < -SKEW or age > WINDOW:
                continue
            score = weight * (0.35 + 0.5 * math.exp(-max(age, timedelta(0)) / HALF_LIFE))
        minutes = f"{max(age.total_seconds(), 0) / 60:.0f} min before the alert" if age is not None else "recently"
        out.append(Finding(
            entity=c.entity, signal=CHANGE, kind="recent_change", score=round(score, 4),
            summary=f"{c.kind} of {c.entity} {minutes}" + (f": {c.description}" if c.description else ""),
            evidence=[Evidence(kind="change", source=CHANGE, quote=change_quote(c), at=c.at)],
            details={"change_kind": c.kind, "ref": c.ref, "description": c.description, "author": c.author,
                     "repo": c.repo, "sha": c.sha, "minutes_before": None if age is None else round(age.total_seconds() / 60, 1)},
        ))
    return out
