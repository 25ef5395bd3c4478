"""Ingest a folder, or a path of a Git repository, of Markdown, plain-text and HTML files into a
scope. Each file becomes one document whose ``source`` is its path relative to the folder given,
so re-ingesting the same folder replaces documents in place (their ids derive from the source).
Each document records its ``origin`` (``folder:<the folder's absolute path>``, or
``git:<repository address>//<path>`` for a clone, which lives in a new temporary folder each time),
and a re-ingest mirrors the source: a document of this same origin whose file is gone is deleted
(listed in :attr:`IngestReport.removed`; the deletion marks the scope dirty like any change).
Uploads, past incidents and other origins' documents are never touched.

A file read from a Git checkout (a clone, or a local working copy) carries ``git_remote``,
``git_commit`` and ``git_path`` metadata and, on GitHub/GitLab-style hosts, a ``url`` to the file at
that commit, which citations link to (:mod:`incidentfox.knowledge.git_source`).

Hidden files and folders (``.git``) are skipped, and so is anything a symlink leads outside the
folder; files with no words or over the size limit are reported as skipped, not fatal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from incidentfox.knowledge.base import KnowledgeBase
from incidentfox.knowledge.git_source import Checkout, local_checkout
from incidentfox.knowledge.models import (
    MAX_DOCUMENT_BYTES,
    DocKind,
    Document,
    DocumentInfo,
    InvalidDocument,
    KnowledgeError,
    Progress,
    ProgressFn,
    Scope,
)
from incidentfox.knowledge.parsing import media_type_for


@dataclass
class IngestReport:
    root: Path
    documents: list[DocumentInfo] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)    # (source, why)
    removed: list[DocumentInfo] = field(default_factory=list)       # this folder's documents whose file is gone


def find_files(root: Path) -> list[Path]:
    """The ingestible files under ``root``, sorted; never outside it."""
    root = root.resolve()
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith(".") or media_type_for(name) is None:
                continue
            real = path.resolve()
            if real.is_file() and real.is_relative_to(root):
                found.append(path)
    return found


async def ingest_folder(kb: KnowledgeBase, scope: Scope, root: Path | str, *, kind: DocKind = "runbook",
                        progress: ProgressFn | None = None, checkout: Checkout | None = None) -> IngestReport:
    """Store every ingestible file under ``root`` as a document of ``scope``; ``progress`` hears
    each file read (``Progress("files", done, total)``), skipped ones included. ``checkout``: the
    clone ``root`` lies in (:func:`~incidentfox.knowledge.git_source.checkout`); without one, a
    local working copy ``root`` lies in is found by itself."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidDocument(f"{root} is not a folder", details={"path": str(root)})
    report = IngestReport(root=root.resolve())
    files = find_files(root)
    repo = checkout or local_checkout(root)
    origin = git_origin(checkout) if checkout else folder_origin(report.root)
    present: set[str] = set()
    for i, path in enumerate(files):
        source = path.resolve().relative_to(report.root).as_posix()
        present.add(source)
        why = await _ingest_one(kb, scope, path, source, kind, repo, report, origin)
        if why:
            report.skipped.append((source, why))
        if progress:
            progress(Progress("files", i + 1, len(files)))
    for info in await kb.list_documents(scope):
        if info.origin == origin and info.source not in present:
            await kb.delete_document(scope, info.doc_id)
            report.removed.append(info)
    return report


def folder_origin(root: Path) -> str:
    """The ``origin`` of the documents ingested from folder ``root``."""
    return f"folder:{root.resolve().as_posix()}"


def git_origin(co: Checkout) -> str:
    """The ``origin`` of the documents ingested from a clone: its address and path, not the clone's
    temporary folder (nor the ref: another branch of the same path replaces the same documents)."""
    return f"git:{co.remote}//{co.folder.relative_to(co.root.resolve()).as_posix()}"


async def _ingest_one(kb: KnowledgeBase, scope: Scope, path: Path, source: str, kind: DocKind,
                      repo: Checkout | None, report: IngestReport, origin: str) -> str:
    """Store one file as a document (appended to ``report``); returns why it was skipped, or ""."""
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        return f"larger than {MAX_DOCUMENT_BYTES} bytes"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    in_repo = path.resolve().relative_to(repo.root.resolve()).as_posix() if repo else ""
    doc = Document(scope=scope, source=source, kind=kind, media_type=media_type_for(path.name), text=text,
                   metadata=repo.metadata(in_repo) if repo else {}, url=repo.url(in_repo) if repo else None,
                   origin=origin)
    try:
        report.documents.append(await kb.put_document(doc))
    except KnowledgeError as exc:
        return exc.message
    return ""
