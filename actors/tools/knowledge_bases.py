"""The knowledge bases a process uses, and the one rebuilder of changed indexes (a sweep).

* :class:`TeamKnowledge` is what one team's knowledge use is built from: its org and team (the
  scopes it may read: its own documents and its org's, :func:`incidentfox.knowledge.scopes_visible_to`)
  and its config's ``knowledge`` section. It comes from the run's config snapshot, never from a tool
  argument or a prompt, so a search can never reach another team's or org's documents. It pickles
  (it rides in a ToolCallRequest); ``repr`` never shows the embeddings key or the LLM key.
* :class:`KnowledgeBases` holds one :class:`~incidentfox.knowledge.KnowledgeBase` per embedder (and
  summariser) configuration over the platform's one object store, built lazily.
* :meth:`KnowledgeBases.search` reads the current indexes as they are (a reader never sees a
  half-written tree; a stale one is fine): investigations (their consult and the tools
  ``search_runbooks``/``similar_incidents``) never rebuild, so a finished run's past-incident
  document costs the runs after it nothing.
* :class:`RebuildSweep` is the one rebuilder: the knowledge app's background loop rebuilds the scopes
  whose documents changed, one at a time, at most once per ``knowledge.rebuild_interval_s`` each,
  and a scope that keeps changing (an alert storm's past incidents) once it settles.
* :meth:`KnowledgeBases.warm` loads an in-process embedder in the background once a team's scopes
  have a built tree, so a first search does not wait for the model (the platform's actors have
  none to load: the knowledge app embeds their queries, :mod:`actors.tools.knowledge_app_embedder`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from config_service import LLMConfig, TeamConfig

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 60.0      # between two rebuilds of a scope whose settings could not be read
REBUILD_TIMEOUT_S = 900.0      # one scope's rebuild (hundreds of documents on two cores)
MAX_DEFER_S = 600.0            # a scope that never settles is still rebuilt this often
WARM_RECHECK_S = 10.0          # a team without a built tree is looked at again after this long


@dataclass(frozen=True)
class TeamKnowledge:
    """One team's knowledge settings (see the module docstring)."""

    org_id: str
    team_id: str
    enabled: bool = True
    top_k: int = 5
    past_incidents: bool = True
    rebuild_interval_s: float = 60.0
    embeddings_url: str | None = None
    embeddings_model: str | None = None
    embeddings_key: SecretStr | None = field(default=None, repr=False)
    llm: LLMConfig | None = field(default=None, repr=False)    # summaries from the team's model ("auto")

    @classmethod
    def from_config(cls, cfg: TeamConfig | Mapping[str, Any], *, org_id: str = "", team_id: str = "") -> TeamKnowledge:
        cfg = cfg if isinstance(cfg, TeamConfig) else TeamConfig(cfg)
        k = cfg.knowledge
        emb = k.embeddings
        return cls(org_id=org_id or cfg.org_id, team_id=team_id or cfg.team_id, enabled=k.enabled, top_k=k.top_k,
                   past_incidents=k.past_incidents, rebuild_interval_s=k.rebuild_interval_s,
                   embeddings_url=emb.base_url if emb else None, embeddings_model=emb.model if emb else None,
                   embeddings_key=emb.api_key if emb else None,
                   llm=cfg.llm if k.summaries == "auto" else None)

    def scopes(self) -> list[Any]:
        """What this team reads: its own documents and its org's (never another org's)."""
        from incidentfox.knowledge import scope, scopes_visible_to

        scope(self.org_id, self.team_id or None)    # InvalidScope (400) for ids a scope cannot hold
        return list(scopes_visible_to(self.org_id, self.team_id or None))

    def own_scope(self) -> Any:
        """Where this team's past incidents are written."""
        from incidentfox.knowledge import scope

        return scope(self.org_id, self.team_id or None)

    def cache_key(self) -> tuple[Any, ...]:
        key = self.embeddings_key.get_secret_value() if self.embeddings_key else None
        llm = self.llm
        llm_key = (llm.provider, llm.model, llm.base_url, llm.reveal_api_key()) if llm is not None else None
        return (self.embeddings_url, self.embeddings_model, key, llm_key)


# Builds the summariser of a team's model (actors.engine.agents.summariser), or None: extractive.
SummariserFactory = Callable[[LLMConfig], Any]


