"""The knowledge base's typed values: scopes, documents, search hits and index facts.

A :class:`Scope` is an org's own documents (``team=None``) or one team's. Its :meth:`Scope.key` is
the object-store prefix segment, so names are validated here: an org or team name is
``[A-Za-z0-9][A-Za-z0-9_-]{0,63}``, which has no ``/``, ``=`` or ``.``, so a tenant-set name can never
spell another org's prefix (``o=acme/t=x`` is not a valid org name).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from incidentfox.errors import IncidentFoxError, NotFound

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
DOC_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

DocKind = Literal["runbook", "postmortem", "incident"]
MediaType = Literal["text/markdown", "text/plain", "text/html"]
MAX_DOCUMENT_BYTES = 2_000_000


ProgressStage = Literal["files", "embed", "summarise", "level"]


@dataclass(frozen=True)
class Progress:
    """One step of long knowledge work, reported to a caller's callback (the package draws nothing):

    * ``files``: ingest, ``done`` of ``total`` files read and parsed;
    * ``embed``: rebuild, ``done`` of ``total`` chunks embedded;
    * ``summarise``: rebuild, ``done`` of ``total`` clusters of tree level ``level`` summarised;
    * ``level``: rebuild, tree level ``level`` built (``done == level``; ``total`` is the most
      levels a build makes, an upper bound: a build usually stops earlier).
    """

    stage: ProgressStage
    done: int
    total: int
    level: int = 0


ProgressFn = Callable[[Progress], None]


class KnowledgeError(IncidentFoxError):
    status, code = 400, "knowledge_error"


class InvalidDocument(KnowledgeError):
    status, code = 400, "invalid_document"


class InvalidScope(KnowledgeError):
    status, code = 400, "invalid_scope"


class DocumentTooLarge(KnowledgeError):
    status, code = 413, "document_too_large"


class DocumentNotFound(KnowledgeError, NotFound):
    status, code = 404, "document_not_found"


class IndexMismatch(KnowledgeError):
    """An embedder answered vectors of the wrong size for its index (a search of an index built by
    another embedder does not fail: it answers lexically, :class:`SearchIndexState`)."""

    status, code = 409, "index_embedder_mismatch"


class EmbedderError(KnowledgeError):
    status, code = 502, "embedder_error"


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValueError(f"{what} must match [A-Za-z0-9][A-Za-z0-9_-]{{0,63}}")
    return value


class Scope(BaseModel):
    """Whose documents: an org's own (``team=None``) or one team's."""

    model_config = ConfigDict(frozen=True)
    org: str
    team: str | None = None

    @field_validator("org")
    @classmethod
    def _org(cls, v: str) -> str:
        return _check_name(v, "org")

    @field_validator("team")
    @classmethod
    def _team(cls, v: str | None) -> str | None:
        return None if v is None else _check_name(v, "team")

    def key(self) -> str:
        return f"o={self.org}/_org" if self.team is None else f"o={self.org}/t={self.team}"

    def __str__(self) -> str:
        return self.org if self.team is None else f"{self.org}/{self.team}"


def scope(org: str, team: str | None = None) -> Scope:
    """A :class:`Scope`, or :class:`InvalidScope` (400) naming the bad name."""
    try:
        return Scope(org=org, team=team)
    except ValueError as exc:
        raise InvalidScope(f"invalid scope {org!r}/{team!r}: names are [A-Za-z0-9][A-Za-z0-9_-]{{0,63}}",
                           details={"org": str(org)[:80], "team": str(team)[:80]}) from exc


def document_id(sc: Scope, source: str) -> str:
    """The stable id of ``source`` in ``sc``: a digest of both (safe as an object-key segment)."""
    return hashlib.sha256(f"{sc.key()}\n{source}".encode()).hexdigest()[:32]


def _now() -> datetime:
    return datetime.now(UTC)


class Document(BaseModel):
    doc_id: str = ""
    scope: Scope
    source: str = Field(min_length=1, max_length=1024)
    title: str = Field(default="", max_length=512)
    kind: DocKind = "runbook"
    media_type: MediaType = "text/markdown"
    text: str
    url: str | None = None
    metadata: dict[str, str] = {}
    # Where an ingest found it (``folder:<absolute path>``): a re-ingest of that folder removes its
    # documents whose files are gone. None for uploads and past incidents, which no re-ingest touches.
    origin: str | None = Field(default=None, max_length=4096)
    updated_at: datetime = Field(default_factory=_now)

    @field_validator("doc_id")
    @classmethod
    def _doc_id(cls, v: str) -> str:
        if v and not DOC_ID_RE.match(v):     # it names an object key: one safe segment
            raise ValueError("doc_id must match [A-Za-z0-9_-]{1,64}")
        return v

    def model_post_init(self, _ctx: object) -> None:
        if not self.doc_id:
            self.doc_id = document_id(self.scope, self.source)


class DocumentInfo(BaseModel):
    doc_id: str
    scope: Scope
    source: str
    title: str
    kind: DocKind
    url: str | None
    size: int
    updated_at: datetime
    origin: str | None = None

    @classmethod
    def of(cls, doc: Document) -> DocumentInfo:
        return cls(doc_id=doc.doc_id, scope=doc.scope, source=doc.source, title=doc.title, kind=doc.kind,
                   url=doc.url, size=len(doc.text.encode()), updated_at=doc.updated_at, origin=doc.origin)


class Hit(BaseModel):
    doc_id: str
    scope: Scope
    source: str
    section: str
    score: float
    text: str
    kind: DocKind
    title: str
    url: str | None
    level: int
    sources: list[str] = []


class IndexInfo(BaseModel):
    scope: Scope
    version: str
    documents: int
    nodes: int
    levels: int
    built_at: datetime
    embedder: str = ""
    stale: bool = False     # a document changed after this version was built, or it is of an older format: rebuild


DegradedReason = Literal["embedder_changed"]


class SearchIndexState(BaseModel):
    """How a search was answered. ``degraded_reason`` is None for the normal hybrid (vector + BM25)
    search; ``embedder_changed`` when an index read was built with another embedder than the one
    configured now: every hit was then scored lexically (BM25 only, scores in [0, 1] per scope, not
    comparable to hybrid scores) until the scopes in ``lexical_scopes`` are rebuilt (the knowledge
    app's sweep rebuilds a team's own scope by itself)."""

    degraded_reason: DegradedReason | None = None
    lexical_scopes: list[str] = []


class SearchResult(BaseModel):
    hits: list[Hit]
    index: SearchIndexState = SearchIndexState()
