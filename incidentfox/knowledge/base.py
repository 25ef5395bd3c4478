"""The knowledge base: documents per scope, a RAPTOR tree per scope, and search over scopes.

:meth:`KnowledgeBase.search` reads only the scopes it is given (callers pass
:func:`scopes_visible_to`'s list for the requester); each scope's tree lives under its own prefix.
Readers cache each scope's loaded tree with its version and re-read the small ``current`` pointer
at most every ``recheck_s`` seconds, so a rebuild elsewhere is noticed without reloading trees.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from incidentfox.knowledge.background import build_thread
from incidentfox.knowledge.discriminant import fit_projection
from incidentfox.knowledge.embedders import Embedder, MiniLMEmbedder, ReusingEmbedder
from incidentfox.knowledge.index import DEFAULT_LEXICAL_WEIGHT, Node, TreeIndex
from incidentfox.knowledge.models import (
    MAX_DOCUMENT_BYTES,
    DocKind,
    Document,
    DocumentInfo,
    DocumentTooLarge,
    Hit,
    IndexInfo,
    IndexMismatch,
    InvalidDocument,
    Progress,
    ProgressFn,
    Scope,
    SearchIndexState,
    SearchResult,
)
from incidentfox.knowledge.parsing import ParsedDocument, parse_document
from incidentfox.knowledge.raptor import RaptorParams, build_tree
from incidentfox.knowledge.storage import KnowledgeStore, new_version
from incidentfox.knowledge.summarise import ExtractiveSummariser, Summariser
from incidentfox.object_store import ObjectStore, object_store_from_settings

log = logging.getLogger(__name__)

MAX_TOP_K = 50
_MITIGATION = re.compile(r"mitigat|remediat|resolution|resolv|fix|workaround|recover", re.IGNORECASE)


def scopes_visible_to(org: str, team: str | None) -> list[Scope]:
    """What a requester may read: a team its own and its org's documents; an org its own."""
    return [Scope(org=org, team=team), Scope(org=org)] if team else [Scope(org=org)]


def _context(n: Node) -> str:
    """What a leaf is embedded as: its document's title and section give a chunk its context; a
    card (title + opening section) is embedded with its title only."""
    return f"{n.title}. {n.section}. {n.text}" if n.section and not n.card else f"{n.title}. {n.text}"


def _parse_all(docs: Sequence[Document]) -> list[tuple[Document, ParsedDocument]]:
    """Every document that parses, with its chunks. One stored before a parsing limit existed (an
    upload refuses it now) is left out of the index, so it cannot keep its scope from being built."""
    parsed = []
    for d in docs:
        try:
            parsed.append((d, parse_document(d)))
        except InvalidDocument as exc:
            log.warning("knowledge document %s of %s left out of the index: %s",
                        d.doc_id, d.scope.key(), exc.details)
    return parsed


def mitigation_sections(hits: Sequence[Hit]) -> list[Hit]:
    """The leaf hits whose section names a mitigation, remediation, resolution or fix."""
    return [h for h in hits if h.level == 0 and _MITIGATION.search(h.section or "")]


