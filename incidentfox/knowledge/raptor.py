"""RAPTOR (Sarthi et al., ICLR 2024): build a tree of summaries over a scope's chunks.

One level at a time: reduce the level's embeddings (PCA; docs/knowledge.md measures it against
UMAP), soft-cluster them with a Gaussian mixture whose component count minimises the BIC (a node
joins every cluster it belongs to with probability >= ``threshold``), split any cluster larger than
``max_cluster`` by clustering it again on its own, summarise each cluster, embed the summaries, and
recurse on the summaries until a level has at most ``top_size`` nodes (or stops shrinking).
Retrieval later scores every level at once (the "collapsed tree", :mod:`.index`).

scikit-learn does the mixture and the reduction; only the RAPTOR logic is here.
"""

from __future__ import annotations

import asyncio
import math
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np

from incidentfox.knowledge.background import build_thread
from incidentfox.knowledge.embedders import Embedder
from incidentfox.knowledge.index import Node
from incidentfox.knowledge.models import Progress, ProgressFn
from incidentfox.knowledge.summarise import Summariser


@dataclass(frozen=True)
class RaptorParams:
    reduce_dim: int = 10
    threshold: float = 0.1
    max_cluster: int = 10
    top_size: int = 6
    max_levels: int = 4
    max_k: int = 40
    summary_words: int = 120
    seed: int = 224


def reduce(x: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """At most ``dim`` dimensions (PCA), fewer when there are few points."""
    from sklearn.decomposition import PCA

    n_comp = min(dim, x.shape[0] - 1, x.shape[1])
    if n_comp < 2:
        return x
    return PCA(n_components=n_comp, random_state=seed).fit_transform(x)


# What scikit-learn's k-means says when it ends with an empty cluster. The mixture uses one k-means
# run only to start EM; on near-copies (a templated chunk that differs by a run id) a start may leave a
# component empty, and EM then fits it like any other. The count cap (:func:`distinct_points`) keeps
# that rare; whether it happens at all depends on the BLAS and scikit-learn build's rounding.
_EMPTY_START = r"Number of distinct clusters \(\d+\) found smaller than n_clusters"


def _mixture(z: np.ndarray, k: int, seed: int):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_EMPTY_START, category=ConvergenceWarning)
        return GaussianMixture(n_components=k, covariance_type="full", reg_covar=1e-4,
                               random_state=seed).fit(z)


def candidate_ks(top: int) -> list[int]:
    """1..8, then a geometric grid (x1.4) up to ``top``: the BIC curve is flat where k is large."""
    ks, k = set(range(1, min(top, 8) + 1)), 8.0
    while k * 1.4 <= top:
        k *= 1.4
        ks.add(round(k))
    return sorted(ks | {top})


def distinct_points(x: np.ndarray, *, resolution: float = 1e-4) -> int:
    """How many different rows ``x`` has on a grid of ``resolution`` × its largest coordinate (rows
    in one cell count as one; two rows a hair apart can still straddle a cell edge). Identical texts get identical vectors (a build embeds each text once), and
    templated documents (one alert's past incidents, a runbook template filled in many times) repeat
    chunks, or nearly (only a run id differs, which :func:`reduce` mostly projects away): a mixture of
    more components than this fits some to nothing. :func:`cluster` takes the smaller of the counts
    before and after the reduction."""
    if not x.size:
        return 0
    scale = float(np.abs(x).max()) or 1.0
    return int(np.unique(np.round(x / (scale * resolution)), axis=0).shape[0])


def best_k(z: np.ndarray, max_k: int, seed: int) -> int:
    """The component count in ``1..max_k`` with the lowest BIC (over :func:`candidate_ks`)."""
    candidates = candidate_ks(max(1, min(max_k, z.shape[0] - 1)))
    bics = [(_mixture(z, k, seed).bic(z), k) for k in candidates]
    return min(bics)[1]


def soft_clusters(z: np.ndarray, k: int, threshold: float, seed: int) -> list[list[int]]:
    """Member lists of ``k`` mixture components; a point joins each with probability >= threshold
    (and always its most likely one)."""
    gm = _mixture(z, k, seed)
    prob = gm.predict_proba(z)
    member = (prob >= threshold) | (prob == prob.max(axis=1, keepdims=True))
    return [list(np.flatnonzero(member[:, c])) for c in range(k) if member[:, c].any()]


