"""The knowledge-base API (mounted at ``/api/v1/knowledge``): documents, rebuild and search.

Thin: authorise, call :class:`incidentfox.knowledge.KnowledgeBase` (through the process's
:class:`actors.tools.knowledge_bases.KnowledgeBases`), map its typed errors to statuses.

Who sees what (docs/knowledge.md, docs/security.md):

* a **team** (or impersonation) token reads its team's documents and its org's, and writes (upload,
  delete, rebuild) only its team's; ``team``/``org`` parameters naming anything else are 403;
* an **org admin** reads and writes its org's own documents, or a team's of its org with ``?team=``;
* the **global admin** names ``?org=`` (and optionally ``team``);
* nothing ever reads or writes another org's documents: a document of another scope is 404.

Routes:

* ``POST /documents`` ``{name, text, media_type?, title?, kind?, url?}``: upload (Markdown, plain
  text or HTML; ``text`` at most :data:`MAX_DOCUMENT_BYTES`, 413 ``document_too_large``; 400
  ``invalid_document`` naming the problem). The same ``name`` again replaces the document.
* ``GET /documents?team=&org=&limit=&cursor=``: ``{items, next_cursor}`` in (scope, id) order.
* ``DELETE /documents/{doc_id}?team=&org=``: 204; 404 ``document_not_found``.
* ``POST /rebuild?team=&org=``: rebuilds the scope's index now; ``{scope, version, documents, nodes, …}``.

An upload or a deletion marks its scope dirty; the app's background sweep
(:class:`actors.tools.knowledge_bases.RebuildSweep`, every ``knowledge_sweep_s`` seconds, started
with the app and cancelled at shutdown) rebuilds dirty scopes one at a time, so investigations
(and searches here) only ever read an index.
* ``POST /search`` ``{query, top_k?, kinds?}`` (``?team=&org=``): ``{results, index}``, the best hits
  over the visible scopes; ``index.degraded_reason`` is ``embedder_changed`` (and ``index.lexical_scopes``
  names the scopes) when an index was built with another embedder than the one configured now: the
  hits are then scored by BM25 alone until the sweep has rebuilt the scope.

Not HTTP: the replica's ``embed_query`` (a Serve handle call) embeds investigations' queries with the
offline model it holds (:mod:`actors.tools.knowledge_app_embedder`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from config_service import PrincipalDep, install_auth_state
from incidentfox.contracts import Principal
from incidentfox.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge, install_error_handlers
from incidentfox.http_limits import install_request_limits
from incidentfox.http_rate_limit import install_rate_limits
from incidentfox.pagination import PageDep, envelope, page_list, page_responses
from incidentfox.settings import Settings

log = logging.getLogger(__name__)
OPENAPI_PATH = "/openapi.json"
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024          # one document's text
KNOWLEDGE_MAX_BODY = MAX_DOCUMENT_BYTES + 64 * 1024   # the JSON around it
Id = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class DocumentUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.()-]*$", description=(
        "The document's file name; the same name again replaces it."))
    text: str = Field(min_length=1, description="The document (Markdown, plain text or HTML).")
    media_type: Literal["text/markdown", "text/plain", "text/html"] = "text/markdown"
    title: str | None = Field(default=None, max_length=300, description="Default: its first heading, else the name.")
    kind: Literal["runbook", "postmortem"] = "runbook"
    url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$", description=(
        "A link shown where the document is cited (e.g. its page in your wiki)."))


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=2000)
    top_k: int = Field(default=5, ge=1, le=20)
    kinds: list[Literal["runbook", "postmortem", "incident"]] | None = Field(default=None, max_length=3)


def _ids(principal: Principal, org: str | None, team: str | None) -> tuple[str, str | None]:
    """The (org, team) the caller acts on: its own for a team token (anything else is 403)."""
    if principal.auth_kind in ("team", "impersonation"):
        if (org and org != principal.org_id) or (team and team != principal.team_node_id):
            raise Forbidden("a team token reaches only its own team's knowledge base", code="forbidden")
        return principal.org_id or "", principal.team_node_id
    org = org or principal.org_id
    if not org:
        raise BadRequest("the global admin names `org`", code="org_required")
    if principal.auth_kind == "org_admin" and org != principal.org_id:
        raise Forbidden("an org admin reaches only its own org's knowledge base", code="forbidden")
    return org, team


def create_knowledge_app(settings: Settings, *, bases: Any = None) -> FastAPI:
    async def sweep_forever(app: FastAPI) -> None:
        try:
            sweep = app.state.sweep()
        except Exception as exc:  # noqa: BLE001 - e.g. no object store: the API answers, nothing is rebuilt
            log.warning("knowledge sweep not started: %s", type(exc).__name__)
            return
        await sweep.run(settings.knowledge_sweep_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(sweep_forever(app)) if settings.knowledge_sweep_s else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(title="IncidentFox knowledge base", docs_url=None, redoc_url=None, openapi_url=OPENAPI_PATH,
                  lifespan=lifespan)
    install_error_handlers(app)
    install_auth_state(app, settings=settings)
    install_request_limits(app, max_body=KNOWLEDGE_MAX_BODY, public_paths=(OPENAPI_PATH,))
    install_rate_limits(app, surface="api", settings=settings)   # outermost: 429 before anything else
    sessions = app.state.session_factory

    def knowledge_bases() -> Any:
        nonlocal bases
        if bases is None:
            from actors.engine.knowledge_use import process_knowledge_bases

            bases = process_knowledge_bases()
        return bases

    async def team_knowledge(org: str, team: str | None) -> Any:
        """The scope's knowledge settings (its embedder) from its effective config; 404 for an
        unknown team."""
        from actors.tools.knowledge_bases import TeamKnowledge
        from config_service import effective_config_in_session

        try:
            async with sessions() as s:
                doc = await effective_config_in_session(s, org_id=org, node_id=team or org, reveal_secrets=True,
                                                        settings=settings)
        except Exception as exc:  # the config service's not-found (or an org/team outside the tree)
            if getattr(exc, "status", None) == 404:
                raise NotFound("no such team or org", code="scope_not_found") from None
            raise
        return TeamKnowledge.from_config(doc, org_id=org, team_id=team or "")

    async def scope_knowledge(sc: Any) -> Any:
        return await team_knowledge(sc.org, sc.team)

    from actors.tools.knowledge_bases import RebuildSweep

    sweeps: list[RebuildSweep] = []

    def sweep() -> RebuildSweep:
        """The app's one rebuilder (built on first use, like the knowledge bases)."""
        if not sweeps:
            sweeps.append(RebuildSweep(knowledge_bases(), scope_knowledge))
        return sweeps[0]

    app.state.sweep = sweep

    @app.post("/documents", status_code=201)
    async def upload(principal: PrincipalDep, body: DocumentUpload, org: Id = None, team: Id = None) -> dict[str, Any]:
        """Upload a runbook or postmortem into the team's (or, for an org admin, the org's) knowledge base."""
        from incidentfox.db import utcnow
        from incidentfox.knowledge import Document

        if len(body.text.encode()) > MAX_DOCUMENT_BYTES:
            raise PayloadTooLarge(f"a document may hold at most {MAX_DOCUMENT_BYTES} bytes",
                                  code="document_too_large", details={"max_bytes": MAX_DOCUMENT_BYTES})
        org_id, team_id = _ids(principal, org, team)
        tk = await team_knowledge(org_id, team_id)
        doc = Document(scope=tk.own_scope(), source=f"upload/{body.name}",
                       title=body.title or _title(body.text, body.name), kind=body.kind, media_type=body.media_type,
                       text=body.text, url=body.url, updated_at=utcnow())
        info = await knowledge_bases().for_team(tk).put_document(doc)   # marks the scope dirty: the sweep rebuilds it
        return info.model_dump(mode="json")

    @app.get("/documents", responses=page_responses("KnowledgeDocumentPage"))
    async def list_documents(principal: PrincipalDep, page: PageDep, org: Id = None, team: Id = None) -> dict[str, Any]:
        """The documents the caller can read (its team's and its org's for a team token), by scope and id."""
        org_id, team_id = _ids(principal, org, team)
        tk = await team_knowledge(org_id, team_id)
        kb = knowledge_bases().for_team(tk)
        items = [i.model_dump(mode="json") for s in tk.scopes() for i in await kb.list_documents(s)]
        items.sort(key=lambda d: (_scope_key(d), d["doc_id"]))
        return envelope(page_list(items, page, key=lambda d: (_scope_key(d), d["doc_id"]), kinds=(str, str)))

    @app.delete("/documents/{doc_id}", status_code=204)
    async def delete_document(principal: PrincipalDep, doc_id: str, org: Id = None, team: Id = None) -> Response:
        """Delete one of the caller's own scope's documents (a team token cannot delete its org's)."""
        org_id, team_id = _ids(principal, org, team)
        tk = await team_knowledge(org_id, team_id)
        await knowledge_bases().for_team(tk).delete_document(tk.own_scope(), doc_id[:200])
        return Response(status_code=204)

    @app.post("/rebuild")
    async def rebuild(principal: PrincipalDep, org: Id = None, team: Id = None) -> dict[str, Any]:
        """Rebuild the scope's index now (the app's background sweep also rebuilds a changed one)."""
        org_id, team_id = _ids(principal, org, team)
        tk = await team_knowledge(org_id, team_id)
        info = await knowledge_bases().for_team(tk).rebuild(tk.own_scope())
        return info.model_dump(mode="json")

    @app.post("/search")
    async def search(principal: PrincipalDep, body: SearchRequest, org: Id = None, team: Id = None) -> dict[str, Any]:
        """The best matching sections over the documents the caller can read, best first."""
        from actors.tools.knowledge_bases import hit_view, index_view

        org_id, team_id = _ids(principal, org, team)
        tk = await team_knowledge(org_id, team_id)
        result = await knowledge_bases().search_result(tk, body.query, kinds=body.kinds, top_k=body.top_k)
        return {"results": [hit_view(h, max_chars=4000) for h in result.hits], "index": index_view(result)}

    return app


