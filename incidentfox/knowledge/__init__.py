"""The knowledge base (issue 18): runbooks, postmortems and past incidents per org or team, as
RAPTOR trees in the object store. Ground floor: it never imports config_service, actors or
serve_apps. See docs/knowledge.md.

* :mod:`.models`: scopes, documents, hits, errors. :mod:`.parsing`: documents to chunks.
* :mod:`.embedders`: the offline MiniLM embedder and an OpenAI-compatible one.
* :mod:`.summarise`: the summariser protocol and the extractive offline summariser.
* :mod:`.raptor`: the tree (reduce, soft-cluster, summarise, recurse). :mod:`.index`: a loaded tree
  and collapsed-tree search. :mod:`.storage`: the object-store layout, versions and their flip.
* :mod:`.base`: :class:`KnowledgeBase`, the one entry point.
"""

from incidentfox.knowledge.base import (
    KnowledgeBase,
    knowledge_base_from_settings,
    mitigation_sections,
    scopes_visible_to,
)
from incidentfox.knowledge.embedders import Embedder, MiniLMEmbedder, OpenAIEmbedder
from incidentfox.knowledge.models import (
    DocKind,
    Document,
    DocumentInfo,
    DocumentNotFound,
    DocumentTooLarge,
    EmbedderError,
    Hit,
    IndexInfo,
    IndexMismatch,
    InvalidDocument,
    InvalidScope,
    KnowledgeError,
    Progress,
    ProgressFn,
    Scope,
    SearchIndexState,
    SearchResult,
    document_id,
    scope,
)
from incidentfox.knowledge.summarise import ExtractiveSummariser, Summariser

__all__ = [
    "DocKind", "Document", "DocumentInfo", "DocumentNotFound", "DocumentTooLarge", "Embedder", "EmbedderError",
    "ExtractiveSummariser", "Hit", "IndexInfo", "IndexMismatch", "InvalidDocument", "InvalidScope",
    "KnowledgeBase", "KnowledgeError", "MiniLMEmbedder", "OpenAIEmbedder", "Progress", "ProgressFn", "Scope",
    "SearchIndexState", "SearchResult", "Summariser", "document_id",
    "knowledge_base_from_settings", "mitigation_sections", "scope", "scopes_visible_to",
]
