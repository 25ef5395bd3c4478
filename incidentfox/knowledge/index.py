"""A built tree in memory: its nodes (every level), their embedding matrix, and a BM25 index over
their texts; :meth:`TreeIndex.search` is the collapsed-tree retrieval of RAPTOR (all levels scored
at once, the best nodes win, whatever their level).

Vector search is exact: one matrix-vector product over every node (numpy). A scope's tree holds
hundreds to a few thousand nodes (the 109-runbook corpus makes ~700), where brute force takes tens
of microseconds and needs no index to build, store or keep in sync; an approximate index (hnswlib,
faiss) only pays past ~10^5 nodes.

Lexical scoring is BM25 (``bm25s``) over :func:`tokens`: words split at camelCase / snake_case
joints (an alert-style ``KubeDaemonSetRolloutStuck`` also reads as "kube daemon set rollout stuck",
the joined form kept too) and Snowball-stemmed (PyStemmer), so "failing" meets "failed" and
"replicas" meets "replica". The score of a node is ``cosine + lexical_weight * bm25 / max(bm25)`` for
the query, times the query's *coverage* (the idf-weighted share of its words that occur in the tree at
all), so both parts lie in [0, 1] per tree and scores from different scopes stay comparable. A tree
of enough documents also holds a document-discriminant projection (:mod:`.discriminant`); its
``cosine`` is then ``0.7 * cosine + 0.3 * cosine in the projected space``, which tells near-duplicate
documents apart better (same scale: both are cosines).

Besides its chunks and the RAPTOR summaries, every document has one *card* (``Node.card``): its title
and opening section as a leaf of its own, embedded without the section name, so each document also
has a whole-document "what this is about" representation. docs/knowledge.md gives the measured
effect of each choice (format 1 trees, built before cards, still load and are marked for a rebuild).
"""

from __future__ import annotations

import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from incidentfox.knowledge.discriminant import DISCRIMINANT_WEIGHT, Projection, no_projection
from incidentfox.knowledge.models import DocKind, Hit, Scope

FORMAT = 3                  # 3: + the discriminant projection; 2: cards (Node.card); 1, 2 still load, outdated
READABLE_FORMATS = (1, 2, 3)
PROJECTION_PART = "projection.npz"
DEFAULT_LEXICAL_WEIGHT = 0.2
_TOKEN = re.compile(r"[a-z0-9]+")
_WORD = re.compile(r"[A-Za-z0-9]+")
_JOINT = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_STOP = frozenset(("a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "how",
                   "i", "if", "in", "into", "is", "it", "its", "my", "not", "of", "on", "or", "our", "so", "that",
                   "the", "their", "then", "there", "these", "this", "to", "was", "we", "what", "when", "where",
                   "which", "why", "will", "with", "you", "your"))