def _scope_key(d: dict[str, Any]) -> str:
    scope = d.get("scope") or {}
    return f"{scope.get('org', '')}/{scope.get('team') or '_org'}"


def _title(text: str, name: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            return stripped.lstrip("#").strip()[:300] or name
    return name


def build_app(args: dict[str, Any] | None = None) -> Any:
    """``serve_apps.builder:build_knowledge`` delegates here."""
    from ray import serve

    @serve.deployment(name="KnowledgeAPI", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=100)
    @serve.ingress()
    class KnowledgeAPI:
        """The knowledge app's replica: the HTTP API, the sweep, and the platform's query embeddings
        (:meth:`embed_query`, for the processes that only search: they load no model)."""

        def __init__(self) -> None:
            from actors.engine.knowledge_use import process_knowledge_bases
            from incidentfox.logs import configure_process_logging
            from incidentfox.settings import ensure_local_secrets

            configure_process_logging()
            self._settings = ensure_local_secrets(Settings())
            self._bases = process_knowledge_bases(embed_here=True)

        def __serve_build_asgi_app__(self) -> FastAPI:
            return create_knowledge_app(self._settings, bases=self._bases)

        @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)
        async def embed_query(self, texts: list[str]) -> list[tuple[str, Any]]:
            """``(embedder name, vector)`` of a query with the offline embedder (batched: a burst of
            runs' consults costs one model call per batch)."""
            embedder = self._bases.offline_embedder()
            vectors = await embedder.embed(list(texts))
            return [(embedder.name, v) for v in vectors]

    return KnowledgeAPI.bind()
