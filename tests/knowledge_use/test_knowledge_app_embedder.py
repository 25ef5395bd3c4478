"""Query embeddings through the knowledge app: a searching process asks the app (one call per distinct
query, shared by concurrent searches), embeds in process only when the app is not running, and
refuses vectors of another embedder."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from knowledge_kit import WordsEmbedder

from actors.tools.knowledge_app_embedder import RECHECK_S, KnowledgeAppEmbedder
from incidentfox.knowledge import EmbedderError


class Words(WordsEmbedder):
    """The knowledge kit's embedder, counting its calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    async def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return await super().embed(texts)


async def vector(text: str) -> np.ndarray:
    return (await WordsEmbedder().embed([text]))[0]


class FakeMethod:
    """``handle.embed_query``: ``remote(text)`` answers ``(embedder name, vector)`` like the replica."""

    def __init__(self, name: str = WordsEmbedder.name, fail: bool = False) -> None:
        self.name, self.fail = name, fail
        self.asked: list[str] = []

    def remote(self, text: str):
        self.asked.append(text)

        async def answer():
            await asyncio.sleep(0)
            if self.fail:
                raise RuntimeError("replica died")
            return self.name, await vector(text)
        return answer()


class FakeHandle:
    def __init__(self, method: FakeMethod) -> None:
        self.embed_query = method


def embedder_with(handle, now=None):
    looked: list[str] = []
    local = Words()

    def find(app: str):
        looked.append(app)
        return handle

    emb = KnowledgeAppEmbedder(local, find=find, clock=(lambda: now[0]) if now else (lambda: 0.0))
    return emb, local, looked


async def test_queries_go_to_the_app_once_each_and_the_process_embeds_nothing() -> None:
    method = FakeMethod()
    emb, local, looked = embedder_with(FakeHandle(method))
    assert (emb.name, emb.dim) == (local.name, local.dim)       # an index cannot tell the difference
    a, b = await asyncio.gather(emb.embed(["disk full on db-1"]), emb.embed(["disk full on db-1"]))
    c = await emb.embed(["disk full on db-1", "tls expired"])
    assert method.asked == ["disk full on db-1", "tls expired"]   # the consult's two searches shared one call
    assert np.allclose(a, b) and np.allclose(c[0], a[0]) and c.shape == (2, local.dim)
    assert np.allclose(c[1], await vector("tls expired"))
    assert local.calls == [] and looked == ["knowledge"]


async def test_without_the_app_the_process_embeds_and_looks_again_later() -> None:
    now = [0.0]
    emb, local, looked = embedder_with(None, now)
    out = await emb.embed(["disk full"])
    await emb.embed(["disk full"])
    assert local.calls == [1, 1] and looked == ["knowledge"] and np.allclose(out[0], await vector("disk full"))
    now[0] += RECHECK_S
    await emb.embed(["disk full"])
    assert looked == ["knowledge", "knowledge"]


async def test_another_embedder_or_a_failed_call_is_an_embedder_error() -> None:
    emb, local, _ = embedder_with(FakeHandle(FakeMethod(name="openai:other")))
    with pytest.raises(EmbedderError, match="openai:other"):
        await emb.embed(["disk full"])
    method = FakeMethod(fail=True)
    emb, local, looked = embedder_with(FakeHandle(method))
    with pytest.raises(EmbedderError, match="RuntimeError"):
        await emb.embed(["disk full"])
    method.fail = False
    assert np.allclose((await emb.embed(["disk full"]))[0], await vector("disk full"))
    assert looked == ["knowledge", "knowledge"] and method.asked == ["disk full", "disk full"] and local.calls == []


def test_searching_processes_ask_the_app_and_the_app_embeds_on_one_thread(tmp_path) -> None:
    from actors.engine.knowledge_use import MODEL_BATCH, MODEL_THREADS, process_knowledge_bases
    from incidentfox.knowledge import MiniLMEmbedder
    from incidentfox.object_store import ObjectStoreConfig

    config = ObjectStoreConfig(kind="local", root=tmp_path / "objects")
    searching, app = process_knowledge_bases(config), process_knowledge_bases(config, embed_here=True)
    assert searching is process_knowledge_bases(config) and searching is not app
    assert isinstance(searching.offline_embedder(), KnowledgeAppEmbedder)
    assert isinstance(app.offline_embedder(), MiniLMEmbedder) and app.offline_embedder().threads == MODEL_THREADS == 1
    assert app.offline_embedder().batch_size == MODEL_BATCH == 8
    assert searching.offline_embedder().name == app.offline_embedder().name     # the app's vectors fit its indexes


async def test_it_pickles_without_its_handle_or_lookups() -> None:
    import math
    import pickle

    emb = KnowledgeAppEmbedder(Words())      # the real lookup: this process is not in a Ray cluster
    out = await emb.embed(["disk full"])
    assert emb._handle is None and emb._checked != -math.inf and emb.local.calls == [1]
    clone = pickle.loads(pickle.dumps(emb))
    assert clone._checked == -math.inf and not clone._queries and (clone.name, clone.dim) == (emb.name, emb.dim)
    assert np.allclose((await clone.embed(["disk full"]))[0], out[0])


async def test_the_model_is_preloaded_only_when_this_process_will_embed() -> None:
    class Loading(Words):
        async def preload(self) -> bool:
            self.calls.append(0)
            return True

    now = [0.0]
    local = Loading()
    emb = KnowledgeAppEmbedder(local, find=lambda app: FakeHandle(FakeMethod()), clock=lambda: now[0])
    assert await emb.preload() is False and local.calls == []      # the app embeds: nothing to load here
    alone = KnowledgeAppEmbedder(local, find=lambda app: None, clock=lambda: now[0])
    assert await alone.preload() is True and local.calls == [0]    # no app: the first search must not wait
