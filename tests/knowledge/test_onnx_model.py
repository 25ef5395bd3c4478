"""The offline embedder on ONNX Runtime answers the vectors sentence-transformers does (so an index
built by either is searched by the other), is made once into a cache folder, and falls back to torch,
saying why, when it cannot be made or loaded."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest

from incidentfox.knowledge import onnx_model
from incidentfox.knowledge.embedders import MiniLMEmbedder, normalise
from incidentfox.settings import env_name, get_settings

CACHE_ENV, RUNTIME_ENV = env_name("model_cache"), env_name("embedder_runtime")

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "knowledge" / "runbooks-prometheus-operator"
EDGE_TEXTS = ["", " ", "é ü 漢字 🙂 naïve", "a" * 3000, "KubePodCrashLooping CrashLoopBackOff",
              "word " * 400, "pods keep restarting in prod"]


@pytest.fixture(autouse=True)
def fresh_settings():
    """Each test's environment changes are read (the settings are cached per process)."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def use_env(monkeypatch: pytest.MonkeyPatch, name: str, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def weights() -> Path:
    return onnx_model.weights_path()


@pytest.fixture(scope="module")
def reference(weights: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(weights), device="cpu", local_files_only=True)


def sample_texts() -> list[str]:
    texts = list(EDGE_TEXTS)
    if CORPUS.is_dir():     # short, medium and truncated (> 256 tokens) runbook texts
        for path in sorted(CORPUS.rglob("*.md"))[:25]:
            body = path.read_text()
            texts += [body[:60], body[:900], body]
    return texts


def test_onnx_vectors_match_sentence_transformers(weights: Path, reference) -> None:
    texts = sample_texts()
    model = onnx_model.OnnxSentenceModel(onnx_model.ensure(weights), weights)
    got = normalise(model.encode(texts, batch_size=16))
    want = reference.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    assert got.shape == want.shape == (len(texts), 384)
    assert np.abs(got - want).max() < 1e-5
    # order in, order out, whatever the batching by length did
    assert np.abs(normalise(model.encode(texts[::-1], batch_size=3)) - want[::-1]).max() < 1e-5


def test_the_default_embedder_runs_onnx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MiniLMEmbedder, "_models", {})
    use_env(monkeypatch, RUNTIME_ENV, None)
    embedder = MiniLMEmbedder()
    assert embedder.model().runtime == "onnx"
    vectors = embedder.embed_sync(["disk almost full on a node", "etcd has no leader"])
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_export_into_an_empty_cache_is_atomic_and_made_once(weights: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(monkeypatch, CACHE_ENV, str(tmp_path / "models"))
    assert onnx_model.find(weights) is None
    made = onnx_model.ensure(weights)                 # in a child process
    assert made.parent == tmp_path / "models" and made.name == onnx_model.model_file_name(weights)
    assert made.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in made.parent.iterdir()] == [made.name]     # no temporary file left behind

    def no_child(*_a, **_k):
        raise AssertionError("the model was exported again")

    monkeypatch.setattr(subprocess, "run", no_child)
    assert onnx_model.ensure(weights) == made


def test_no_writable_cache_falls_back_to_torch_and_says_why(weights: Path, reference, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    use_env(monkeypatch, CACHE_ENV, str(blocker / "models"))
    with pytest.raises(OSError, match="exporting the offline model failed"):
        onnx_model.ensure(weights, timeout_s=120)
    monkeypatch.setattr(MiniLMEmbedder, "_models", {})
    with caplog.at_level(logging.WARNING, logger="incidentfox.knowledge"):
        embedder = MiniLMEmbedder()
        vectors = embedder.embed_sync(["pods keep restarting in prod"])
    assert getattr(embedder.model(), "runtime", "torch") != "onnx"
    assert "runs on torch" in caplog.text
    want = reference.encode(["pods keep restarting in prod"], normalize_embeddings=True)
    assert np.abs(vectors - want).max() < 1e-5


def test_a_corrupt_model_file_is_not_fatal(weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "models"
    cache.mkdir()
    (cache / onnx_model.model_file_name(weights)).write_bytes(b"half a model")
    use_env(monkeypatch, CACHE_ENV, str(cache))
    monkeypatch.setattr(MiniLMEmbedder, "_models", {})
    with caplog.at_level(logging.WARNING, logger="incidentfox.knowledge"):
        vectors = MiniLMEmbedder().embed_sync(["etcd has no leader"])
    assert vectors.shape == (1, 384)
    assert "runs on torch" in caplog.text


def test_torch_is_used_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(monkeypatch, RUNTIME_ENV, "torch")
    monkeypatch.setattr(MiniLMEmbedder, "_models", {})
    embedder = MiniLMEmbedder()
    assert type(embedder.model()).__name__ == "SentenceTransformer"
