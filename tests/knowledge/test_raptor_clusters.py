"""RAPTOR's clustering (incidentfox/knowledge/raptor.py) on repeated chunks: templated documents (the
same alert's past incidents, one runbook template filled in many times) give many identical vectors,
and a mixture never gets more components than there are distinct points to put them on."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from incidentfox.knowledge.raptor import RaptorParams, cluster, distinct_points


def repeated(distinct: int, copies: int, dim: int = 32, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(distinct, dim))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    return np.repeat(base, copies, axis=0).astype(np.float32)


def near_copies(distinct: int, copies: int, dim: int = 80, seed: int = 5) -> np.ndarray:
    """``copies`` of each of ``distinct`` points that differ only by a small offset along a direction
    of their own (a run id in an otherwise templated text): distinct vectors, which the reduction to
    a few principal directions makes one point again."""
    rng = np.random.default_rng(seed)
    base = np.zeros((distinct, dim))
    base[:, :8] = rng.normal(size=(distinct, 8))
    rows = np.repeat(base, copies, axis=0)
    rows[np.arange(len(rows)), 8 + np.arange(len(rows)) % (dim - 8)] += 0.01
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_distinct_points_counts_rows_not_copies() -> None:
    assert distinct_points(repeated(7, 9)) == 7
    assert distinct_points(np.zeros((0, 4))) == 0


@pytest.mark.parametrize("make", [repeated, near_copies])
@pytest.mark.parametrize(("distinct", "copies"), [(3, 40), (12, 8), (1, 50)])
def test_repeated_chunks_cluster_without_degenerate_mixtures(make, distinct: int, copies: int) -> None:
    x = make(distinct, copies)
    p = RaptorParams()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)   # "distinct clusters found smaller than n_clusters"
        clusters = cluster(x, p)
    assert sorted({i for c in clusters for i in c}) == list(range(len(x)))
    assert all(1 <= len(c) <= p.max_cluster for c in clusters)
