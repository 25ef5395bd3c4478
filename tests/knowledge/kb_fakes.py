"""A fast deterministic embedder for the knowledge tests that do not measure retrieval quality:
hashed bags of words (64 dimensions), L2-normalised. Words shared by query and text raise cosine."""

from __future__ import annotations

import hashlib
import re

import numpy as np


class HashEmbedder:
    dim = 64
    name = "test-hash-64"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for w in re.findall(r"[a-z0-9]+", text.lower()):
            v[int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    async def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return np.vstack([self.vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


RUNBOOK = """---
title: Disk Filling Up
---

# DiskFillingUp

## Meaning

The disk of a node is filling up with log files and will be full soon.

## Mitigation

Delete old log files, rotate logs with logrotate, or grow the volume.

```shell
# this comment is not a heading
du -sh /var/log
```
"""
