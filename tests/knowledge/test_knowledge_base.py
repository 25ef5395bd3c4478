"""KnowledgeBase over both object stores (a local folder, and S3 through moto's server): documents,
rebuilds into versioned trees flipped atomically, readers noticing a new version, garbage
collection, staleness, and isolation between orgs. A hashed bag-of-words embedder keeps it fast;
retrieval quality is tests/knowledge/test_quality.py's."""

from __future__ import annotations

import io
import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
from kb_fakes import RUNBOOK, HashEmbedder
from moto_kit import moto_server

from incidentfox.knowledge import (
    Document,
    DocumentNotFound,
    DocumentTooLarge,
    IndexMismatch,
    InvalidDocument,
    KnowledgeBase,
    Scope,
    mitigation_sections,
    scopes_visible_to,
)
from incidentfox.knowledge.discriminant import MIN_DOCUMENTS
from incidentfox.knowledge.index import FORMAT, PROJECTION_PART, TreeIndex, tokens
from incidentfox.knowledge.raptor import RaptorParams
from incidentfox.knowledge.storage import KnowledgeStore, scope_prefix
from incidentfox.object_store import LocalObjectStore, S3ObjectStore

BUCKET = "kb-test"
ACME, ACME_SRE, GLOBEX = Scope(org="acme"), Scope(org="acme", team="sre"), Scope(org="globex")
TOPICS = ["disk full logs volume", "memory leak oom killer", "certificate expired tls renew",
          "dns resolution failing coredns", "database connection pool exhausted", "queue backlog consumers lag",
          "cpu throttling limits cgroup", "network packet loss interface errors"]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        boto3.client("s3", region_name="us-east-1", endpoint_url=url, aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
        yield url


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    for k, v in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                 ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(k, v)
    return S3ObjectStore(bucket=BUCKET, prefix=f"t-{os.urandom(4).hex()}", endpoint_url=request.getfixturevalue("moto_url"))


def make_kb(store, **kw) -> KnowledgeBase:
    return KnowledgeBase(store, embedder=HashEmbedder(), params=RaptorParams(max_cluster=4, top_size=2), **kw)


def runbook(sc: Scope, i: int, topic: str) -> Document:
    body = (f"# Runbook {i}\n\n## Meaning\n\nThe {topic} problem hurts service {i}.\n\n"
            f"## Mitigation\n\nFix the {topic} issue by following step {i}.\n")
    return Document(scope=sc, source=f"runbooks/{i}.md", text=body)


async def seed(kb: KnowledgeBase, sc: Scope, topics=TOPICS) -> None:
    for i, t in enumerate(topics):
        await kb.put_document(runbook(sc, i, t))


async def test_documents_put_list_get_delete(store) -> None:
    kb = make_kb(store)
    info = await kb.put_document(Document(scope=ACME, source="disk.md", text=RUNBOOK))
    assert info.title == "Disk Filling Up" and info.size == len(RUNBOOK.encode())
    assert [d.source for d in await kb.list_documents(ACME)] == ["disk.md"]
    assert (await kb.get_document(ACME, info.doc_id)).text == RUNBOOK
    assert await kb.list_documents(ACME_SRE) == []            # a team's documents are its own
    await kb.delete_document(ACME, info.doc_id)
    with pytest.raises(DocumentNotFound) as exc:
        await kb.get_document(ACME, info.doc_id)
    assert exc.value.status == 404
    with pytest.raises(DocumentNotFound):
        await kb.delete_document(ACME, info.doc_id)


async def test_bad_documents_are_refused_before_storing(store) -> None:
    kb = make_kb(store)
    with pytest.raises(InvalidDocument):
        await kb.put_document(Document(scope=ACME, source="e.md", text="   "))
    with pytest.raises(DocumentTooLarge) as exc:
        await kb.put_document(Document(scope=ACME, source="big.txt", media_type="text/plain", text="x " * 1_100_000))
    assert exc.value.status == 413
    assert await kb.list_documents(ACME) == []


async def test_rebuild_builds_a_tree_and_search_finds_the_section(store) -> None:
    kb = make_kb(store)
    await seed(kb, ACME)
    assert await kb.index_info(ACME) is None and await kb.search([ACME], "disk") == []
    seen: list = []
    info = await kb.rebuild(ACME, progress=seen.append)
    assert info.documents == len(TOPICS) and info.levels >= 2 and info.nodes > 2 * len(TOPICS)
    assert seen and not info.stale
    hits = await kb.search([ACME], "certificate expired tls", top_k=5)
    assert hits[0].source == "runbooks/2.md" and hits[0].level == 0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert any(h.section == "Mitigation" for h in mitigation_sections(hits))
    tree = await kb.tree(ACME)
    summaries = [n for n in tree.nodes if n.level > 0]
    assert summaries and all(n.children and n.sources for n in summaries)
    assert all(c < len(tree.nodes) and tree.nodes[c].level == n.level - 1 for n in summaries for c in n.children)
    summary_hits = [h for h in await kb.search([ACME], "problem hurts service fix issue step", top_k=50)
                    if h.level > 0]
    assert summary_hits and all(h.section == "" and len(h.sources) >= 1 for h in summary_hits)


async def test_kinds_filter_and_top_k(store) -> None:
    kb = make_kb(store)
    await seed(kb, ACME, TOPICS[:3])
    await kb.put_document(Document(scope=ACME, source="incident/r1", kind="incident", text="disk full on db-1, fixed by rotating logs"))
    await kb.rebuild(ACME)
    hits = await kb.search([ACME], "disk full", top_k=3, kinds={"incident"})
    assert hits and all(h.kind == "incident" for h in hits) and len(hits) <= 3


async def test_a_new_version_is_served_only_once_complete(store) -> None:
    kb = make_kb(store, recheck_s=0)
    await seed(kb, ACME, TOPICS[:4])
    first = await kb.rebuild(ACME)
    reader = make_kb(store, recheck_s=0)
    assert (await reader.index_info(ACME)).version == first.version
    ks = KnowledgeStore(store)
    # A build that crashed half-way: one part written, the pointer never flipped. Never served.
    await store.put(f"{scope_prefix(ACME)}index/v99999999T000000000000-aaaaaa/nodes.json", b"{torn")
    assert (await reader.index_info(ACME)).version == first.version
    assert len(await reader.search([ACME], "memory leak")) > 0
    await kb.put_document(runbook(ACME, 9, "kafka broker under replicated partitions"))
    assert (await reader.index_info(ACME)).stale
    second = await kb.rebuild(ACME)
    assert second.version > first.version
    hits = await reader.search([ACME], "kafka broker partitions")        # the reader notices the flip
    assert (await reader.index_info(ACME)).version == second.version and hits[0].source == "runbooks/9.md"
    third = await kb.rebuild(ACME)
    versions = await ks.versions(ACME)
    assert first.version not in versions                          # collected after two newer ones
    assert {second.version, third.version} <= set(versions)       # current and previous kept
    assert "v99999999T000000000000-aaaaaa" in versions            # a newer, unfinished build is not touched


async def test_reader_cache_rechecks_pointer_only_after_interval(store) -> None:
    kb = make_kb(store)
    await seed(kb, ACME, TOPICS[:3])
    await kb.rebuild(ACME)
    reader = make_kb(store, recheck_s=3600)
    v1 = (await reader.index_info(ACME)).version
    await kb.rebuild(ACME)
    assert (await reader.index_info(ACME)).version == v1          # cached within the interval
    reader.recheck_s = 0
    assert (await reader.index_info(ACME)).version != v1


async def test_a_caller_during_another_callers_refresh_never_gets_the_previous_tree(store, monkeypatch) -> None:
    """A run's two searches and the background warm-up read the same scope at once: while one caller
    loads the version the pointer names, another must wait for it, not take the previous tree (the
    check time was once recorded before the load, so a concurrent caller got the old tree: a run
    right after a rebuild missed the past incident the rebuild had added)."""
    import asyncio

    kb = make_kb(store)
    await seed(kb, ACME, TOPICS[:3])
    await kb.rebuild(ACME)
    reader = make_kb(store, recheck_s=3600)
    old = await reader.tree(ACME)
    await kb.put_document(runbook(ACME, 9, "kafka broker under replicated partitions"))
    new_version = (await kb.rebuild(ACME)).version
    reader._checked[ACME] = float("-inf")             # the interval has passed

    entered, gate = asyncio.Event(), asyncio.Event()
    read_version = KnowledgeStore.read_version

    async def slow_read(self, sc, version):
        entered.set()
        await gate.wait()
        return await read_version(self, sc, version)
    monkeypatch.setattr(KnowledgeStore, "read_version", slow_read)
    first = asyncio.create_task(reader.tree(ACME))
    await entered.wait()                              # the first caller is loading the new version
    second = asyncio.create_task(reader.tree(ACME))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not second.done()                          # it waits for the load instead of taking `old`
    gate.set()
    a, b = await first, await second
    assert a is b and a is not old and a.meta["version"] == new_version


async def test_a_team_never_retrieves_another_orgs_documents(store) -> None:
    kb = make_kb(store)
    await seed(kb, GLOBEX)                                         # the same words, another org
    await kb.put_document(Document(scope=GLOBEX, source="secret.md", text="# Globex secret\n\ndisk full runbook of globex"))
    await kb.rebuild(GLOBEX)
    await kb.put_document(Document(scope=ACME, source="acme-disk.md", text="# Disk\n\ndisk full on acme nodes"))
    await kb.rebuild(ACME)
    await kb.put_document(Document(scope=ACME_SRE, source="sre-disk.md", text="# SRE disk\n\nsre team disk full notes"))
    await kb.rebuild(ACME_SRE)
    visible = scopes_visible_to("acme", "sre")
    assert visible == [ACME_SRE, ACME]
    for query in ("disk full", "globex secret runbook", "memory leak oom killer"):
        hits = await kb.search(visible, query, top_k=50)
        assert hits and all(h.scope.org == "acme" for h in hits)
        assert not {h.source for h in hits} & {"secret.md", *(f"runbooks/{i}.md" for i in range(len(TOPICS)))}
    assert {h.source for h in await kb.search(visible, "disk full", top_k=50)} >= {"acme-disk.md", "sre-disk.md"}
    assert {h.scope for h in await kb.search(scopes_visible_to("acme", None), "disk full", top_k=50)} == {ACME}


async def test_index_built_by_another_embedder_answers_lexically_until_rebuilt(store) -> None:
    kb = make_kb(store, recheck_s=0)
    await seed(kb, ACME, TOPICS[:3])
    await kb.rebuild(ACME)

    class Other(HashEmbedder):
        name = "other"

    other = KnowledgeBase(store, embedder=Other(), params=RaptorParams(max_cluster=4, top_size=2))
    result = await other.search_result([ACME], "certificate expired tls", top_k=3)
    assert result.index.degraded_reason == "embedder_changed" and result.index.lexical_scopes == ["acme"]
    assert result.hits[0].source == "runbooks/2.md" and result.hits[0].score == 1.0     # BM25 alone, normalised
    assert other.embedder.calls == []                       # no query vector against foreign vectors
    assert (await other.search_result([ACME], "certificate", kinds={"incident"})).hits == []
    assert await other.needs_rebuild(ACME) and await other.dirty_scopes() == [ACME]
    assert await other.needs_rebuild(ACME)                  # marked once per tree version, still true
    await other.rebuild(ACME)
    again = await other.search_result([ACME], "certificate expired tls", top_k=3)
    assert again.index.degraded_reason is None and again.hits[0].source == "runbooks/2.md"
    assert not await other.needs_rebuild(ACME) and await other.dirty_scopes() == []
    assert (await kb.search_result([ACME], "disk")).index.degraded_reason == "embedder_changed"   # the old one's turn


async def test_an_embedder_answering_the_wrong_size_is_refused(store) -> None:
    class Short(HashEmbedder):
        name = "short"

        async def embed(self, texts):
            return (await super().embed(texts))[:, :8]

    kb = KnowledgeBase(store, embedder=Short())
    await seed(kb, ACME, TOPICS[:1])
    with pytest.raises(IndexMismatch) as exc:
        await kb.rebuild(ACME)
    assert exc.value.status == 409


async def test_knowledge_base_pickles_without_its_cache(store) -> None:
    kb = make_kb(store)
    await seed(kb, ACME, TOPICS[:2])
    await kb.rebuild(ACME)
    clone = pickle.loads(pickle.dumps(kb))
    assert clone._cache == {} and (await clone.search([ACME], "disk full"))[0].source == "runbooks/0.md"


async def test_empty_scope_rebuilds_to_an_empty_tree(store) -> None:
    kb = make_kb(store)
    info = await kb.rebuild(ACME)
    assert info.documents == 0 and info.nodes == 0 and await kb.search([ACME], "anything") == []
    assert np.asarray((await kb.tree(ACME)).embeddings).shape[0] == 0


async def test_every_document_gets_one_card_outside_the_clusters(store) -> None:
    kb = make_kb(store)
    await seed(kb, ACME, TOPICS[:4])
    await kb.rebuild(ACME)
    tree = await kb.tree(ACME)
    cards = [n for n in tree.nodes if n.card]
    assert sorted(n.source for n in cards) == [f"runbooks/{i}.md" for i in range(4)]
    assert all(n.level == 0 and not n.children and n.section == "Meaning" and n.title.startswith("Runbook")
               for n in cards)
    under_summaries = {c for n in tree.nodes if n.level > 0 for c in n.children}
    assert not under_summaries & {i for i, n in enumerate(tree.nodes) if n.card}
    hits = tree.search("certificate expired tls", (await kb.embedder.embed(["certificate expired tls"]))[0], 50)
    assert any(h.source == "runbooks/2.md" and h.section == "Meaning" for h in hits)
    no_cards = tree.search("certificate expired tls", (await kb.embedder.embed(["x"]))[0], 50, cards=False)
    assert len(no_cards) == len(tree.nodes) - 4


async def test_a_format_1_tree_is_served_marked_stale_and_rebuilt_by_the_sweep_path(store) -> None:
    kb = make_kb(store)
    await seed(kb, ACME, TOPICS[:3])
    await kb.rebuild(ACME)
    store_ = KnowledgeStore(store)
    version = await store_.current_version(ACME)
    parts = await store_.read_version(ACME, version)
    body = json.loads(parts["nodes.json"])
    keep = [i for i, n in enumerate(body["nodes"]) if not n.pop("card")]      # format 1 had no cards
    old = {"nodes.json": json.dumps({**body, "format": 1, "nodes": [body["nodes"][i] for i in keep]}).encode()}
    emb = np.load(io.BytesIO(parts["embeddings.npy"]))[keep]
    buf = io.BytesIO()
    np.save(buf, emb)
    await store_.write_version(ACME, "v0-format1", {**old, "embeddings.npy": buf.getvalue()})
    assert await store_.dirty_scopes() == []

    reader = make_kb(store)
    hits = await reader.search([ACME], "certificate expired tls")
    assert hits[0].source == "runbooks/2.md"                          # still served as it is
    assert (await reader.tree(ACME)).outdated and (await reader.index_info(ACME)).stale
    assert await store_.dirty_scopes() == [ACME]                      # the rebuild sweep's list
    info = await reader.rebuild(ACME)
    assert not info.stale and not (await reader.tree(ACME)).outdated and await store_.dirty_scopes() == []
    assert json.loads((await store_.read_version(ACME, info.version))["nodes.json"])["format"] == FORMAT

    with pytest.raises(ValueError, match="unknown index format 99"):
        TreeIndex.load({"nodes.json": json.dumps({**body, "format": 99}).encode(), "embeddings.npy": b""})


async def test_a_scope_of_enough_documents_gets_a_discriminant_projection_that_readers_load(store) -> None:
    kb = make_kb(store)
    topics = [f"{t} variant{i}" for i in range(4) for t in TOPICS][:MIN_DOCUMENTS]
    await seed(kb, ACME, topics)
    await seed(kb, GLOBEX, topics[:5])
    info = await kb.rebuild(ACME)
    await kb.rebuild(GLOBEX)
    reader = make_kb(store)
    tree = await reader.tree(ACME)
    assert tree.projection is not None and tree.projection.dims == MIN_DOCUMENTS - 1
    assert tree.meta["projection_dims"] == MIN_DOCUMENTS - 1 and not (await reader.index_info(ACME)).stale
    small = await reader.tree(GLOBEX)
    assert small.projection is None and small.meta["projection_dims"] == 0 and not small.outdated
    hits = await reader.search([ACME], "certificate expired tls renew variant2")
    assert hits[0].source == f"runbooks/{topics.index('certificate expired tls renew variant2')}.md"
    # an older version's projection part goes with it
    await kb.put_document(runbook(ACME, 99, "one more"))
    await kb.rebuild(ACME)
    await kb.rebuild(ACME)
    keys = [o.key for o in await store.list("kb/")]
    assert not [k for k in keys if info.version in k]


async def test_a_format_2_tree_without_a_projection_part_is_served_marked_stale_and_rebuilt(store) -> None:
    kb = make_kb(store)
    await seed(kb, ACME, TOPICS[:3])
    await kb.rebuild(ACME)
    store_ = KnowledgeStore(store)
    parts = await store_.read_version(ACME, await store_.current_version(ACME))
    body = json.loads(parts["nodes.json"])
    await store_.write_version(ACME, "v0-format2", {"nodes.json": json.dumps({**body, "format": 2}).encode(),
                                                    "embeddings.npy": parts["embeddings.npy"]})
    assert PROJECTION_PART not in await store_.read_version(ACME, "v0-format2")

    reader = make_kb(store)
    hits = await reader.search([ACME], "certificate expired tls")
    assert hits[0].source == "runbooks/2.md"
    assert (await reader.tree(ACME)).outdated and await store_.dirty_scopes() == [ACME]
    info = await reader.rebuild(ACME)
    rebuilt = await store_.read_version(ACME, info.version)
    assert json.loads(rebuilt["nodes.json"])["format"] == FORMAT and PROJECTION_PART in rebuilt
    assert not (await reader.tree(ACME)).outdated and await store_.dirty_scopes() == []


async def test_lexical_part_weighs_how_much_of_the_query_the_tree_holds(store) -> None:
    kb = make_kb(store)
    await seed(kb, ACME, TOPICS[:3])
    await kb.rebuild(ACME)
    tree = await kb.tree(ACME)
    assert tree.coverage(tokens("disk full logs")) == 1.0
    assert tree.lexical_scores("disk full logs").max() == pytest.approx(1.0)
    partial = tree.coverage(tokens("disk kafka zookeeper rebalancing"))
    assert 0 < partial < 0.5 and tree.lexical_scores("disk kafka zookeeper rebalancing").max() == pytest.approx(partial)
    assert tree.coverage(tokens("kafka zookeeper")) == 0.0 and not tree.lexical_scores("kafka zookeeper").any()


async def test_a_rebuild_embeds_only_what_changed_and_builds_the_same_tree(store) -> None:
    kb = make_kb(store)
    await seed(kb, ACME, TOPICS[:6])
    await kb.rebuild(ACME)
    kb.embedder.calls.clear()
    await kb.put_document(runbook(ACME, 6, TOPICS[6]))
    await kb.rebuild(ACME)
    chunks = len((await kb.tree(ACME)).nodes)
    summaries = sum(n.level > 0 for n in (await kb.tree(ACME)).nodes)
    assert kb.embedder.calls[0] == 3, "of the leaves, only the new runbook's two sections and its card are embedded"
    assert kb.embedded == sum(kb.embedder.calls) <= 3 + summaries
    fresh = make_kb(store)       # the same documents, nothing reused: the same nodes and vectors
    fresh._known_vectors = _nothing_known
    await fresh.rebuild(ACME)
    built, again = await kb.tree(ACME), await fresh.tree(ACME)
    assert fresh.embedded > kb.embedded and len(again.nodes) == chunks
    assert [n.text for n in built.nodes] == [n.text for n in again.nodes]
    assert np.allclose(built.embeddings, again.embeddings)

    class Other(HashEmbedder):
        name = "other"

    other = KnowledgeBase(store, embedder=Other(), params=RaptorParams(max_cluster=4, top_size=2))
    await other.rebuild(ACME)         # another embedder's vectors are never reused
    assert other.embedded == fresh.embedded


async def _nothing_known(scope: Scope) -> dict:
    return {}


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread priorities are a Linux feature")
def test_builds_run_in_one_lower_priority_thread() -> None:
    import threading

    from incidentfox.knowledge.background import BUILD_NICE, build_thread

    def nice() -> tuple[int, str]:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), threading.current_thread().name

    mine, _ = nice()
    theirs, name = build_thread().submit(nice).result()
    assert theirs == min(19, mine + BUILD_NICE) and name.startswith("kb-build")
    assert build_thread() is build_thread()


async def test_a_build_runs_an_in_process_model_on_the_build_thread(store) -> None:
    import threading

    threads: set[str] = set()

    class Local(HashEmbedder):
        def embed_sync(self, texts: list[str]) -> np.ndarray:
            threads.add(threading.current_thread().name)
            return np.vstack([self.vector(t) for t in texts])

    kb = KnowledgeBase(store, embedder=Local(), params=RaptorParams(max_cluster=4, top_size=2))
    await seed(kb, ACME, TOPICS[:6])
    await kb.rebuild(ACME)
    assert threads and all(t.startswith("kb-build") for t in threads)
    assert kb.embedder.calls == []       # the async path (another thread) was not used
