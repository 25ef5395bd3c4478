"""Retrieval quality on a question set: where the expected document ranks among the distinct
documents of the hits (best first). Used by bench/knowledge.py and the quality-floor test.

The question file is tab-separated ``question<TAB>expected source`` lines; ``#`` starts a comment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from incidentfox.knowledge.models import Hit


@dataclass(frozen=True)
class Question:
    text: str
    expected: str


@dataclass(frozen=True)
class Quality:
    questions: int
    top1: float
    top3: float
    mrr: float
    misses: list[tuple[str, str, list[str]]]     # (question, expected, first three documents)


def load_questions(path: Path) -> list[Question]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            q, expected = line.split("\t")
            out.append(Question(q.strip(), expected.strip()))
    return out


def ranked_documents(hits: Sequence[Hit]) -> list[str]:
    """Distinct document sources in hit order (a summary counts for its main document)."""
    return list(dict.fromkeys(h.source for h in hits))


async def evaluate(search: Callable[[str], Awaitable[Sequence[Hit]]], questions: Sequence[Question]) -> Quality:
    top1 = top3 = 0
    rr = 0.0
    misses = []
    for q in questions:
        docs = ranked_documents(await search(q.text))
        rank = docs.index(q.expected) + 1 if q.expected in docs else 0
        top1 += rank == 1
        top3 += 1 <= rank <= 3
        rr += 1 / rank if rank else 0.0
        if rank != 1:
            misses.append((q.text, q.expected, docs[:3]))
    n = max(len(questions), 1)
    return Quality(len(questions), top1 / n, top3 / n, rr / n, misses)
