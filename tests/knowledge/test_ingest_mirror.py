"""A re-ingest of a folder mirrors it: the documents that came from that same folder and whose file
is gone are deleted (and reported); uploads and other folders' documents stay; the scope is dirty."""

from __future__ import annotations

from pathlib import Path

from kb_fakes import HashEmbedder

from incidentfox.knowledge import Document, KnowledgeBase, Scope
from incidentfox.knowledge.ingest import folder_origin, ingest_folder
from incidentfox.knowledge.raptor import RaptorParams
from incidentfox.object_store import LocalObjectStore

ACME, ACME_SRE = Scope(org="acme"), Scope(org="acme", team="sre")


def write(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"# {name}\n\n## Mitigation\n\nRestart the {name.split('.')[0]} service.\n")
    return root


async def test_reingest_deletes_only_this_folders_vanished_files(tmp_path: Path) -> None:
    kb = KnowledgeBase(LocalObjectStore(tmp_path / "objects"), embedder=HashEmbedder(),
                       params=RaptorParams(max_cluster=4, top_size=2))
    main = write(tmp_path / "main", ["a.md", "db/b.md", "c.txt"])
    other = write(tmp_path / "other", ["z.md"])
    first = await ingest_folder(kb, ACME, main)
    assert first.removed == [] and {d.origin for d in first.documents} == {folder_origin(main)}
    await ingest_folder(kb, ACME, other)
    await ingest_folder(kb, ACME_SRE, main)            # the same folder in another scope
    await kb.put_document(Document(scope=ACME, source="upload/x.md", text="# X\n\nuploaded over the API"))
    await kb.rebuild(ACME)
    assert ACME not in await kb.dirty_scopes()

    (main / "db" / "b.md").unlink()
    (main / "c.txt").unlink()
    again = await ingest_folder(kb, ACME, main)
    assert sorted(d.source for d in again.removed) == ["c.txt", "db/b.md"]
    assert [d.source for d in await kb.list_documents(ACME)] == ["a.md", "upload/x.md", "z.md"]
    assert len(await kb.list_documents(ACME_SRE)) == 3        # another scope's copy is untouched
    assert ACME in await kb.dirty_scopes()                     # a deletion is a change: the sweep rebuilds

    assert (await ingest_folder(kb, ACME, main)).removed == []     # nothing more to remove


async def test_a_document_replaced_by_another_folder_belongs_to_it(tmp_path: Path) -> None:
    kb = KnowledgeBase(LocalObjectStore(tmp_path / "objects"), embedder=HashEmbedder())
    one = write(tmp_path / "one", ["same.md", "only-one.md"])
    two = write(tmp_path / "two", ["same.md"])
    await ingest_folder(kb, ACME, one)
    await ingest_folder(kb, ACME, two)          # same source: replaced, now folder two's
    (one / "same.md").unlink()
    report = await ingest_folder(kb, ACME, one)
    assert report.removed == []                 # it is two's now: one's re-ingest leaves it
    assert [d.source for d in await kb.list_documents(ACME)] == ["only-one.md", "same.md"]
