"""``incidentfox kb ingest|search|rebuild``: the knowledge base from the command line.

Like every command they read the database from the settings (``INCIDENTFOX_DATABASE_URL``, else the
embedded default) to check that ``--org`` (and ``--team``) exist, and the object store from the
settings (a folder under the data directory by default, so an index outlives the command); no
running platform is needed. Without ``--team`` a command works on the org's own documents.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.errors import fail
from cli.progress import QuietOpt, stage_bars

OrgOpt = Annotated[str, typer.Option("--org", help="An existing org id.")]
TeamOpt = Annotated[str | None, typer.Option("--team", help="A team of the org (default: the org's own documents).")]
DbOpt = Annotated[str, typer.Option(help="Database URL (default: INCIDENTFOX_DATABASE_URL or local SQLite).")]


def _scope(org: str, team: str | None, database_url: str) -> tuple[Any, Any]:
    """The scope and the knowledge base its settings call for, after checking the org (and team)
    exist through config_service's library face: a team (or org) with ``knowledge.embeddings`` is
    built and searched with that endpoint, as the platform's rebuild sweep and searches do, and its
    summaries come from its model when ``knowledge.summaries`` is ``auto``."""
    from config_service import effective_config_in_session
    from incidentfox.db import make_async_engine, session_factory
    from incidentfox.errors import IncidentFoxError, NotFound
    from incidentfox.knowledge import scope
    from incidentfox.settings import ensure_local_secrets, get_settings

    try:
        sc = scope(org, team)
    except IncidentFoxError as exc:
        fail(exc.message)
    settings = ensure_local_secrets(get_settings())    # the config's secrets (an endpoint's key) decrypt
    url = database_url or settings.resolved_database_url()

    async def read() -> dict[str, Any]:
        from sqlalchemy.exc import SQLAlchemyError

        engine = make_async_engine(url)
        try:
            async with session_factory(engine)() as session:
                return await effective_config_in_session(session, org_id=org, node_id=team or org,
                                                         reveal_secrets=True, settings=settings)
        except NotFound as exc:
            fail(exc.message)
        except SQLAlchemyError as exc:
            fail(f"cannot read the database ({type(exc).__name__}); run `incidentfox db upgrade` first?")
        finally:
            await engine.dispose()

    return sc, _kb(asyncio.run(read()), org, team)


def _kb(config: dict[str, Any], org: str, team: str | None) -> Any:
    from actors.engine.agents.summariser import llm_summariser
    from actors.tools.knowledge_bases import KnowledgeBases, TeamKnowledge
    from incidentfox.object_store import object_store_from_settings
    from incidentfox.settings import get_settings

    settings = get_settings()
    bases = KnowledgeBases(object_store_from_settings(settings), summariser_for=llm_summariser)
    return bases.for_team(TeamKnowledge.from_config(config, org_id=org, team_id=team or ""))


def _info_view(info: Any) -> dict:
    return {"scope": str(info.scope), "version": info.version, "documents": info.documents, "nodes": info.nodes,
            "levels": info.levels, "embedder": info.embedder}


def ingest(path: Annotated[str, typer.Argument(help="A folder of .md/.txt/.html files (may be inside a Git checkout), "
                                                "or a Git repository address (https://, ssh://, file://, git@host:repo).")],
           org: OrgOpt, team: TeamOpt = None,
           ref: Annotated[str | None, typer.Option("--ref", help="Repository only: the branch or tag (default: its HEAD).")] = None,
           git_path: Annotated[str, typer.Option("--git-path", help="Repository only: the folder inside it.")] = "",
           database_url: DbOpt = "", quiet: QuietOpt = False) -> None:
    """Store every Markdown, text and HTML file under PATH (a folder, or --git-path of a repository
    cloned at --ref) as a document (``source`` = its path relative to that folder), delete this
    source's documents whose file is gone (``removed``), then build the scope's index. Prints one JSON
    line on stdout; progress bars (files parsed, chunks embedded, levels built) go to stderr, plain
    lines when it is not a terminal."""
    from incidentfox.errors import IncidentFoxError
    from incidentfox.knowledge.git_source import checkout, is_git_address, redact
    from incidentfox.knowledge.ingest import ingest_folder

    remote = is_git_address(path)
    if not remote and (ref or git_path):
        fail("--ref and --git-path apply to a repository address, not a local folder")
    if not remote and not Path(path).is_dir():
        fail(f"{path} is not a folder (nor a Git repository address)")
    sc, kb = _scope(org, team, database_url)

    async def run(shown: Any) -> dict:
        if remote:
            with checkout(path, ref=ref, path=git_path) as co:
                report = await ingest_folder(kb, sc, co.folder, progress=shown, checkout=co)
        else:
            report = await ingest_folder(kb, sc, Path(path), progress=shown)
        info = await kb.rebuild(sc, progress=shown)
        return {"ingested": len(report.documents), "skipped": [{"source": s, "reason": r} for s, r in report.skipped],
                "removed": [d.source for d in report.removed], "index": _info_view(info)}

    with stage_bars(f"ingesting {redact(path)} into {sc}", quiet=quiet) as shown:
        try:
            out = asyncio.run(run(shown))
        except IncidentFoxError as exc:
            fail(exc.message)
    typer.echo(json.dumps(out))


def search(query: Annotated[str, typer.Argument(help="What to look for, in plain words.")], org: OrgOpt,
           team: TeamOpt = None, top: Annotated[int, typer.Option("--top", min=1, max=50, help="How many results.")] = 5,
           json_out: Annotated[bool, typer.Option("--json", help="One JSON object {\"results\": [...]}.")] = False,
           database_url: DbOpt = "") -> None:
    """Search the scope's documents (without --team, the org's own), best first. With --json, one
    object ``{"results": [...], "index": {"degraded_reason", "lexical_scopes"}}``; ``degraded_reason``
    is ``embedder_changed`` when the index was built with another embedder (BM25-only scores)."""
    from incidentfox.errors import IncidentFoxError

    sc, kb = _scope(org, team, database_url)

    async def run() -> Any:
        if await kb.index_info(sc) is None:
            fail(f"no index for {sc}: run `incidentfox kb ingest PATH --org {org}"
                 + (f" --team {team}`" if team else "`") + " first")
        return await kb.search_result([sc], query, top_k=top)

    try:
        found = asyncio.run(run())
    except IncidentFoxError as exc:
        fail(exc.message)
    results = [{"source": h.source, "section": h.section, "score": round(h.score, 4), "text": h.text,
                "title": h.title, "level": h.level, "kind": h.kind, "doc_id": h.doc_id, "sources": h.sources}
               for h in found.hits]
    index = found.index.model_dump(mode="json")
    if json_out:
        typer.echo(json.dumps({"results": results, "index": index}))
        return
    if index["degraded_reason"]:
        typer.echo(f"note: lexical search only ({index['degraded_reason']}): the index of "
                   f"{', '.join(index['lexical_scopes'])} was built with another embedder; "
                   f"run `incidentfox kb rebuild` to fix it", err=True)
    if not results:
        typer.echo("no results")
    for i, r in enumerate(results, 1):
        where = f"{r['source']}" + (f" > {r['section']}" if r["section"] else "")
        tag = "" if r["level"] == 0 else f"  [summary, level {r['level']}]"
        typer.echo(f"{i}. {where}  (score {r['score']:.3f}){tag}")
        text = r["text"]
        typer.echo("   " + (text[:300] + "…" if len(text) > 300 else text))


def rebuild(org: OrgOpt, team: TeamOpt = None, database_url: DbOpt = "", quiet: QuietOpt = False) -> None:
    """Rebuild the scope's index from its stored documents. Prints one JSON line on stdout; progress
    bars (chunks embedded, levels built) go to stderr, plain lines when it is not a terminal."""
    from incidentfox.errors import IncidentFoxError

    sc, kb = _scope(org, team, database_url)
    with stage_bars(f"rebuilding {sc}", quiet=quiet) as shown:
        try:
            info = asyncio.run(kb.rebuild(sc, progress=shown))
        except IncidentFoxError as exc:
            fail(exc.message)
    typer.echo(json.dumps(_info_view(info)))


def register(app: typer.Typer) -> None:
    kb = typer.Typer(no_args_is_help=True, help="The knowledge base: runbooks and past incidents (RAPTOR trees).")
    for name, fn in (("ingest", ingest), ("search", search), ("rebuild", rebuild)):
        kb.command(name)(fn)
    app.add_typer(kb, name="kb")
