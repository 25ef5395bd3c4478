"""What the offline planner understands in a reply in an investigation's thread, and how it answers.

Pure functions (no I/O), shared by the mid-run steering and the follow-up run
(:mod:`actors.engine.thread_turns`):

* :func:`parse_intent`: ``look at <service>`` (also ``check``, ``focus on``, ``what about``,
  ``investigate``, ``ignore <a>, look at <b>``), ``why <entity>`` (also ``explain``), ``rerun`` (also
  ``run again``, ``try again``); anything else is :data:`IntentKind.UNKNOWN`.
* :func:`known_entities` + :func:`resolve`: a named service is matched against what the evidence
  knows (alert entity, call graph, metric series, objects, logs, spans, changes): exact, then
  by name segment, then by substring, then by kind word (``database`` → names with ``db``,
  ``postgres``, ``mysql``…). Nothing here knows any particular system's names.
* :func:`explain`: the evidence about one entity from a finished run, as an :class:`RCA`.
* :data:`HELP`: the plain message for anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from incidentfox.contracts import RCA, Evidence, RootCause
from incidentfox.evidence import EvidenceBundle

HELP = ("I did not act on that. In this thread I understand:\n"
        "• `look at <service>`: investigate that service (mid-run: turn to it now)\n"
        "• `ignore <service>, look at <service>`: drop one focus for another\n"
        "• `why <service or pod>`: explain what the evidence says about it\n"
        "• `rerun`: investigate the original trigger again from scratch\n"
        "With an LLM configured for this team I can answer free-form questions too.")


class IntentKind(StrEnum):
    LOOK_AT = "look_at"
    WHY = "why"
    RERUN = "rerun"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Intent:
    kind: IntentKind
    target: str = ""                               # the entity as written (look_at, why)
    ignore: tuple[str, ...] = field(default=())    # entities to drop from the focus (look_at)

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind.value, "target": self.target, "ignore": list(self.ignore)}


_NAME = r"([A-Za-z0-9][\w./:-]{0,120})"
_ARTICLE = r"(?:the\s+|a\s+|an\s+|our\s+|my\s+)?"
_RERUN = re.compile(r"^\s*(?:please\s+)?(?:re-?run|run\s+(?:it\s+)?again|try\s+again|start\s+over|redo)\b",
                    re.IGNORECASE)
_IGNORE = re.compile(rf"\b(?:ignore|forget(?:\s+about)?|skip|not)\s+{_ARTICLE}{_NAME}", re.IGNORECASE)
_LOOK = re.compile(rf"\b(?:look(?:\s+at|\s+into)?|check(?:\s+on)?|focus\s+on|what\s+about|how\s+about|"
                   rf"investigate|dig\s+into|instead\s+of\s+that\s*,?\s*look\s+at)\s+{_ARTICLE}{_NAME}",
                   re.IGNORECASE)
_WHY = re.compile(rf"^\s*(?:why|explain|what\s+happened\s+(?:to|with))\s+"
                  rf"(?:(?:is|was|are|were|did|does|do|has|had)\s+)?{_ARTICLE}{_NAME}", re.IGNORECASE)
_STOP = {"it", "this", "that", "there", "here", "them", "logs", "metrics", "again", "now", "please"}


def _clean(name: str) -> str:
    return name.strip(" .,:;!?'\"`").lower()


def parse_intent(text: str) -> Intent:
    """What a reply asks for (see the module doc). ``text`` is untrusted: only matched, never run."""
    text = (text or "")[:2000]
    if _RERUN.search(text):
        return Intent(IntentKind.RERUN)
    look = _LOOK.search(text)
    if look and _clean(look.group(1)) not in _STOP:
        ignore = tuple(n for m in _IGNORE.finditer(text[:look.start()] + text[look.end():])
                       if (n := _clean(m.group(1))) and n not in _STOP)
        return Intent(IntentKind.LOOK_AT, target=_clean(look.group(1)), ignore=ignore)
    why = _WHY.search(text)
    if why and _clean(why.group(1)) not in _STOP:
        return Intent(IntentKind.WHY, target=_clean(why.group(1)))
    return Intent(IntentKind.UNKNOWN)


# Kind words a reply may use instead of a name, and the name parts that mean them.
KIND_WORDS: dict[str, tuple[str, ...]] = {
    "database": ("db", "database", "postgres", "pg", "mysql", "mariadb", "mongo", "sql", "rds", "dynamo",
                 "cassandra"),
    "db": ("db", "database", "postgres", "pg", "mysql", "mariadb", "mongo", "sql", "rds", "dynamo", "cassandra"),
    "cache": ("cache", "redis", "memcache", "valkey"),
    "queue": ("queue", "kafka", "rabbit", "sqs", "nats", "pubsub"),
}


def known_entities(bundle: EvidenceBundle, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Every entity name the evidence mentions, first seen first."""
    names: list[str] = [*extra, bundle.alert.entity]
    names += [n for e in bundle.topology for n in (e.caller, e.callee)]
    names += [m.entity for m in bundle.metrics] + [lg.entity for lg in bundle.logs]
    names += [s.entity for s in bundle.spans] + [c.entity for c in bundle.changes]
    names += [o.name for o in bundle.objects] + [o.owner for o in bundle.objects]
    out: list[str] = []
    for n in names:
        if n and n not in out:
            out.append(n)
    return out