def plain_tokens(text: str) -> list[str]:
    """Lower-cased words less stop words (format 1's analyser: kept for the bench's comparison)."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOP]


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokens(text: str) -> list[str]:
    """BM25's analyser: words (``_`` splits too), camelCase parts beside the joined word, lower-cased,
    stop words dropped, Snowball-stemmed."""
    out: list[str] = []
    for word in _WORD.findall(text):
        parts = _JOINT.sub(" ", word).split()
        for p in (parts + [word] if len(parts) > 1 else parts):
            p = p.lower()
            if p not in _STOP:
                out.append(p)
    return _stemmer().stemWords(out) if out else out


Analyser = Callable[[str], list[str]]


@dataclass
class Node:
    level: int                  # 0: a chunk of one document; >0: a summary of a cluster below
    doc_id: str                 # leaf: its document; summary: the document with most leaves under it
    source: str
    title: str
    kind: DocKind
    url: str | None
    section: str                # "" for summaries
    text: str
    children: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)    # summary: every document under it
    card: bool = False          # the document's card: title + opening section (level 0, no children)


class TreeIndex:
    """Nodes plus their (n, dim) L2-normalised float32 embeddings, searchable; with a
    :class:`Projection` when the build fitted one."""

    def __init__(self, scope: Scope, nodes: list[Node], embeddings: np.ndarray, meta: dict[str, Any], *,
                 analyser: Analyser = tokens, fmt: int = FORMAT, weigh_coverage: bool = True,
                 projection: Projection | None = None) -> None:
        if len(nodes) != embeddings.shape[0]:
            raise ValueError("one embedding per node")
        self.scope, self.nodes, self.meta = scope, nodes, meta
        self.analyser, self.format, self.weigh_coverage = analyser, fmt, weigh_coverage
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if projection is not None and projection.matrix.shape[0] != self.embeddings.shape[1]:
            raise ValueError("the projection does not fit the embeddings")
        self.projection = projection
        self._projected = projection.apply(self.embeddings) if projection is not None and nodes else None
        self._kinds = np.array([n.kind for n in nodes]) if nodes else np.array([], dtype=str)
        self._bm25: Any = None
        self._df: Counter[str] = Counter()

    @property
    def outdated(self) -> bool:
        """Built by an older format (no cards): searchable, but a rebuild brings it up to date."""
        return self.format < FORMAT

    @property
    def levels(self) -> int:
        return 1 + max((n.level for n in self.nodes), default=0)

    def bm25(self) -> Any:
        if self._bm25 is None and self.nodes:
            import bm25s

            texts = [self.analyser(f"{n.title} {n.section} {n.text}") or ["_"] for n in self.nodes]
            retriever = bm25s.BM25()
            retriever.index(texts, show_progress=False)
            self._df = Counter(t for words in texts for t in set(words))
            self._bm25 = retriever
        return self._bm25

    def coverage(self, words: list[str]) -> float:
        """The share of the query's words, weighted by BM25's idf, that occur in this tree at all (a
        word no node holds gets the largest idf). 1 when the tree can speak to every word; a query
        matching one common word of many is not lifted to the full lexical weight."""
        self.bm25()
        n, unique = len(self.nodes), set(words)
        idf = {t: math.log(1 + (n - self._df.get(t, 0) + 0.5) / (self._df.get(t, 0) + 0.5)) for t in unique}
        total = sum(idf.values())
        return sum(v for t, v in idf.items() if self._df.get(t)) / total if total else 0.0

    def lexical_scores(self, query: str) -> np.ndarray:
        """BM25 over the nodes divided by its best node's, times :meth:`coverage`: in [0, 1]."""
        q = self.analyser(query)
        if not q or not self.nodes:
            return np.zeros(len(self.nodes), dtype=np.float32)
        scores = np.asarray(self.bm25().get_scores(q), dtype=np.float32)
        top = float(scores.max()) if scores.size else 0.0
        if top <= 0:
            return scores
        return scores * ((self.coverage(q) if self.weigh_coverage else 1.0) / top)

    def dense_scores(self, query_vec: np.ndarray, discriminant_weight: float = DISCRIMINANT_WEIGHT) -> np.ndarray:
        """Cosine with every node, mixed with the cosine in the discriminant space when the tree has one."""
        q = np.asarray(query_vec, dtype=np.float32)
        s = self.embeddings @ q
        if self._projected is not None and self.projection is not None and discriminant_weight:
            s = (1 - discriminant_weight) * s + discriminant_weight * (self._projected @ self.projection.apply(q))
        return s

    def scores(self, query: str, query_vec: np.ndarray, lexical_weight: float,
               discriminant_weight: float = DISCRIMINANT_WEIGHT) -> np.ndarray:
        s = self.dense_scores(query_vec, discriminant_weight)
        if lexical_weight:
            s = s + lexical_weight * self.lexical_scores(query)
        return s

    def search(self, query: str, query_vec: np.ndarray, top_k: int, *, kinds: Collection[DocKind] | None = None,
               lexical_weight: float = DEFAULT_LEXICAL_WEIGHT, levels: Collection[int] | None = None,
               cards: bool = True, discriminant_weight: float = DISCRIMINANT_WEIGHT) -> list[Hit]:
        if not self.nodes or top_k <= 0:
            return []
        s = self.scores(query, query_vec, lexical_weight, discriminant_weight)
        mask = np.ones(len(self.nodes), dtype=bool)
        if kinds is not None:
            mask &= np.isin(self._kinds, list(kinds))
        if levels is not None:
            mask &= np.isin(np.array([n.level for n in self.nodes]), list(levels))
        if not cards:
            mask &= ~np.array([n.card for n in self.nodes])
        s = np.where(mask, s, -np.inf)
        k = min(top_k, int(mask.sum()))
        if k == 0:
            return []
        best = np.argpartition(-s, k - 1)[:k]
        best = best[np.argsort(-s[best], kind="stable")]
        return [self.hit(int(i), float(s[i])) for i in best]

    def hit(self, i: int, score: float) -> Hit:
        n = self.nodes[i]
        return Hit(doc_id=n.doc_id, scope=self.scope, source=n.source, section=n.section, score=round(score, 6),
                   text=n.text, kind=n.kind, title=n.title, url=n.url, level=n.level,
                   sources=n.sources or [n.source])

    # serialisation: nodes.json (meta + nodes), embeddings.npy and projection.npz (format 3; empty
    # arrays when the build fitted none)

    def dump(self) -> dict[str, bytes]:
        body = {"format": FORMAT, "scope": self.scope.model_dump(), "meta": self.meta,
                "nodes": [asdict(n) for n in self.nodes]}
        buf = io.BytesIO()
        np.save(buf, self.embeddings, allow_pickle=False)
        projection = (self.projection.dump() if self.projection is not None
                      else no_projection(int(self.embeddings.shape[1])))
        return {"nodes.json": json.dumps(body, separators=(",", ":")).encode(), "embeddings.npy": buf.getvalue(),
                PROJECTION_PART: projection}

    @classmethod
    def load(cls, parts: dict[str, bytes]) -> TreeIndex:
        body = json.loads(parts["nodes.json"])
        if body.get("format") not in READABLE_FORMATS:
            raise ValueError(f"unknown index format {body.get('format')!r}")
        emb = np.load(io.BytesIO(parts["embeddings.npy"]), allow_pickle=False)
        projection = Projection.load(parts[PROJECTION_PART]) if parts.get(PROJECTION_PART) else None
        return cls(Scope(**body["scope"]), [Node(**n) for n in body["nodes"]], emb, body["meta"],
                   fmt=body["format"], projection=projection)
