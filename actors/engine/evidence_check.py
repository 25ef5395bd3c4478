"""Evidence verification for the LLM planner's RCA: a quoted line counts only if the run saw it.

A model can write a plausible log line that no tool ever returned. :func:`check_rca` looks for every
quoted evidence line of an RCA in the run's *sources*: the text each tool call returned to the
model (and the trigger the run started from), and :func:`apply_check` drops what was not found,
lowers the affected causes' confidence and says so in ``RCA.notes``. Both are pure; the engine
applies them on the LLM path only (the offline planner quotes tool evidence itself).

Matching rules (one place, so tests and docs can point here):

* **Whitespace**: runs of whitespace (any Unicode whitespace, newlines and tabs included) collapse
  to one space and both ends are stripped, in the quote and in every source.
* **Case**: exact. A quote that differs in case from what the tool returned is not a quote.
* **Wrapping**: one pair of matching quote marks or backticks around the whole quote (``"…"``,
  ``'…'``, ```…```, ``“…”``, ``‘…’``) is not part of it.
* **JSON escapes**: tool output reaches the model as JSON text, so a line containing quotes or
  newlines appears escaped (``msg=\\"boom\\"``). A quote matches if it is found with JSON string
  escapes (``\\"``, ``\\\\``, ``\\/``, ``\\n``, ``\\t``, ``\\r``, ``\\b``, ``\\f``, ``\\uXXXX``) decoded or
  not, on either side, up to two levels deep (a JSON log line inside JSON output).
* **Ellipsis**: ``...`` or ``…`` marks an omission: the parts between must all be found in the same
  source, in order.
* **Non-trivial**: the longest part must be at least :data:`MIN_QUOTE_CHARS` characters after
  normalisation; shorter quotes ("error", "503") would match almost any output, so they are
  dropped as too short to verify.

Confidence rule (:func:`adjusted_confidence`): a cause with ``v`` of ``n`` quotes verified keeps
``confidence × max(v/n, 1/4)``; a cause with none verified is also capped at
:data:`UNVERIFIED_CAP`. Causes without quotes are left alone. When anything was dropped the causes
are re-sorted by confidence (stable).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from incidentfox.contracts import RCA

MIN_QUOTE_CHARS = 8
UNVERIFIED_FLOOR = 0.25      # the least fraction of its confidence a partly verified cause keeps
UNVERIFIED_CAP = 0.2         # the most confidence a cause with no verified quote keeps

_ESCAPE = re.compile(r'\\(["\\/bfnrt]|u[0-9a-fA-F]{4})')
_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_ELLIPSIS = re.compile(r"\s*(?:\.{3,}|…)\s*")
_WRAPPERS = (('"', '"'), ("'", "'"), ("`", "`"), ("“", "”"), ("‘", "’"))


class Verdict(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    TOO_SHORT = "too_short"


class Source(NamedTuple):
    """One thing the run saw: ``label`` (a tool name, ``trigger``) and its text or JSON-able value."""

    label: str
    content: Any


@dataclass(frozen=True)
class QuoteCheck:
    quote: str
    verdict: Verdict
    source: str = ""             # the label of the source it was found in

    @property
    def verified(self) -> bool:
        return self.verdict is Verdict.FOUND


@dataclass(frozen=True)
class CauseCheck:
    entity: str
    quotes: tuple[QuoteCheck, ...]

    @property
    def verified(self) -> int:
        return sum(q.verified for q in self.quotes)

    @property
    def dropped(self) -> tuple[QuoteCheck, ...]:
        return tuple(q for q in self.quotes if not q.verified)


@dataclass(frozen=True)
class EvidenceCheck:
    """Per root cause (in the RCA's order), what was found where and what was not."""

    causes: tuple[CauseCheck, ...] = field(default_factory=tuple)

    @property
    def total(self) -> int:
        return sum(len(c.quotes) for c in self.causes)

    @property
    def dropped(self) -> int:
        return sum(len(c.dropped) for c in self.causes)

    @property
    def too_short(self) -> int:
        return sum(q.verdict is Verdict.TOO_SHORT for c in self.causes for q in c.quotes)

    def summary(self) -> dict[str, Any]:
        """Counts and the dropped quotes (cut to 200 characters), for a run event."""
        return {"quotes": self.total, "verified": self.total - self.dropped, "dropped": self.dropped,
                "dropped_quotes": [{"entity": c.entity, "quote": q.quote[:200], "reason": q.verdict.value}
                                   for c in self.causes for q in c.dropped][:20]}


def normalise(text: str) -> str:
    """Whitespace runs collapsed to one space, ends stripped."""
    return " ".join(text.split())


def json_unescape(text: str) -> str:
    """``text`` with JSON string escapes decoded (anything that is not an escape is kept as is)."""
    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        return chr(int(code[1:], 16)) if code[0] == "u" else _SIMPLE[code]
    return _ESCAPE.sub(one, text)


def _forms(text: str) -> list[str]:
    """The normalised text, plus its JSON-unescaped forms (one and two levels) where they differ."""
    out = [normalise(text)]
    for _ in range(2):
        text = json_unescape(text)
        form = normalise(text)
        if form in out:
            break
        out.append(form)
    return out


def _as_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, default=str, ensure_ascii=False)


