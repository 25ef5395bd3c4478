"""The document-discriminant projection (incidentfox/knowledge/discriminant.py): when it is fitted, what
it keeps, that it separates documents along the directions their own chunks agree on, and its
round trip through a stored tree. Its effect on real questions is in test_quality.py and the bench."""

from __future__ import annotations

import numpy as np
import pytest

from incidentfox.knowledge import Scope
from incidentfox.knowledge.discriminant import (
    MAX_FIT_DIMS,
    MIN_DOCUMENTS,
    Projection,
    fit_projection,
    no_projection,
)
from incidentfox.knowledge.index import FORMAT, PROJECTION_PART, Node, TreeIndex

SCOPE = Scope(org="acme")


def documents(n_docs: int, per_doc: int = 4, dim: int = 48, seed: int = 3):
    """Documents that differ a little along the first half of the dimensions while every chunk
    wanders a lot along the second half (what chunks of one runbook share vs. what varies between
    its sections): plain cosine is dominated by the wandering, the discriminant directions are not."""
    rng = np.random.default_rng(seed)
    half = dim // 2
    centres = np.zeros((n_docs, dim))
    centres[:, :half] = rng.normal(scale=0.3, size=(n_docs, half))
    rows, labels = [], []
    for d in range(n_docs):
        for _ in range(per_doc):
            v = centres[d].copy()
            v[half:] = rng.normal(scale=1.0, size=dim - half)
            v[:half] += rng.normal(scale=0.03, size=half)
            rows.append(v / np.linalg.norm(v))
            labels.append(f"doc{d}")
    return np.asarray(rows, dtype=np.float32), labels


def nearest_document_accuracy(train: np.ndarray, labels: list[str], test: np.ndarray, test_labels: list[str],
                              projection: Projection | None) -> float:
    a = projection.apply(train) if projection else train
    b = projection.apply(test) if projection else test
    best = np.argmax(b @ a.T, axis=1)
    return float(np.mean([labels[i] == t for i, t in zip(best, test_labels, strict=True)]))


def test_fitted_only_with_enough_documents() -> None:
    few, few_labels = documents(MIN_DOCUMENTS - 1)
    assert fit_projection(few, few_labels) is None
    one_each, _ = documents(MIN_DOCUMENTS, per_doc=1)
    assert fit_projection(one_each, [f"d{i}" for i in range(MIN_DOCUMENTS)]) is None   # no spread to learn from
    same_twice = np.repeat(documents(MIN_DOCUMENTS, per_doc=1)[0], 2, axis=0)     # no spread within a document
    assert fit_projection(same_twice, [f"d{i // 2}" for i in range(2 * MIN_DOCUMENTS)]) is None
    enough, labels = documents(MIN_DOCUMENTS)
    p = fit_projection(enough, labels)
    assert p is not None and p.dims == MIN_DOCUMENTS - 1 and p.matrix.shape == (enough.shape[1], p.dims)
    out = p.apply(enough)
    assert out.dtype == np.float32 and np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert p.apply(enough[0]).shape == (p.dims,)


def test_projected_cosine_finds_a_chunks_document_where_plain_cosine_does_not() -> None:
    vecs, labels = documents(40, per_doc=5)
    train = [i for i in range(len(labels)) if i % 5]          # four chunks of each document fitted
    test = [i for i in range(len(labels)) if i % 5 == 0]      # the fifth, unseen, asks for its document
    p = fit_projection(vecs[train], [labels[i] for i in train])
    assert p is not None
    args = (vecs[train], [labels[i] for i in train], vecs[test], [labels[i] for i in test])
    plain, projected = nearest_document_accuracy(*args, None), nearest_document_accuracy(*args, p)
    assert plain < 0.5 and projected > 0.9, (plain, projected)


def test_a_tree_stores_and_loads_its_projection_and_mixes_it_into_the_dense_score() -> None:
    vecs, labels = documents(MIN_DOCUMENTS)
    p = fit_projection(vecs, labels)
    nodes = [Node(level=0, doc_id=d, source=f"{d}.md", title=d, kind="runbook", url=None, section="", text=d)
             for d in labels]
    tree = TreeIndex(SCOPE, nodes, vecs, {"version": "v1"}, projection=p)
    again = TreeIndex.load(tree.dump())
    assert again.format == FORMAT and not again.outdated and again.projection is not None
    assert np.array_equal(again.projection.matrix, p.matrix) and np.array_equal(again.projection.centre, p.centre)
    q = vecs[5]
    plain = vecs @ q
    mixed = again.dense_scores(q)
    assert np.allclose(again.dense_scores(q, 0.0), plain)
    assert np.allclose(mixed, 0.7 * plain + 0.3 * (p.apply(vecs) @ p.apply(q)), atol=1e-5)

    small = TreeIndex(SCOPE, nodes, vecs, {"version": "v1"})         # too few documents: no projection
    parts = small.dump()
    assert Projection.load(parts[PROJECTION_PART]) is None and parts[PROJECTION_PART] == no_projection(vecs.shape[1])
    loaded = TreeIndex.load(parts)
    assert loaded.projection is None and not loaded.outdated and np.allclose(loaded.dense_scores(q), plain)

    with pytest.raises(ValueError, match="projection does not fit"):
        TreeIndex(SCOPE, nodes, vecs[:, :10], {"version": "v1"}, projection=p)


def test_wider_embeddings_are_reduced_first_and_still_separate_documents() -> None:
    vecs, labels = documents(40, per_doc=5)
    basis, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(MAX_FIT_DIMS + 216, vecs.shape[1])))
    wide = (vecs @ basis.T).astype(np.float32)          # the same documents in a 600-dimensional space
    train = [i for i in range(len(labels)) if i % 5]
    test = [i for i in range(len(labels)) if i % 5 == 0]
    p = fit_projection(wide[train], [labels[i] for i in train])
    assert p is not None and p.matrix.shape == (wide.shape[1], 39) and p.centre.shape == (wide.shape[1],)
    args = (wide[train], [labels[i] for i in train], wide[test], [labels[i] for i in test])
    assert nearest_document_accuracy(*args, None) < 0.5 and nearest_document_accuracy(*args, p) > 0.9
