"""Where a scope's documents and trees live in the object store (``incidentfox/object_store.py``).

Layout, under ``kb/<scope key>/`` (``o=<org>/_org`` or ``o=<org>/t=<team>``)::

    docs/<doc_id>.json              a Document
    changed                         a token rewritten by every document change
    index/<version>/nodes.json      the tree: meta (embedder, the ``changed`` token it saw) + nodes
    index/<version>/embeddings.npy  float32 (nodes, dim)
    index/<version>/projection.npz  the document-discriminant projection (format 3; absent before)
    index/current                   {"version": ...}: the version readers serve

and ``kb/_dirty/<scope key>``: the scope's ``changed`` token, written with it by every document change
and removed by a build that saw that token, so the one rebuilder (the knowledge app's sweep) finds the
scopes to rebuild with one small listing instead of reading every scope's index.

A build writes every part of a new version first and only then replaces ``current`` (one atomic
put), so a reader never opens a half-written tree. Versions sort by time (``v<UTC>-<random>``);
after a flip every version older than the previous one is deleted (the previous one stays for a
reader that read the old pointer a moment ago, and a newer, still-building one is never touched).
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime

from pydantic import ValidationError

from incidentfox.knowledge.index import PROJECTION_PART
from incidentfox.knowledge.models import Document, DocumentNotFound, Scope
from incidentfox.object_store import ObjectNotFound, ObjectStore

ROOT = "kb"
PARTS = ("nodes.json", "embeddings.npy")
OPTIONAL_PARTS = (PROJECTION_PART,)     # written by format 3 builds; a format 1 or 2 tree has none
DIRTY = f"{ROOT}/_dirty/"


def scope_prefix(sc: Scope) -> str:
    return f"{ROOT}/{sc.key()}/"


def new_version(now: datetime | None = None) -> str:
    t = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%f")
    return f"v{t}-{secrets.token_hex(3)}"


class KnowledgeStore:
    """Typed reads and writes of one object store's knowledge objects."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    # documents

    def _doc_key(self, sc: Scope, doc_id: str) -> str:
        return f"{scope_prefix(sc)}docs/{doc_id}.json"

    async def put_document(self, doc: Document) -> None:
        await self.store.put(self._doc_key(doc.scope, doc.doc_id), doc.model_dump_json().encode())
        await self.touch(doc.scope)

    async def get_document(self, sc: Scope, doc_id: str) -> Document:
        try:
            raw = await self.store.get(self._doc_key(sc, doc_id))
        except ObjectNotFound:
            raise DocumentNotFound(f"no document {doc_id!r} in {sc}", details={"doc_id": doc_id}) from None
        return Document.model_validate_json(raw)

    async def delete_document(self, sc: Scope, doc_id: str) -> None:
        key = self._doc_key(sc, doc_id)
        if not await self.store.exists(key):
            raise DocumentNotFound(f"no document {doc_id!r} in {sc}", details={"doc_id": doc_id})
        await self.store.delete(key)
        await self.touch(sc)

    async def document_ids(self, sc: Scope) -> list[str]:
        prefix = f"{scope_prefix(sc)}docs/"
        return [o.key[len(prefix):-len(".json")] for o in await self.store.list(prefix)
                if o.key.endswith(".json") and "/" not in o.key[len(prefix):]]

    async def documents(self, sc: Scope) -> list[Document]:
        return [await self.get_document(sc, d) for d in await self.document_ids(sc)]

    # change token (staleness)

    async def touch(self, sc: Scope) -> None:
        """A new ``changed`` token, then the dirty marker (in that order: see :meth:`clear_dirty`)."""
        token = secrets.token_hex(8).encode()
        await self.store.put(f"{scope_prefix(sc)}changed", token)
        await self.store.put(DIRTY + sc.key(), token)

    async def mark_dirty(self, sc: Scope) -> None:
        """Ask the rebuilder for a rebuild without a document change (an index of an older format,
        or another embedder configured now): the marker holds the current token, so a build clears it."""
        await self.store.put(DIRTY + sc.key(), (await self.changed_token(sc)).encode())

    async def dirty_scopes(self) -> list[Scope]:
        """The scopes whose documents changed since a build last saw them (one listing)."""
        out: list[Scope] = []
        for o in await self.store.list(DIRTY):
            org, _, rest = o.key[len(DIRTY):].partition("/")
            if not org.startswith("o=") or not (rest == "_org" or rest.startswith("t=")):
                continue
            try:
                out.append(Scope(org=org[2:], team=None if rest == "_org" else rest[2:]))
            except ValidationError:
                continue    # not a marker this code wrote
        return sorted(out, key=lambda sc: sc.key())

    async def clear_dirty(self, sc: Scope, built: str) -> None:
        """Drop the marker after a build that saw token ``built``. The marker is put back if the
        documents changed meanwhile: :meth:`touch` writes the token before the marker, so a change
        is either seen here or writes its marker after this delete."""
        await self.store.delete(DIRTY + sc.key())
        now = await self.changed_token(sc)
        if now != built:
            await self.store.put(DIRTY + sc.key(), now.encode())

    async def changed_token(self, sc: Scope) -> str:
        try:
            return (await self.store.get(f"{scope_prefix(sc)}changed")).decode()
        except ObjectNotFound:
            return ""

    # index versions

    def _index(self, sc: Scope) -> str:
        return f"{scope_prefix(sc)}index/"

    async def current_version(self, sc: Scope) -> str | None:
        try:
            return json.loads(await self.store.get(self._index(sc) + "current"))["version"]
        except ObjectNotFound:
            return None

    async def read_version(self, sc: Scope, version: str) -> dict[str, bytes]:
        parts = {p: await self.store.get(f"{self._index(sc)}{version}/{p}") for p in PARTS}
        for p in OPTIONAL_PARTS:
            try:
                parts[p] = await self.store.get(f"{self._index(sc)}{version}/{p}")
            except ObjectNotFound:
                pass
        return parts

    async def write_version(self, sc: Scope, version: str, parts: dict[str, bytes]) -> None:
        """Write every part, then flip ``current``, then collect old versions."""
        for name in PARTS + tuple(p for p in OPTIONAL_PARTS if p in parts):
            await self.store.put(f"{self._index(sc)}{version}/{name}", parts[name])
        previous = await self.current_version(sc)
        await self.store.put(self._index(sc) + "current", json.dumps({"version": version}).encode())
        await self.collect(sc, keep={version, previous} - {None})

    async def versions(self, sc: Scope) -> list[str]:
        prefix = self._index(sc)
        return sorted({o.key[len(prefix):].split("/")[0] for o in await self.store.list(prefix)
                       if "/" in o.key[len(prefix):]})

    async def collect(self, sc: Scope, keep: set[str]) -> list[str]:
        """Delete versions older than the oldest kept one; returns what was deleted."""
        if not keep:
            return []
        oldest = min(keep)
        gone = [v for v in await self.versions(sc) if v < oldest and v not in keep]
        for v in gone:
            for name in PARTS + OPTIONAL_PARTS:
                await self.store.delete(f"{self._index(sc)}{v}/{name}")
        return gone