class KnowledgeBases:
    """One KnowledgeBase per embedder and summariser configuration, over ``store`` (default: the
    settings' object store). Bounded: at most ``max_bases`` configurations are kept. ``embedder``
    replaces the offline default for teams that configure none (tests, benchmarks; in processes that
    only search, :class:`actors.tools.knowledge_app_embedder.KnowledgeAppEmbedder`)."""

    def __init__(self, store: Any = None, *, summariser_for: SummariserFactory | None = None,
                 max_bases: int = 64, embedder: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._embedder = embedder     # for teams without `knowledge.embeddings` (None: the offline default)
        self._summariser_for = summariser_for
        self._bases: dict[tuple[Any, ...], Any] = {}
        self._max = max_bases
        self._warming: dict[int, asyncio.Task[bool]] = {}   # per embedder: its background load
        self._warm_checked: dict[tuple[int, str, str], float] = {}   # (embedder, org, team) → last check
        self._clock = clock

    def store(self) -> Any:
        if self._store is None:
            from incidentfox.object_store import object_store_from_settings
            from incidentfox.settings import get_settings

            self._store = object_store_from_settings(get_settings())
        return self._store

    def offline_embedder(self) -> Any:
        """The embedder of teams that configure none (what the knowledge app embeds queries with)."""
        if self._embedder is None:
            from incidentfox.knowledge import MiniLMEmbedder

            self._embedder = MiniLMEmbedder()
        return self._embedder

    def for_team(self, team: TeamKnowledge) -> Any:
        from incidentfox.knowledge import KnowledgeBase

        key = team.cache_key()
        kb = self._bases.get(key)
        if kb is None:
            embedder = self.offline_embedder()
            if team.embeddings_url and team.embeddings_model:
                from incidentfox.knowledge import OpenAIEmbedder

                embedder = OpenAIEmbedder(base_url=team.embeddings_url, model=team.embeddings_model,
                                          api_key=team.embeddings_key)
            summariser = (self._summariser_for(team.llm) if self._summariser_for is not None and team.llm is not None
                          else None)
            kb = KnowledgeBase(self.store(), embedder=embedder, summariser=summariser)
            if len(self._bases) >= self._max:
                self._bases.pop(next(iter(self._bases)))
            self._bases[key] = kb
        return kb

    def warm(self, team: TeamKnowledge) -> asyncio.Task[bool]:
        """Load the team's embedder in the background if one of its scopes has a built tree (once per
        embedder and process; nothing is loaded, torch included, when none has, nor when the
        knowledge app embeds this process's queries). The task
        answers whether it loaded; a failure is logged, never raised (the search reports it)."""
        kb = self.for_team(team)
        task = self._warming.get(id(kb.embedder))
        if task is not None and (not task.done() or task.result()):
            return task      # loading, or loaded
        who = (id(kb.embedder), team.org_id, team.team_id)
        now = self._clock()
        if task is not None and now - self._warm_checked.get(who, float("-inf")) < WARM_RECHECK_S:
            return task      # this team had no tree a moment ago: a burst of its runs checks once
        if len(self._warm_checked) >= 4096:
            self._warm_checked.clear()
        self._warm_checked[who] = now
        task = asyncio.create_task(self._warm(kb, team))
        self._warming[id(kb.embedder)] = task
        return task

    async def _warm(self, kb: Any, team: TeamKnowledge) -> bool:
        from incidentfox.knowledge.embedders import preload

        try:
            trees = [await kb.tree(s) for s in team.scopes()]
            if not any(t is not None and t.nodes for t in trees):
                return False
            return await preload(kb.embedder)   # the offline model; a remote embedder loads nothing
        except Exception as exc:  # noqa: BLE001 - the run's own search meets (and notes) the problem
            log.warning("knowledge embedder not preloaded: %s", type(exc).__name__)
            return False

    async def search(self, team: TeamKnowledge, query: str, *, kinds: Collection[str] | None = None,
                     top_k: int | None = None) -> list[Any]:
        """The hits of :meth:`search_result`."""
        return list((await self.search_result(team, query, kinds=kinds, top_k=top_k)).hits)

    async def search_result(self, team: TeamKnowledge, query: str, *, kinds: Collection[str] | None = None,
                            top_k: int | None = None) -> Any:
        """The best hits for ``query`` over the team's scopes (its own and its org's), from their
        current indexes as they are, with how they were scored (an
        :class:`~incidentfox.knowledge.SearchResult`): a search never rebuilds (:class:`RebuildSweep`
        does), and never loads the embedder when no scope has a built tree. When the team's own
        scope was built with another embedder than the team's configured one, the answer is lexical
        (``index.degraded_reason``) and the scope is marked for the sweep to rebuild; an org scope
        built with the org's embedder is never marked because a team configured another (a rebuild
        by the org's settings would not change it)."""
        kb = self.for_team(team)
        result = await kb.search_result(team.scopes(), query, top_k=top_k or team.top_k, kinds=kinds)
        own = team.own_scope()
        if str(own) in result.index.lexical_scopes:
            await kb.needs_rebuild(own)
        return result


Resolver = Callable[[Any], Awaitable[TeamKnowledge]]   # a scope → its team's (or org's) knowledge settings


class RebuildSweep:
    """The platform's one rebuilder (run by the knowledge app, ``serve_apps/knowledge_api.py``).

    Each :meth:`sweep_once` lists the scopes whose documents changed since their index was built
    (:meth:`incidentfox.knowledge.KnowledgeBase.dirty_scopes`, one small listing) and rebuilds them
    one at a time, each at most once per its team's ``knowledge.rebuild_interval_s``. ``resolve``
    gives a scope's settings (its embedder); a scope it or the build fails for is logged (its type
    only) and retried after that interval; the sweep goes on with the next scope. Investigations
    never rebuild: they read the current index (:meth:`KnowledgeBases.search`).

    **A scope is rebuilt once it has settled.** A sweep that finds a scope dirty notes its ``changed``
    token and rebuilds it at the next sweep that finds the same token: no document of it changed for
    a whole sweep period. A scope still being written (a burst of finished runs, each writing its
    past incident) is put off: rebuilding it then would redo the tree, on the CPU those runs need,
    for documents that are stale again a moment later. One that never settles (a steady trickle) is
    rebuilt once it has waited ``max_defer_s``. So an upload is searchable within two sweep periods,
    and an alert storm costs one rebuild after it instead of one per interval during it.
    """

    def __init__(self, bases: KnowledgeBases, resolve: Resolver, *, clock: Callable[[], float] = time.monotonic,
                 rebuild_timeout_s: float = REBUILD_TIMEOUT_S, max_per_sweep: int = 50,
                 max_defer_s: float = MAX_DEFER_S) -> None:
        self._bases = bases
        self._resolve = resolve
        self._clock = clock
        self._timeout = rebuild_timeout_s
        self._max = max_per_sweep
        self._max_defer = max_defer_s
        self._next: dict[str, float] = {}     # scope key → when it may be rebuilt again
        self._seen: dict[str, str] = {}       # scope key → its token at the previous sweep (dirty scopes only)
        self._waiting: dict[str, float] = {}  # scope key → since when its rebuild is put off
        self.rebuilds = 0     # rebuilds started (for tests and the benchmark)
        self.failures = 0
        self.deferred = 0     # sweeps that put off a still-changing scope

    async def sweep_once(self) -> int:
        """Rebuild the dirty scopes that are due; returns how many were rebuilt."""
        from incidentfox.knowledge.storage import KnowledgeStore

        store = KnowledgeStore(self._bases.store())
        dirty = (await store.dirty_scopes())[:self._max]
        seen, self._seen = self._seen, {}
        done = 0
        for sc in dirty:
            key = sc.key()
            token = self._seen[key] = await store.changed_token(sc)
            now = self._clock()
            if now < self._next.get(key, float("-inf")):
                continue
            since = self._waiting.setdefault(key, now)
            if seen.get(key) != token and now - since < self._max_defer:
                self.deferred += 1      # new, or still being written: wait for it to settle
                continue
            done += await self._rebuild(sc)
            self._waiting.pop(key, None)
        for key in set(self._waiting) - set(self._seen):
            del self._waiting[key]      # rebuilt elsewhere (POST /rebuild, the CLI)
        return done

    async def _rebuild(self, sc: Any) -> int:
        key = sc.key()
        interval = DEFAULT_INTERVAL_S
        try:
            team = await self._resolve(sc)
            interval = team.rebuild_interval_s
            self.rebuilds += 1
            async with asyncio.timeout(self._timeout):
                await self._bases.for_team(team).rebuild(sc)
            return 1
        except Exception as exc:  # noqa: BLE001 - one scope's problem never stops the others
            self.failures += 1
            log.warning("knowledge rebuild of %s failed: %s", sc, type(exc).__name__)
            return 0
        finally:
            self._next[key] = self._clock() + interval

    async def run(self, period_s: float) -> None:
        """Sweep every ``period_s`` seconds until cancelled (errors are logged, never raised)."""
        while True:
            try:
                await self.sweep_once()
            except Exception as exc:  # noqa: BLE001 - e.g. the object store unreachable: next period
                log.warning("knowledge sweep failed: %s", type(exc).__name__)
            await asyncio.sleep(period_s)


def index_view(result: Any) -> dict[str, Any]:
    """What a tool result or the API shows of how a search was answered (``degraded_reason`` None:
    the normal hybrid search; ``embedder_changed``: lexical only until ``lexical_scopes`` are rebuilt)."""
    return result.index.model_dump(mode="json")


def hit_view(hit: Any, *, max_chars: int = 1200) -> dict[str, Any]:
    """What a tool result shows of a hit (text bounded)."""
    return {"title": hit.title, "kind": hit.kind, "section": hit.section, "source": hit.source,
            "url": hit.url, "score": round(float(hit.score), 4), "text": hit.text[:max_chars]}

