"""Shared pieces for the tests of what uses the knowledge base: a small deterministic embedder (a
hashed bag of words, so tests need no model), knowledge bases over a temporary folder, the demo
runbooks."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from actors.tools.knowledge_bases import KnowledgeBases, TeamKnowledge
from incidentfox.knowledge import Document, Scope
from incidentfox.object_store import LocalObjectStore

RUNBOOKS = Path(__file__).resolve().parents[1] / "cli" / "demo" / "runbooks"
_WORD = re.compile(r"[a-z0-9]+")


class WordsEmbedder:
    """Bag of words hashed into 256 dimensions, L2-normalised."""

    dim = 256
    name = "test-words-256"

    async def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest()[:6], 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


def bases(tmp_path: Path, **kw: Any) -> KnowledgeBases:
    return KnowledgeBases(LocalObjectStore(tmp_path / "objects"), embedder=WordsEmbedder(), **kw)


async def seed_runbooks(kb_bases: KnowledgeBases, team: TeamKnowledge, *, org_level: bool = False,
                        extra: dict[str, str] | None = None) -> Scope:
    """Put the demo runbooks (and ``extra`` name → text) into the team's scope (or its org's) and build it."""
    scope = Scope(org=team.org_id) if org_level else team.own_scope()
    kb = kb_bases.for_team(team)
    docs = {p.name: p.read_text() for p in sorted(RUNBOOKS.glob("*.md"))} | (extra or {})
    for name, text in docs.items():
        await kb.put_document(Document(scope=scope, source=name, text=text, url=f"https://wiki.example/{name}"))
    await kb.rebuild(scope)
    return scope
