"""The engine on Ray with the offline planner and the knowledge base: a run over the demo world
consults the team's runbooks, cites the checkout runbook (its mitigation steps among the recommended
actions, its sources in Slack), and is then written back as a past incident of its team, which the
team's next run names as "seen before"."""

from __future__ import annotations

import asyncio

import pytest
from engine_support import Engine, demo_config
from knowledge_kit import RUNBOOKS

from actors.tools.knowledge_bases import KnowledgeBases, TeamKnowledge
from incidentfox.knowledge import Document
from incidentfox.object_store import object_store_from_settings

pytestmark = [pytest.mark.ray, pytest.mark.slow]


async def test_offline_run_cites_the_runbook_and_is_remembered(engine: Engine) -> None:
    team = await engine.add_team(demo_config(channel="CKB", latency_ms=[5, 20]))
    tk = TeamKnowledge(org_id="acme", team_id=team)
    bases = KnowledgeBases(object_store_from_settings(engine.settings))    # the pool's store, offline embedder
    kb = bases.for_team(tk)
    for path in sorted(RUNBOOKS.glob("*.md")):
        await kb.put_document(Document(scope=tk.own_scope(), source=path.name, text=path.read_text(),
                                       url=f"https://wiki.example/{path.stem}"))
    await kb.rebuild(tk.own_scope())

    run_id = await engine.start(team, channel="CKB")
    run = await engine.wait_terminal(run_id, timeout=240)
    assert run.status == "succeeded", run.error
    cites = run.result["citations"]
    action = [c for c in cites if c["used_for"] == "action"]
    assert action and action[0]["title"].startswith("Checkout returns 5xx") and action[0]["section"] == "Mitigation"
    assert action[0]["url"] == "https://wiki.example/checkout-5xx-db-pool"
    assert any("(runbook: Checkout returns 5xx" in a for a in run.result["recommended_actions"])
    events = await engine.events(run_id)
    consulted = [e.data for e in events if e.kind == "note" and e.data.get("knowledge") == "consulted"]
    assert consulted and consulted[0]["runbooks"]
    calls = await engine.tool_calls(run_id)
    assert not any(c.tool in ("search_runbooks", "similar_incidents") and c.status == "error" for c in calls)
    final = await engine.slack.wait_for(lambda calls: [c for c in calls if c.method == "chat.update"
                                                       and c.args.get("channel") == "CKB"
                                                       and "*Sources*" in str(c.args["blocks"])])
    assert "wiki.example/checkout-5xx-db-pool" in str(final[-1].args["blocks"])

    # The run is now a past incident of its team (written after the final Slack edit); the next run
    # of the team names it.
    async with asyncio.timeout(60):
        while not (docs := [d for d in await kb.list_documents(tk.own_scope()) if d.kind == "incident"]):
            await asyncio.sleep(0.2)   # polling the object store, bounded by the timeout above
    assert [d.source for d in docs] == [f"incident/{run_id}"]
    await kb.rebuild(tk.own_scope())
    again = await engine.start(team, channel="CKB")
    second = await engine.wait_terminal(again, timeout=240)
    assert second.status == "succeeded", second.error
    seen = [c for c in second.result["citations"] if c["used_for"] == "seen_before"]
    notes = [e.data for e in await engine.events(again) if e.kind == "note" and "knowledge" in e.data]
    assert seen and seen[0]["source"] == f"incident/{run_id}", (notes, second.result["citations"])