class KnowledgeBase:
    def __init__(self, store: ObjectStore, embedder: Embedder | None = None, summariser: Summariser | None = None,
                 *, params: RaptorParams | None = None, lexical_weight: float = DEFAULT_LEXICAL_WEIGHT,
                 recheck_s: float = 1.0) -> None:
        self.store = store
        self.embedder = embedder or MiniLMEmbedder()
        self.summariser = summariser or ExtractiveSummariser()
        self.params = params or RaptorParams()
        self.lexical_weight = lexical_weight
        self.recheck_s = recheck_s
        self._cache: dict[Scope, tuple[str, TreeIndex]] = {}
        self._checked: dict[Scope, float] = {}
        self._locks: dict[Scope, asyncio.Lock] = {}
        self._reading: dict[Scope, asyncio.Lock] = {}   # one refresh of a scope's tree at a time
        self._flagged: dict[Scope, str] = {}    # scope → the tree version already marked for a rebuild
        self.embedded = 0     # texts the last rebuild sent to the embedder (the rest were reused)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": {}, "_checked": {}, "_locks": {}, "_reading": {},
                "_flagged": {}}

    @property
    def kb(self) -> KnowledgeStore:
        return KnowledgeStore(self.store)

    # documents

    async def put_document(self, doc: Document) -> DocumentInfo:
        """Store (or replace) a document; the scope's index is stale until :meth:`rebuild`."""
        if len(doc.text.encode()) > MAX_DOCUMENT_BYTES:
            raise DocumentTooLarge(f"document {doc.source!r} is larger than {MAX_DOCUMENT_BYTES} bytes",
                                   details={"source": doc.source, "limit": MAX_DOCUMENT_BYTES})
        # refuses a document with no text, or past a parsing limit, before it is stored; off the event
        # loop, since a 2 MB document takes a few hundred milliseconds
        parsed = await asyncio.to_thread(parse_document, doc)
        if not doc.title:
            doc = doc.model_copy(update={"title": parsed.title or doc.source.rsplit("/", 1)[-1]})
        await self.kb.put_document(doc)
        return DocumentInfo.of(doc)

    async def delete_document(self, scope: Scope, doc_id: str) -> None:
        await self.kb.delete_document(scope, doc_id)

    async def list_documents(self, scope: Scope) -> list[DocumentInfo]:
        return sorted((DocumentInfo.of(d) for d in await self.kb.documents(scope)), key=lambda d: d.source)

    async def get_document(self, scope: Scope, doc_id: str) -> Document:
        return await self.kb.get_document(scope, doc_id)

    async def dirty_scopes(self) -> list[Scope]:
        """The scopes whose documents changed since their index was built (cheap: one listing)."""
        return await self.kb.dirty_scopes()

    # building

    def _lock(self, scope: Scope) -> asyncio.Lock:
        return self._locks.setdefault(scope, asyncio.Lock())

    async def rebuild(self, scope: Scope, progress: ProgressFn | None = None) -> IndexInfo:
        """Chunk, embed and cluster every document of ``scope`` into a new tree version, then make
        it current. Readers keep the previous version until the flip. ``progress`` hears the chunks
        embedded, the clusters summarised and the levels built (:class:`Progress`)."""
        import numpy as np

        async with self._lock(scope):
            token = await self.kb.changed_token(scope)
            docs = await self.kb.documents(scope)
            leaves: list[Node] = []
            cards: list[Node] = []
            for d, parsed in await asyncio.get_running_loop().run_in_executor(build_thread(), _parse_all, docs):
                title = d.title or parsed.title
                leaves += [Node(level=0, doc_id=d.doc_id, source=d.source, title=title,
                                kind=d.kind, url=d.url, section=c.section, text=c.text) for c in parsed.chunks]
                first = parsed.chunks[0]
                cards.append(Node(level=0, doc_id=d.doc_id, source=d.source, title=title, kind=d.kind, url=d.url,
                                  section=first.section, text=first.text, card=True))
            # Only texts the current version did not embed are embedded (a sweep after 100 new past
            # incidents embeds their chunks, not the scope's); summaries are recomputed, and a summary
            # whose text is unchanged keeps its vector.
            embedder = ReusingEmbedder(self.embedder, await self._known_vectors(scope), executor=build_thread())
            vecs = await self._embed_with_progress([_context(n) for n in leaves + cards], progress, embedder)
            self._check_dim(vecs.shape[1] if len(leaves) else self.embedder.dim)
            nodes, matrix = await build_tree(leaves, vecs[:len(leaves)], embedder, self.summariser, self.params,
                                             progress) if leaves else ([], vecs)
            if leaves:      # cards join the collapsed tree as leaves of their own, outside the clustering
                nodes, matrix = nodes + cards, np.vstack([matrix, vecs[len(leaves):]]).astype(np.float32)
            # the document-discriminant projection, fitted on the leaves and cards (None: too few documents)
            projection = await asyncio.get_running_loop().run_in_executor(
                build_thread(), fit_projection, vecs, [n.doc_id for n in leaves + cards]) if leaves else None
            self.embedded = embedder.embedded
            version = new_version()
            meta = {"version": version, "embedder": self.embedder.name, "dim": int(matrix.shape[1]),
                    "changed": token, "documents": len(docs), "built_at": datetime.now(UTC).isoformat(),
                    "summariser": getattr(self.summariser, "name", type(self.summariser).__name__),
                    "projection_dims": projection.dims if projection is not None else 0}
            tree = TreeIndex(scope, nodes, matrix, meta, projection=projection)
            await self.kb.write_version(scope, version, tree.dump())
            await self.kb.clear_dirty(scope, token)
            self._cache[scope] = (version, tree)
            self._checked[scope] = time.monotonic()
            return self._info(tree, stale=False)

    async def _known_vectors(self, scope: Scope) -> dict[str, Any]:
        """Text → vector of every node of the scope's current version, if built by this embedder."""
        try:
            tree = await self.tree(scope)
        except Exception:  # noqa: BLE001 - an unreadable previous version: embed everything again
            return {}
        if tree is None or tree.meta.get("embedder") != self.embedder.name \
                or (self.embedder.dim and tree.embeddings.shape[1] != self.embedder.dim):
            return {}
        return {(_context(n) if n.level == 0 else n.text): tree.embeddings[i] for i, n in enumerate(tree.nodes)}

    async def _embed_with_progress(self, texts: list[str], progress: ProgressFn | None, embedder: Embedder):
        import numpy as np

        batch = 64
        parts = []
        for i in range(0, len(texts), batch):
            parts.append(await embedder.embed(texts[i:i + batch]))
            if progress:
                progress(Progress("embed", min(i + batch, len(texts)), len(texts)))
        return np.vstack(parts) if parts else np.zeros((0, max(self.embedder.dim, 1)), dtype=np.float32)

    def _check_dim(self, dim: int) -> None:
        if self.embedder.dim and dim != self.embedder.dim:
            raise IndexMismatch(f"embedder {self.embedder.name} answered {dim} dimensions, expected "
                                f"{self.embedder.dim}")

    # reading

    async def tree(self, scope: Scope) -> TreeIndex | None:
        """The scope's current tree (cached; the pointer is re-read at most every ``recheck_s``).

        One caller at a time refreshes a scope, and the check's time is recorded only once the cache
        holds the tree the pointer named: a concurrent caller (a run's two searches, the background
        warm-up) either waits for that refresh or sees its result, never the previous tree under a
        fresh check time."""
        cached = self._cache.get(scope)
        if cached and time.monotonic() - self._checked.get(scope, float("-inf")) < self.recheck_s:
            return cached[1]
        async with self._reading.setdefault(scope, asyncio.Lock()):
            cached = self._cache.get(scope)
            now = time.monotonic()
            if cached and now - self._checked.get(scope, float("-inf")) < self.recheck_s:
                return cached[1]       # refreshed while this caller waited
            version = await self.kb.current_version(scope)
            if version is None:
                self._cache.pop(scope, None)
                self._checked[scope] = now
                return None
            if not (cached and cached[0] == version):
                tree = TreeIndex.load(await self.kb.read_version(scope, version))
                if tree.outdated:       # searchable as it is; the rebuild sweep brings it to this format
                    await self.kb.mark_dirty(scope)
                self._cache[scope] = (version, tree)
            self._checked[scope] = now
            return self._cache[scope][1]

    def _info(self, tree: TreeIndex, stale: bool) -> IndexInfo:
        return IndexInfo(scope=tree.scope, version=tree.meta["version"], documents=tree.meta["documents"],
                         nodes=len(tree.nodes), levels=tree.levels if tree.nodes else 0,
                         built_at=datetime.fromisoformat(tree.meta["built_at"]),
                         embedder=tree.meta.get("embedder", ""), stale=stale)

    async def index_info(self, scope: Scope) -> IndexInfo | None:
        tree = await self.tree(scope)
        if tree is None:
            return None
        return self._info(tree, stale=tree.outdated
                          or await self.kb.changed_token(scope) != tree.meta.get("changed", ""))

    async def search(self, scopes: Sequence[Scope], query: str, top_k: int = 5,
                     kinds: Collection[DocKind] | None = None) -> list[Hit]:
        """The hits of :meth:`search_result`."""
        return (await self.search_result(scopes, query, top_k, kinds)).hits

    async def search_result(self, scopes: Sequence[Scope], query: str, top_k: int = 5,
                            kinds: Collection[DocKind] | None = None) -> SearchResult:
        """The ``top_k`` best nodes of every level of the given scopes' trees, best first, and how
        they were scored. Scopes without a built tree contribute nothing. When a tree was built with
        another embedder than this one (a team changed ``knowledge.embeddings``), its vectors do not
        compare with the query's, so every tree is scored lexically (BM25 only, one scale for all)
        and the result says so (``index.degraded_reason``) until it is rebuilt."""
        top_k = max(0, min(int(top_k), MAX_TOP_K))
        trees = [t for t in [await self.tree(s) for s in dict.fromkeys(scopes)] if t is not None and t.nodes]
        if not trees or not query.strip() or top_k == 0:
            return SearchResult(hits=[])
        other = [t for t in trees if t.meta.get("embedder") != self.embedder.name]
        if other:
            hits = [h for t in trees for h in lexical_hits(t, query, top_k, kinds)]
            state = SearchIndexState(degraded_reason="embedder_changed", lexical_scopes=[str(t.scope) for t in other])
        else:
            qvec = (await self.embedder.embed([query]))[0]
            hits = [h for t in trees for h in t.search(query, qvec, top_k, kinds=kinds,
                                                       lexical_weight=self.lexical_weight)]
            state = SearchIndexState()
        return SearchResult(hits=sorted(hits, key=lambda h: -h.score)[:top_k], index=state)

    async def needs_rebuild(self, scope: Scope) -> bool:
        """Whether ``scope``'s tree was built with another embedder than this one; if so, mark it
        dirty (once per tree version and process) so the rebuilder picks it up."""
        tree = await self.tree(scope)
        if tree is None or tree.meta.get("embedder") == self.embedder.name:
            return False
        if self._flagged.get(scope) != tree.meta.get("version"):
            await self.kb.mark_dirty(scope)
            self._flagged[scope] = tree.meta.get("version")
        return True


def lexical_hits(tree: TreeIndex, query: str, top_k: int, kinds: Collection[DocKind] | None = None) -> list[Hit]:
    """``tree``'s ``top_k`` best nodes by BM25 alone (scores in [0, 1]), for a tree whose vectors do
    not compare with the query's; nodes sharing no word with the query are left out."""
    import numpy as np

    scores = tree.lexical_scores(query)
    order = np.argsort(-scores, kind="stable")
    best = [int(i) for i in order if scores[i] > 0 and (kinds is None or tree.nodes[i].kind in kinds)][:top_k]
    return [tree.hit(i, float(scores[i])) for i in best]


def knowledge_base_from_settings(settings: Any, *, embedder: Embedder | None = None,
                                 summariser: Summariser | None = None) -> KnowledgeBase:
    """The platform's knowledge base: its object store from settings, the offline embedder and the
    extractive summariser unless given."""
    return KnowledgeBase(object_store_from_settings(settings), embedder=embedder, summariser=summariser)