def _unwrap(quote: str) -> str:
    q = quote.strip()
    for left, right in _WRAPPERS:
        if len(q) >= 2 and q.startswith(left) and q.endswith(right):
            return q[len(left):-len(right)].strip()
    return q


def _parts(form: str) -> list[str]:
    return [p for p in _ELLIPSIS.split(form) if p]


def _in_order(parts: list[str], haystack: str) -> bool:
    at = 0
    for part in parts:
        i = haystack.find(part, at)
        if i < 0:
            return False
        at = i + len(part)
    return True


class Sources:
    """The run's sources, normalised once (every quote of the RCA is looked up in all of them)."""

    def __init__(self, sources: Iterable[Source | tuple[str, Any]]) -> None:
        self._forms = [(label, _forms(_as_text(content))) for label, content in sources]

    def check(self, quote: str) -> QuoteCheck:
        quote_forms = [_parts(f) for f in _forms(_unwrap(quote))]
        if max((len(p) for parts in quote_forms for p in parts), default=0) < MIN_QUOTE_CHARS:
            return QuoteCheck(quote=quote, verdict=Verdict.TOO_SHORT)
        for label, haystacks in self._forms:
            if any(_in_order(parts, h) for parts in quote_forms if parts for h in haystacks):
                return QuoteCheck(quote=quote, verdict=Verdict.FOUND, source=label)
        return QuoteCheck(quote=quote, verdict=Verdict.NOT_FOUND)


def check_rca(rca: RCA, sources: Sources | Iterable[Source | tuple[str, Any]]) -> EvidenceCheck:
    """Every quoted evidence line of every root cause, looked up in ``sources``."""
    found_in = sources if isinstance(sources, Sources) else Sources(sources)
    return EvidenceCheck(causes=tuple(
        CauseCheck(entity=c.entity, quotes=tuple(found_in.check(e.quote) for e in c.evidence))
        for c in rca.root_causes))


def adjusted_confidence(confidence: float, *, verified: int, total: int) -> float:
    """The module docstring's rule: unchanged when every quote verified (or there were none)."""
    if total <= 0 or verified >= total:
        return confidence
    lowered = confidence * max(verified / total, UNVERIFIED_FLOOR)
    return min(lowered, UNVERIFIED_CAP) if verified == 0 else lowered


def note(check: EvidenceCheck) -> str:
    """The sentence the RCA carries when quotes were dropped ("" when none were)."""
    if not check.dropped:
        return ""
    entities = [c.entity for c in check.causes if c.dropped]
    short = f" ({check.too_short} too short to verify)" if check.too_short else ""
    return (f"Evidence check: {check.dropped} of {check.total} quoted evidence line(s) could not be found "
            f"in this run's tool output and were dropped{short}; confidence lowered for "
            f"{', '.join(dict.fromkeys(entities))}.")


def apply_check(rca: RCA, check: EvidenceCheck) -> RCA:
    """A copy of ``rca`` keeping only verified quotes, each labelled with the source it was found in;
    when any was dropped, confidences lowered per :func:`adjusted_confidence`, causes re-sorted by
    confidence and the note added to ``notes``."""
    if len(check.causes) != len(rca.root_causes):
        raise ValueError("the evidence check does not belong to this RCA")
    causes = []
    for cause, cc in zip(rca.root_causes, check.causes, strict=True):
        kept = [e.model_copy(update={"source": q.source or e.source})
                for e, q in zip(cause.evidence, cc.quotes, strict=True) if q.verified]
        confidence = adjusted_confidence(cause.confidence, verified=cc.verified, total=len(cc.quotes))
        causes.append(cause.model_copy(update={"evidence": kept, "confidence": confidence}))
    if not check.dropped:
        return rca.model_copy(update={"root_causes": causes})
    causes.sort(key=lambda c: -c.confidence)
    return rca.model_copy(update={"root_causes": causes, "notes": [*rca.notes, note(check)]})


def verify_rca(rca: RCA, sources: Iterable[Source | tuple[str, Any]]) -> tuple[RCA, EvidenceCheck]:
    """:func:`check_rca` then :func:`apply_check`."""
    check = check_rca(rca, sources)
    return apply_check(rca, check), check


__all__ = ["MIN_QUOTE_CHARS", "UNVERIFIED_CAP", "UNVERIFIED_FLOOR", "CauseCheck", "EvidenceCheck", "QuoteCheck",
           "Source", "Sources", "Verdict", "adjusted_confidence", "apply_check", "check_rca", "json_unescape",
           "normalise", "note", "verify_rca"]
