"""A scope's document-discriminant projection: the directions of the embedding space along which its
documents differ most from one another relative to how much each document's own chunks differ among
themselves (Fisher's linear discriminant analysis, scikit-learn's shrinkage LDA, fitted on the tree's
leaves and cards labelled by their document).

Near-duplicate runbooks ("one replica fails" and "every replica fails", "quota almost full" and
"quota exceeded") sit close together in the embedder's space, and a plain-words question lands
between them. Along the discriminant directions, what the twins share counts for little and what
tells them apart counts for more, so a question's cosine in the projected space separates them
better. Search mixes it into the dense part (:data:`DISCRIMINANT_WEIGHT`, :mod:`.index`); the numbers
behind the weight and the :data:`MIN_DOCUMENTS` floor are in docs/knowledge.md.

Fitted once per build from the scope's own vectors (no labels but "which document a chunk is
from", nothing learnt from questions), in well under a second for a hundred runbooks.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np

# Below this many documents the projection has too few directions to help (measured on subsets of
# the runbook corpus: 5 to 20 documents lost a question or a few, 30 and more gained).
MIN_DOCUMENTS = 30
DISCRIMINANT_WEIGHT = 0.3       # share of the dense score taken by the projected cosine
# Wider embeddings (a team's remote embedder: 1,536 or 3,072 dimensions) are first reduced to their
# principal axes, those the vectors span and at most this many: the generalised eigenproblem grows
# with the cube of the width, and a direction the vectors do not span only carries rounding noise,
# which the discriminant would blow up. Vectors this wide or narrower are fitted in their own
# coordinates, as measured: scikit-learn's shrinkage standardises each coordinate first, so a
# rotation is not neutral (fitting the offline model's vectors on their principal axes instead lost
# 4 of the development questions and 13 of the independent ones).
MAX_FIT_DIMS = 384
SPANNED = 1e-4      # an axis counts as spanned when its singular value is over this share of the largest


@dataclass(frozen=True)
class Projection:
    centre: np.ndarray          # (dim,): the mean of the fitted vectors
    matrix: np.ndarray          # (dim, k): discriminant directions, best first

    @property
    def dims(self) -> int:
        return int(self.matrix.shape[1])

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Rows (or one vector) projected and L2-normalised, float32."""
        y = (np.asarray(x, dtype=np.float32) - self.centre) @ self.matrix
        norm = np.linalg.norm(y, axis=-1, keepdims=True)
        return (y / np.maximum(norm, 1e-9)).astype(np.float32)

    def dump(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, centre=self.centre, matrix=self.matrix)
        return buf.getvalue()

    @classmethod
    def load(cls, data: bytes) -> Projection | None:
        """The stored projection, or None for a tree stored without one (too few documents)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            centre, matrix = z["centre"], z["matrix"]
        if matrix.ndim != 2 or matrix.shape[1] == 0 or centre.shape != (matrix.shape[0],):
            return None
        return cls(centre.astype(np.float32), matrix.astype(np.float32))


def no_projection(dim: int) -> bytes:
    """What a tree without a projection stores in its place (so every current tree has the part)."""
    return Projection(np.zeros(dim, dtype=np.float32), np.zeros((dim, 0), dtype=np.float32)).dump()


def fit_projection(vectors: np.ndarray, labels: list[str], min_documents: int = MIN_DOCUMENTS) -> Projection | None:
    """The discriminant projection of ``vectors`` (one row per leaf or card) by ``labels`` (their
    documents), or None when fewer than ``min_documents`` documents are there, or when their chunks do
    not vary within a document at all (templated documents of one or two identical chunks: no
    within-document spread to weigh against, and the build goes on without a projection).
    CPU-bound: call it off the event loop (the build thread)."""
    classes = len(set(labels))
    if classes < max(min_documents, 2) or vectors.shape[0] <= classes:
        return None
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from threadpoolctl import threadpool_limits

    x = np.asarray(vectors, dtype=np.float64)
    centre = x.mean(axis=0)
    try:
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore")     # a document of one chunk has no spread of its own
            axes = _principal_axes(x - centre, MAX_FIT_DIMS) if x.shape[1] > MAX_FIT_DIMS else None
            if axes is not None and axes.shape[1] < 2:
                return None
            z = (x - centre) @ axes if axes is not None else x
            lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(z, labels)
    except (np.linalg.LinAlgError, ValueError):
        return None
    scalings = lda.scalings_[:, :min(classes - 1, z.shape[1])]
    matrix = axes @ scalings if axes is not None else scalings
    if not np.all(np.isfinite(matrix)):
        return None
    return Projection(centre.astype(np.float32), np.ascontiguousarray(matrix, dtype=np.float32))


def _principal_axes(centred: np.ndarray, most: int) -> np.ndarray:
    """The principal axes (columns, largest first) the centred rows span, at most ``most``."""
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    spanned = int(np.sum(sv > SPANNED * sv[0])) if sv.size and sv[0] > 0 else 0
    return np.ascontiguousarray(vt[:min(spanned, most)].T)
