"""all-MiniLM-L6-v2's forward pass on torch alone: a 6-layer BERT encoder, mean pooling, L2 norm.

What sentence-transformers computes for this model (``tests/knowledge/test_quality.py`` checks the
vectors against it to 1e-5), from the same files (``tokenizer.json``, ``model.safetensors``), without
importing transformers and sentence-transformers: those two cost ~200 MiB of resident memory in
the one process that holds the model (measured: 541 → 327 MiB for import + load).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

MAX_TOKENS = 256     # the model's max_seq_length (sentence_bert_config.json)


class MiniLM:
    """The encoder of a BERT checkpoint folder, for mean-pooled sentence embeddings."""

    def __init__(self, path: Path, max_tokens: int = MAX_TOKENS) -> None:
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        cfg = json.loads((path / "config.json").read_text())
        self.heads, self.layers, self.eps = cfg["num_attention_heads"], cfg["num_hidden_layers"], cfg["layer_norm_eps"]
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=cfg.get("pad_token_id", 0))
        self.w = {k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()
                  if k.startswith(("embeddings.", "encoder.")) and k != "embeddings.position_ids"}
        self._torch = torch

    def _norm(self, x: Any, name: str) -> Any:
        return self._torch.nn.functional.layer_norm(x, x.shape[-1:], self.w[f"{name}.weight"], self.w[f"{name}.bias"],
                                                    self.eps)

    def _dense(self, x: Any, name: str) -> Any:
        return self._torch.nn.functional.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        torch, w = self._torch, self.w
        fn = torch.nn.functional
        enc = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in enc])
        mask = torch.tensor([e.attention_mask for e in enc])
        types = torch.tensor([e.type_ids for e in enc])
        b, t = ids.shape
        with torch.inference_mode():
            x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t]
                 + w["embeddings.token_type_embeddings.weight"][types])
            x = self._norm(x, "embeddings.LayerNorm")
            padding = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
            h = self.heads
            d = x.shape[-1] // h
            for i in range(self.layers):
                p = f"encoder.layer.{i}"
                q, k, v = (self._dense(x, f"{p}.attention.self.{n}").view(b, t, h, d).transpose(1, 2)
                           for n in ("query", "key", "value"))
                ctx = fn.scaled_dot_product_attention(q, k, v, attn_mask=padding).transpose(1, 2).reshape(b, t, h * d)
                x = self._norm(x + self._dense(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
                inner = fn.gelu(self._dense(x, f"{p}.intermediate.dense"))
                x = self._norm(x + self._dense(inner, f"{p}.output.dense"), f"{p}.output.LayerNorm")
            m = mask[:, :, None].float()
            pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return fn.normalize(pooled, dim=1).numpy().astype(np.float32)
