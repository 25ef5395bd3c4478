"""After a team changes its embedder, its searches do not fail: the existing tree answers
lexically (BM25 only) with ``index.degraded_reason`` in the result, the run's consult notes it, and
the team's own scope is marked for the sweep, which rebuilds it with the new embedder by itself."""

from __future__ import annotations

from knowledge_kit import WordsEmbedder, bases, seed_runbooks

from actors.engine.knowledge_use import KnowledgeStep
from actors.tools.base import ToolContext
from actors.tools.execute import execute
from actors.tools.knowledge_bases import KnowledgeBases, RebuildSweep, TeamKnowledge
from actors.tools.registry import TOOLS
from incidentfox.object_store import LocalObjectStore

BAD_DEPLOY = {"title": "High 5xx rate on frontend /checkout",
              "text": "checkout returns 503: could not obtain DB connection, pool exhausted", "services": ["checkout"]}
QUERY = "checkout 503 pool exhausted"


class NewEmbedder(WordsEmbedder):
    """Another model (the name is what an index records): its vectors must not meet the old ones."""

    name = "test-words-256-v2"

    def __init__(self) -> None:
        self.calls = 0

    async def embed(self, texts):
        self.calls += 1
        return await super().embed(texts)


def configured_anew(tmp_path) -> tuple[KnowledgeBases, NewEmbedder]:
    embedder = NewEmbedder()
    return KnowledgeBases(LocalObjectStore(tmp_path / "objects"), embedder=embedder), embedder


async def test_a_changed_embedder_answers_lexically_and_the_sweep_rebuilds_the_scope(tmp_path) -> None:
    t = TeamKnowledge(org_id="acme", team_id="sre", rebuild_interval_s=0)
    await seed_runbooks(bases(tmp_path), t)              # built with the old embedder
    new, embedder = configured_anew(tmp_path)
    kb = new.for_team(t)
    assert await kb.dirty_scopes() == []

    result = await new.search_result(t, QUERY)
    assert result.index.degraded_reason == "embedder_changed" and result.index.lexical_scopes == ["acme/sre"]
    assert result.hits and result.hits[0].title.startswith("Checkout returns 5xx")
    assert all(0 < h.score <= 1 for h in result.hits) and embedder.calls == 0     # BM25 only: no query vector
    assert await kb.dirty_scopes() == [t.own_scope()]         # counted as needing a rebuild

    ctx = ToolContext(org_id="acme", team_id="sre", run_id="r", knowledge=t, knowledge_bases=new)
    found = await execute(TOOLS["search_runbooks"], {"query": QUERY, "top_k": 2}, ctx)
    assert found.ok and found.data["index"] == {"degraded_reason": "embedder_changed", "lexical_scopes": ["acme/sre"]}
    assert found.data["results"] and "lexical only" in found.summary

    notes: list[dict] = []
    step = KnowledgeStep(team=t, bases=new, run_id="r1", note=notes.append)
    await step.consult(BAD_DEPLOY)      # uncalibrated scores: noted, nothing cited
    assert notes == [{"knowledge": "degraded", "reason": "embedder_changed"}] and step.runbooks == []

    async def resolve(sc):
        return t
    sweep = RebuildSweep(new, resolve, clock=lambda: 0.0)
    assert await sweep.sweep_once() == 0 and await sweep.sweep_once() == 1 and sweep.failures == 0
    assert (await kb.index_info(t.own_scope())).embedder == "test-words-256-v2"
    after = await new.search_result(t, QUERY)
    assert after.index.degraded_reason is None and after.index.lexical_scopes == []
    assert after.hits[0].title.startswith("Checkout returns 5xx") and embedder.calls > 0
    assert await kb.dirty_scopes() == [] and await sweep.sweep_once() == 0


async def test_an_org_index_is_not_marked_because_a_team_configured_another_embedder(tmp_path) -> None:
    t = TeamKnowledge(org_id="acme", team_id="sre")
    await seed_runbooks(bases(tmp_path), t, org_level=True)     # the org's, with the org's embedder
    new, _ = configured_anew(tmp_path)
    result = await new.search_result(t, QUERY)
    assert result.index.degraded_reason == "embedder_changed" and result.index.lexical_scopes == ["acme"]
    assert result.hits
    # Rebuilding the org's scope by the org's settings would not change its embedder: no marker,
    # so the sweep does not rebuild it over and over.
    assert await new.for_team(t).dirty_scopes() == []