def _segments(name: str) -> list[str]:
    return [p for p in re.split(r"[/:.\s]", name.lower()) if p]


def _base(name: str) -> str:
    return _segments(name)[-1] if _segments(name) else name.lower()


def resolve(target: str, entities: list[str]) -> str | None:
    """The known entity ``target`` names, or None. Exact, then last name segment, then a segment,
    then substring, then a kind word; ties go to the entity seen first."""
    t = target.lower().strip()
    if not t:
        return None
    for test in (lambda e: e.lower() == t, lambda e: _base(e) == t, lambda e: t in _segments(e),
                 lambda e: t in e.lower() and len(t) >= 3,
                 lambda e: any(w in re.split(r"[^a-z0-9]", e.lower()) or e.lower().startswith(w)
                               for w in KIND_WORDS.get(t, ()))):
        for e in entities:
            if test(e):
                return e
    return None


def _mentions(entity: str, text: str) -> bool:
    base = _base(entity)
    return bool(base) and base in text.lower()


def explain(entity: str, bundle: EvidenceBundle, parent: RCA | None) -> RCA:
    """What the evidence of a finished run says about ``entity`` (no new tool call)."""
    base = _base(entity)
    quotes: list[Evidence] = []
    for o in bundle.objects:
        if base in (_base(o.name), _base(o.owner)) or _mentions(entity, o.owner):
            detail = ", ".join(x for x in (o.status, f"ready {o.ready}" if o.ready else "",
                                           f"{o.restarts} restarts" if o.restarts else "", *o.reasons) if x)
            quotes.append(Evidence(kind="state", source="objects", quote=f"{o.kind}/{o.name}: {detail}"))
    quotes += [Evidence(kind="event", source="events", quote=f"{e.reason}: {e.message}"[:300])
               for e in bundle.events if _base(e.name) == base or _mentions(entity, e.name)][:5]
    quotes += [Evidence(kind="change", source="changes", quote=f"{c.kind}: {c.description}"[:300])
               for c in bundle.changes if _base(c.entity) == base][:3]
    quotes += [Evidence(kind="log", source="logs", quote=lg.text[:300])
               for lg in bundle.logs if _base(lg.entity) == base and lg.level.lower() in ("error", "fatal", "")][:5]
    series = [m for m in bundle.metrics if _base(m.entity) == base and m.values and not m.baseline]
    quotes += [Evidence(kind="metric", source="metrics",
                        quote=f"{m.metric}{' ' + m.statistic if m.statistic else ''}: last {m.values[-1]:g}"
                              f"{m.unit}, peak {max(m.values):g}{m.unit}") for m in series[:4]]
    callers = sorted({e.caller for e in bundle.topology if _base(e.callee) == base})
    callees = sorted({e.callee for e in bundle.topology if _base(e.caller) == base})
    cause = next((c for c in (parent.root_causes if parent else []) if _base(c.entity) == base), None)
    lines = []
    if cause is not None:
        lines.append(f"The previous analysis named {cause.entity} as a likely root cause "
                     f"(confidence {cause.confidence:.0%}): {cause.description}")
    elif parent is not None and parent.root_causes:
        lines.append(f"The previous analysis did not rank {entity} as a root cause "
                     f"(it named {', '.join(c.entity for c in parent.root_causes[:3])}).")
    if callers or callees:
        lines.append(f"In the call graph {entity} is called by {', '.join(callers[:5]) or 'nothing seen'} "
                     f"and calls {', '.join(callees[:5]) or 'nothing seen'}.")
    lines.append(f"{len(quotes)} piece(s) of evidence mention it." if quotes
                 else f"The evidence gathered so far says nothing specific about {entity}; "
                      f"reply `look at {base}` to investigate it.")
    causes = [RootCause(entity=entity, description=cause.description if cause else "evidence about it",
                        confidence=cause.confidence if cause else 0.0, evidence=quotes[:10])] if quotes else []
    return RCA(summary=f"Why {entity}: " + " ".join(lines), root_causes=causes,
               affected_services=[entity], recommended_actions=[])
