"""The RCA as Markdown for the places an alert came from (GitHub, PagerDuty, incident.io).

:func:`rca_markdown` is pure. Evidence quotes are tool output (log lines, metric values): they go
into fenced blocks whose fence they cannot close, so a quoted line never becomes markup or a link.
Every answer ends with the run's marker line (:func:`marker`), which is how an attempt that follows
a lost one finds what was already posted (a retried finish step never posts twice).
"""

from __future__ import annotations

import re

from incidentfox.contracts import RCA

FENCE = "~~~~"
MAX_CAUSES = 5
MAX_EVIDENCE = 4
QUOTE_CHARS = 500
_TILDES = re.compile(r"~{4,}")


def marker(run_id: str) -> str:
    """The line every answer of ``run_id`` carries (plain text, so it works in PagerDuty notes too)."""
    return f"incidentfox-run: {run_id}"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _quote(text: str) -> str:
    # A closing fence is a line of at least as many tildes: no run of four survives in a quote.
    return clip(_TILDES.sub("~~~", text), QUOTE_CHARS)


def _text(text: str) -> str:
    return _TILDES.sub("~~~", text)


def rca_markdown(rca: RCA, *, run_id: str, title: str = "", run_link: str | None = None,
                 limit: int = 60_000) -> str:
    """The RCA as Markdown, at most ``limit`` characters, the marker line always kept last."""
    head = f"### IncidentFox root-cause analysis{': ' + _text(title) if title else ''}"
    lines: list[str] = [head, "", _text(rca.summary), ""]
    if rca.no_incident:
        lines += ["_Nothing stands out: no incident found in the evidence gathered._", ""]
    for i, cause in enumerate(rca.root_causes[:MAX_CAUSES], 1):
        lines += [f"**Root cause {i}: {_text(cause.entity)}** (confidence {cause.confidence:.0%})", "",
                  _text(cause.description), ""]
        for ev in cause.evidence[:MAX_EVIDENCE]:
            lines += [f"{ev.kind}{' from ' + _text(ev.source) if ev.source else ''}:", FENCE, _quote(ev.quote),
                      FENCE, ""]
    if rca.affected_services:
        lines += ["**Affected services:** " + _text(", ".join(rca.affected_services)), ""]
    if rca.recommended_actions:
        lines += ["**Recommended actions:**", *(f"- {_text(a)}" for a in rca.recommended_actions), ""]
    if rca.notes:
        lines += ["**Notes:**", *(f"- {_text(n)}" for n in rca.notes), ""]
    footer = ([f"[Open the run]({run_link})", ""] if run_link else []) + [marker(run_id)]
    tail = "\n".join(footer)
    body = _clip_lines("\n".join(lines).rstrip(), max(0, limit - len(tail) - 2))
    return (body + "\n\n" if body else "") + tail


def _clip_lines(body: str, limit: int) -> str:
    """``body`` cut to ``limit`` characters at a line end, an open fence closed, ``…`` on its own
    line (the last line kept may be cut itself when it alone is too long)."""
    if len(body) <= limit:
        return body
    reserve = len(FENCE) + 3                   # a closing fence and "…", each on its own line
    kept: list[str] = []
    size, fenced = 0, False
    for line in body.split("\n"):
        room = limit - reserve - size
        if len(line) + 1 > room:
            if line != FENCE and room > 2:
                kept.append(clip(line, room - 1))
            break
        kept.append(line)
        size += len(line) + 1
        fenced ^= line == FENCE
    if fenced and kept[-1] == FENCE:          # the cut fell right after an opening fence: drop it
        kept.pop()
    elif fenced:
        kept.append(FENCE)
    return "\n".join([*kept, "…"])[:limit]


__all__ = ["marker", "rca_markdown"]
