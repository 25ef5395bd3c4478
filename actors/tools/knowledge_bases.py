"""The knowledge bases a process uses, and the debounced rebuild of a changed index.

* :class:`TeamKnowledge` is what one team's knowledge use is built from: its org and team (the
  scopes it may read: its own documents and its org's, :func:`incidentfox.knowledge.scopes_visible_to`)
  and its config's ``knowledge`` section. It comes from the run's config snapshot, never from a tool
  argument or a prompt, so a search can never reach another team's or org's documents. It pickles
  (it rides in a ToolCallRequest); ``repr`` never shows the embeddings key or the LLM key.
* :class:`KnowledgeBases` holds one :class:`~incidentfox.knowledge.KnowledgeBase` per embedder (and
  summariser) configuration over the platform's one object store, built lazily.
* :class:`Freshness` rebuilds a scope whose documents changed since its index was built, lazily on
  the next search and at most once per ``knowledge.rebuild_interval_s`` per scope and process, one
  rebuild at a time (single flight): a burst of 1,000 finished runs, each writing its past-incident
  document, costs a handful of rebuilds, not 1,000. A search waits for a running rebuild only
  ``wait_s`` seconds, then reads the current index (a reader never sees a half-written one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from config_service import LLMConfig, TeamConfig

log = logging.getLogger(__name__)

SEARCH_WAIT_S = 2.0     # how long a search waits for a rebuild it started before reading the current index


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
    replaces the offline default for teams that configure none (tests, benchmarks)."""

    def __init__(self, store: Any = None, *, summariser_for: SummariserFactory | None = None,
                 max_bases: int = 64, embedder: Any = None, freshness: Freshness | None = None) -> None:
        self._store = store
        self._embedder = embedder     # for teams without `knowledge.embeddings` (None: the offline default)
        self._summariser_for = summariser_for
        self._bases: dict[tuple[Any, ...], Any] = {}
        self._max = max_bases
        self.freshness = freshness or Freshness()

    def store(self) -> Any:
        if self._store is None:
            from incidentfox.object_store import object_store_from_settings
            from incidentfox.settings import get_settings

            self._store = object_store_from_settings(get_settings())
        return self._store

    def for_team(self, team: TeamKnowledge) -> Any:
        from incidentfox.knowledge import KnowledgeBase

        key = team.cache_key()
        kb = self._bases.get(key)
        if kb is None:
            embedder = self._embedder
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

    async def search(self, team: TeamKnowledge, query: str, *, kinds: Collection[str] | None = None,
                     top_k: int | None = None, wait_s: float = SEARCH_WAIT_S) -> list[Any]:
        """The best hits for ``query`` over the team's scopes (its own and its org's), each scope's
        index freshened first (debounced, :class:`Freshness`)."""
        kb = self.for_team(team)
        scopes = team.scopes()
        await asyncio.gather(*(self.freshness.ensure(kb, s, interval_s=team.rebuild_interval_s, wait_s=wait_s)
                               for s in scopes))
        return list(await kb.search(scopes, query, top_k=top_k or team.top_k, kinds=kinds))


async def is_stale(kb: Any, scope: Any) -> bool:
    """Whether ``scope`` needs a rebuild: its documents changed since its current index was built,
    the index was built with another embedder, or it has documents and no index."""
    info = await kb.index_info(scope)
    if info is None:
        return bool(await kb.list_documents(scope))
    return bool(info.stale) or info.embedder != kb.embedder.name


class Freshness:
    """Debounced, single-flight rebuilds per scope (module docstring). ``clock`` is injectable."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._checked: dict[tuple[int, str], float] = {}
        self._tasks: dict[tuple[int, str], asyncio.Task[Any]] = {}
        self.rebuilds = 0     # rebuilds this process started (for tests and the benchmark)

    def _key(self, kb: Any, scope: Any) -> tuple[int, str]:
        return id(kb), scope.key()

    def forget(self, kb: Any, scope: Any) -> None:
        """Check ``scope`` again on the next search (after an explicit rebuild or a deletion)."""
        self._checked.pop(self._key(kb, scope), None)

    async def ensure(self, kb: Any, scope: Any, *, interval_s: float, wait_s: float = SEARCH_WAIT_S) -> None:
        key = self._key(kb, scope)
        task = self._tasks.get(key)
        if task is None or task.done():
            now = self._clock()
            last = self._checked.get(key)
            if last is not None and now - last < interval_s:
                return
            self._checked[key] = now
            try:
                if not await is_stale(kb, scope):
                    return
            except Exception as exc:  # noqa: BLE001 - a store hiccup: search what is there
                log.warning("knowledge index check failed: %s", type(exc).__name__)
                return
            self.rebuilds += 1
            task = asyncio.create_task(self._rebuild(kb, scope))
            self._tasks[key] = task
        try:
            async with asyncio.timeout(wait_s):
                await asyncio.shield(task)
        except TimeoutError:
            pass   # the rebuild goes on; this search reads the current index

    async def _rebuild(self, kb: Any, scope: Any) -> None:
        try:
            await kb.rebuild(scope)
        except Exception as exc:  # noqa: BLE001 - the current index stays; the next interval retries
            log.warning("knowledge rebuild failed: %s", type(exc).__name__)


def hit_view(hit: Any, *, max_chars: int = 1200) -> dict[str, Any]:
    """What a tool result shows of a hit (text bounded)."""
    return {"title": hit.title, "kind": hit.kind, "section": hit.section, "source": hit.source,
            "url": hit.url, "score": round(float(hit.score), 4), "text": hit.text[:max_chars]}