def cluster(x: np.ndarray, p: RaptorParams, depth: int = 0) -> list[list[int]]:
    """Soft clusters of the rows of ``x`` (row indices), none larger than ``p.max_cluster``."""
    n = x.shape[0]
    if n <= p.max_cluster:
        return [list(range(n))]
    z = reduce(x, p.reduce_dim, p.seed)
    distinct = min(distinct_points(x), distinct_points(z))
    k = best_k(z, min(p.max_k, distinct), p.seed)
    if k == 1:      # one blob bigger than a cluster may be: split it anyway, evenly (as far as it can be)
        k = max(1, min(math.ceil(n / p.max_cluster), distinct))
    out: list[list[int]] = []
    for members in soft_clusters(z, k, p.threshold, p.seed):
        if len(members) > p.max_cluster and len(members) < n and depth < 6:
            out += [[members[i] for i in sub] for sub in cluster(x[members], p, depth + 1)]
        elif len(members) > p.max_cluster:     # no progress: cut in order of the first component
            order = sorted(members, key=lambda i: z[i, 0])
            out += [order[i:i + p.max_cluster] for i in range(0, len(order), p.max_cluster)]
        else:
            out.append(members)
    unique = {tuple(sorted(c)) for c in out if c}
    return [list(c) for c in sorted(unique)]


def cluster_single_threaded(x: np.ndarray, p: RaptorParams) -> list[list[int]]:
    """:func:`cluster` with BLAS held to one thread: the mixtures are small, and on a busy 2-core
    machine BLAS threads fighting over the cores made BIC selection 40x slower (measured). The
    libraries are imported first: threadpoolctl only limits the BLAS/OpenMP libraries already loaded,
    and scipy.linalg's own OpenBLAS, loaded late, was left at two threads (31 s of CPU, not 2)."""
    import scipy.linalg  # noqa: F401
    import sklearn.cluster
    import sklearn.decomposition
    import sklearn.mixture  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return cluster(x, p)


def _summary_node(level: int, members: list[int], nodes: list[Node], text: str) -> Node:
    counts = Counter(nodes[i].doc_id for i in members)
    leaves_of = {nodes[i].doc_id: nodes[i] for i in members}
    top = leaves_of[counts.most_common(1)[0][0]]
    sources = sorted({s for i in members for s in (nodes[i].sources or [nodes[i].source])})
    kinds = Counter(nodes[i].kind for i in members)
    return Node(level=level, doc_id=top.doc_id, source=top.source, title=top.title,
                kind=kinds.most_common(1)[0][0], url=top.url, section="", text=text,
                children=members, sources=sources)


async def build_tree(leaves: list[Node], leaf_vecs: np.ndarray, embedder: Embedder, summariser: Summariser,
                     params: RaptorParams | None = None,
                     progress: ProgressFn | None = None) -> tuple[list[Node], np.ndarray]:
    """Every node (leaves first, then each level's summaries; ``children`` hold indices into the
    returned list) and their embeddings. ``progress`` hears each summarised cluster and each level
    built (:class:`~incidentfox.knowledge.models.Progress`)."""
    p = params or RaptorParams()
    nodes, vecs = list(leaves), [leaf_vecs]
    level_ids = list(range(len(leaves)))
    level_vecs = leaf_vecs
    level = 0
    while len(level_ids) > p.top_size and level < p.max_levels:
        clusters = await asyncio.get_running_loop().run_in_executor(build_thread(), cluster_single_threaded,
                                                                     level_vecs, p)
        if len(clusters) >= len(level_ids):
            break       # no reduction: the level is as small as clustering makes it
        level += 1
        texts: list[str] = []
        for done, members in enumerate(clusters):
            texts.append(await summariser.summarise([nodes[level_ids[i]].text for i in members], p.summary_words))
            if progress:
                progress(Progress("summarise", done + 1, len(clusters), level))
        new_vecs = await embedder.embed(texts)
        first = len(nodes)
        for members, text in zip(clusters, texts, strict=True):
            nodes.append(_summary_node(level, [level_ids[i] for i in members], nodes, text))
        vecs.append(new_vecs)
        level_ids = list(range(first, len(nodes)))
        level_vecs = new_vecs
        if progress:
            progress(Progress("level", level, p.max_levels, level))
    return nodes, np.vstack(vecs).astype(np.float32)
