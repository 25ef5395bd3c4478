"""Query embeddings from the knowledge app, so a process that only searches never loads torch.

Investigation actors and tool executors search the knowledge base (their consult, ``search_runbooks``,
``similar_incidents``) but never build it. Loading the offline model there cost each of them ~800 MiB
(torch, sentence-transformers) for a few short queries per run. :class:`KnowledgeAppEmbedder`
instead asks the knowledge Serve app (``serve_apps/knowledge_api.py``, ``KnowledgeAPI.embed_query``),
the one process that holds the model anyway (its sweep rebuilds with it), for each query's vector.

It is the offline embedder as far as an index can tell (same ``name`` and ``dim``; the app answers
the name it embedded with, and another name is an :class:`EmbedderError`). Outside a Ray cluster
running that app (unit tests, the CLI, ``incidentfox kb``) it embeds with ``local`` in process, as
before; whether the app runs is looked up again every :data:`RECHECK_S` seconds. A search's query is
asked for once while in flight (a consult's two searches share it) and kept in a small LRU.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from incidentfox.knowledge import Embedder, EmbedderError, MiniLMEmbedder
from incidentfox.knowledge.embedders import preload

log = logging.getLogger(__name__)

APP = "knowledge"          # the Serve application's name (serve_apps/serve_config.yaml)
RECHECK_S = 30.0           # how long "the app is not running" is believed
CACHE = 256                # query vectors kept per process
CALL_TIMEOUT_S = 20.0


def knowledge_app_handle(app: str = APP) -> Any:
    """The Serve app's handle, or None when this process is not in a Ray cluster running it (blocking:
    run it in a thread)."""
    import ray

    if not ray.is_initialized():
        return None
    from ray import serve
    from ray.serve.exceptions import RayServeException

    try:
        return serve.get_app_handle(app)
    except RayServeException:
        return None


class KnowledgeAppEmbedder:
    """The offline embedder's vectors, computed by the knowledge app (see the module docstring)."""

    def __init__(self, local: Embedder | None = None, *, app: str = APP,
                 find: Callable[[str], Any] = knowledge_app_handle, clock: Callable[[], float] = time.monotonic) -> None:
        self.local = local or MiniLMEmbedder()
        self.name, self.dim = self.local.name, self.local.dim
        self.app = app
        self._find, self._clock = find, clock
        self._handle: Any = None
        self._checked = float("-inf")
        self._lookup = asyncio.Lock()
        self._queries: OrderedDict[str, asyncio.Task[np.ndarray]] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handle": None, "_checked": float("-inf"), "_lookup": asyncio.Lock(),
                "_queries": OrderedDict()}

    async def handle(self) -> Any:
        """The app's handle, or None (then this process embeds with ``local``)."""
        if self._handle is None and self._clock() - self._checked >= RECHECK_S:
            async with self._lookup:         # a burst of searches looks it up once
                if self._handle is None and self._clock() - self._checked >= RECHECK_S:
                    self._handle = await asyncio.to_thread(self._find, self.app)
                    self._checked = self._clock()
                    if self._handle is None:
                        log.info("knowledge app %r not running: query embeddings in process", self.app)
        return self._handle

    async def preload(self) -> bool:
        """Load ``local``'s model only when this process will embed itself (the app is not running):
        a fresh process's first search then does not wait for it."""
        if await self.handle() is not None:
            return False
        return await preload(self.local)

    async def embed(self, texts: list[str]) -> np.ndarray:
        handle = await self.handle()
        if handle is None or not texts:
            return await self.local.embed(texts)
        return np.vstack(await asyncio.gather(*(self._query(handle, t) for t in texts)))

    def _query(self, handle: Any, text: str) -> asyncio.Task[np.ndarray]:
        task = self._queries.get(text)
        if task is not None and not (task.done() and (task.cancelled() or task.exception() is not None)):
            self._queries.move_to_end(text)
            return task
        task = asyncio.ensure_future(self._remote(handle, text))
        self._queries[text] = task
        while len(self._queries) > CACHE:
            self._queries.popitem(last=False)
        return task

    async def _remote(self, handle: Any, text: str) -> np.ndarray:
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                name, vector = await handle.embed_query.remote(text)
        except Exception as exc:  # noqa: BLE001 - the replica gone, the app redeployed, a timeout: look it up again next time
            self._handle, self._checked = None, float("-inf")
            raise EmbedderError(f"the knowledge app did not embed the query: {type(exc).__name__}") from None
        if name != self.name:
            raise EmbedderError(f"the knowledge app embeds with {name!r}, not {self.name!r}")
        return np.asarray(vector, dtype=np.float32)
