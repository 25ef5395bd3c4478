"""Cluster summaries for the RAPTOR tree.

:class:`Summariser` is the protocol (kb-use plugs the team's LLM behind it). The offline default,
:class:`ExtractiveSummariser`, picks the sentences most central to the cluster: each sentence is a
TF-IDF vector (scikit-learn), its score the cosine to the cluster's mean vector; the best are kept,
in their original order, up to ``max_words``. A sentence from every text is tried first, so a
summary over several documents speaks for each of them rather than only the longest.
"""

from __future__ import annotations

import asyncio
import re
from typing import Protocol, runtime_checkable

import numpy as np

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"'(\[])|\n{2,}")


@runtime_checkable
class Summariser(Protocol):
    async def summarise(self, texts: list[str], max_words: int) -> str: ...


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if len(s.split()) >= 3]


def extractive_summary(texts: list[str], max_words: int) -> str:
    sentences: list[tuple[int, int, str]] = []     # (text index, position, sentence)
    for t_i, text in enumerate(texts):
        for s_i, s in enumerate(split_sentences(text) or [text.strip()]):
            if s:
                sentences.append((t_i, s_i, s))
    if not sentences:
        return ""
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        matrix = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform([s for *_, s in sentences])
    except ValueError:      # only stop words: nothing to rank by
        return " ".join(" ".join(s for *_, s in sentences).split()[:max_words])
    centre = np.asarray(matrix.mean(axis=0)).ravel()
    norm = np.linalg.norm(centre) or 1.0
    scores = np.asarray(matrix @ centre).ravel() / norm
    order = sorted(range(len(sentences)), key=lambda i: -scores[i])
    # Round robin over the texts: each text's best sentence first, then the next best of each.
    by_text: dict[int, list[int]] = {}
    for i in order:
        by_text.setdefault(sentences[i][0], []).append(i)
    queue = [i for rank in range(max(len(v) for v in by_text.values()))
             for v in by_text.values() if rank < len(v) for i in [v[rank]]]
    chosen, words = [], 0
    for i in queue:
        n = len(sentences[i][2].split())
        if words + n > max_words and chosen:
            continue
        chosen.append(i)
        words += n
        if words >= max_words:
            break
    chosen.sort(key=lambda i: (sentences[i][0], sentences[i][1]))
    return " ".join(" ".join(sentences[i][2].split()) for i in chosen)


class ExtractiveSummariser:
    """The offline summariser: no model, no network; deterministic."""

    name = "extractive"

    async def summarise(self, texts: list[str], max_words: int) -> str:
        return await asyncio.to_thread(extractive_summary, texts, max_words)
