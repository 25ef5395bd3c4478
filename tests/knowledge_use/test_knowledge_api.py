"""The knowledge-base API: upload, list, delete, rebuild and search, each authorised like the other
team/org routes; a team sees its team's and its org's documents, an org admin its org's, and nobody
ever another org's."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from gateway_kit import ADMIN_TOKEN, seed_tenants, settings_for
from knowledge_kit import RUNBOOKS, bases

from incidentfox.knowledge.storage import KnowledgeStore
from serve_apps.knowledge_api import MAX_DOCUMENT_BYTES, create_knowledge_app

RUNBOOK = (RUNBOOKS / "checkout-5xx-db-pool.md").read_text()


@pytest.fixture
async def api(sqlite_url, tmp_path):
    settings = settings_for(sqlite_url, tmp_path)
    tokens = await seed_tenants(sqlite_url, settings)
    app = create_knowledge_app(settings, bases=bases(tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kb") as client:
        def as_(who: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens[who] if who != 'admin' else ADMIN_TOKEN}"}
        yield client, as_


async def _upload(client, headers, name, text=RUNBOOK, **params):
    return await client.post("/documents", params=params, headers=headers,
                             json={"name": name, "text": text, "url": f"https://wiki.example/{name}"})


async def test_a_team_reads_its_own_and_its_orgs_documents_never_another_orgs(api) -> None:
    client, as_ = api
    assert (await _upload(client, as_("acme/payments"), "team-runbook.md")).status_code == 201
    org = await _upload(client, as_("acme"), "org-runbook.md", text="# Org wide: disk full\n\n## Mitigation\n\n- grow the disk")
    assert org.status_code == 201 and org.json()["scope"] == {"org": "acme", "team": None}
    assert (await _upload(client, as_("globex/ops"), "globex-secret.md", text="# Globex pool\n\nglobex checkout 503 pool exhausted")).status_code == 201

    listed = await client.get("/documents", headers=as_("acme/payments"))
    assert listed.status_code == 200
    body = listed.json()
    assert set(body) >= {"items", "next_cursor"}
    assert sorted(d["source"] for d in body["items"]) == ["upload/org-runbook.md", "upload/team-runbook.md"]
    # Another team of the same org sees the org's document, not its sibling's.
    sibling = (await client.get("/documents", headers=as_("acme/search"))).json()["items"]
    assert [d["source"] for d in sibling] == ["upload/org-runbook.md"]
    # The org admin sees the org's own; with ?team= a team's of its org.
    assert [d["source"] for d in (await client.get("/documents", headers=as_("acme"))).json()["items"]] == \
        ["upload/org-runbook.md"]
    # Never another org: by token, by parameter, or through an admin of another org.
    assert (await client.get("/documents", params={"org": "globex"}, headers=as_("acme/payments"))).status_code == 403
    assert (await client.get("/documents", params={"team": "ops"}, headers=as_("acme/payments"))).status_code == 403
    assert (await client.get("/documents", params={"org": "acme"}, headers=as_("globex"))).status_code == 403

    assert (await client.post("/rebuild", headers=as_("acme/payments"))).status_code == 200
    assert (await client.post("/rebuild", headers=as_("acme"))).status_code == 200
    assert (await client.post("/rebuild", params={"org": "globex", "team": "ops"}, headers=as_("admin"))).status_code == 200
    found = await client.post("/search", headers=as_("acme/payments"), json={"query": "checkout 503 pool exhausted"})
    assert found.status_code == 200
    results = found.json()["results"]
    assert results and all("globex" not in r["text"] for r in results)
    assert {r["source"] for r in results} <= {"upload/team-runbook.md", "upload/org-runbook.md"}
    assert results[0]["url"] == "https://wiki.example/team-runbook.md"
    other = (await client.post("/search", headers=as_("globex/ops"), json={"query": "checkout 503 pool"})).json()
    assert {r["source"] for r in other["results"]} == {"upload/globex-secret.md"}


async def test_delete_is_for_the_owning_scope_only(api) -> None:
    client, as_ = api
    doc = (await _upload(client, as_("acme"), "org-runbook.md")).json()
    # A team token cannot delete its org's document (it is not in its own scope): 404, nothing leaks.
    gone = await client.delete(f"/documents/{doc['doc_id']}", headers=as_("acme/payments"))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "document_not_found"
    assert (await client.delete(f"/documents/{doc['doc_id']}", headers=as_("globex"))).status_code == 404
    assert (await client.delete(f"/documents/{doc['doc_id']}", headers=as_("acme"))).status_code == 204
    assert (await client.get("/documents", headers=as_("acme"))).json()["items"] == []


async def test_bad_uploads_get_clear_errors(api) -> None:
    client, as_ = api
    team = as_("acme/payments")
    assert (await client.post("/documents", json={"name": "x.md", "text": "# x"})).status_code == 401
    bad_type = await client.post("/documents", headers=team, json={"name": "x.pdf", "text": "x", "media_type": "application/pdf"})
    assert bad_type.status_code == 422
    bad_name = await client.post("/documents", headers=team, json={"name": "../etc/passwd", "text": "x"})
    assert bad_name.status_code == 422
    bad_url = await client.post("/documents", headers=team, json={"name": "x.md", "text": "x", "url": "javascript:alert(1)"})
    assert bad_url.status_code == 422
    blank = await client.post("/documents", headers=team, json={"name": "x.md", "text": "   \n  "})
    assert blank.status_code == 400 and blank.json()["error"]["code"] == "invalid_document"
    big = await client.post("/documents", headers=team, json={"name": "big.md", "text": "a" * (MAX_DOCUMENT_BYTES + 1)})
    assert big.status_code == 413
    assert (await client.post("/documents", headers=as_("admin"), json={"name": "x.md", "text": "# x\n\ny"})).status_code == 400
    unknown = await client.post("/documents", headers=as_("acme"), params={"team": "nope"}, json={"name": "x.md", "text": "# x\n\ny"})
    assert unknown.status_code == 404


async def test_list_pages_with_the_one_cursor(api) -> None:
    client, as_ = api
    for i in range(5):
        assert (await _upload(client, as_("acme/payments"), f"rb-{i}.md", text=f"# runbook {i}\n\nrestart service {i}")).status_code == 201
    seen, cursor = [], None
    while True:
        page = (await client.get("/documents", headers=as_("acme/payments"),
                                 params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
        seen += [d["doc_id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    assert (await client.get("/documents", headers=as_("acme/payments"), params={"cursor": "junk!"})).status_code == 422


async def test_the_apps_sweep_rebuilds_what_was_uploaded_and_stops_with_the_app(sqlite_url, tmp_path) -> None:
    settings = settings_for(sqlite_url, tmp_path).model_copy(update={"knowledge_sweep_s": 0.05})
    tokens = await seed_tenants(sqlite_url, settings)
    kbs = bases(tmp_path)
    app = create_knowledge_app(settings, bases=kbs)
    headers = {"Authorization": f"Bearer {tokens['acme/payments']}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kb") as client:
        assert (await _upload(client, headers, "team-runbook.md")).status_code == 201
        # No explicit rebuild: the index does not exist yet, and searches read only what is built.
        assert (await client.post("/search", headers=headers, json={"query": "checkout 503"})).json()["results"] == []
        async with app.router.lifespan_context(app):       # the app's start: its sweep runs in the background
            sweep = app.state.sweep()
            async with asyncio.timeout(60):
                while sweep.rebuilds == 0:
                    await asyncio.sleep(0.05)   # waiting on the sweep's counter, bounded by the timeout
            async with asyncio.timeout(60):
                while (await client.post("/search", headers=headers,
                                         json={"query": "checkout 503 pool exhausted"})).json()["results"] == []:
                    await asyncio.sleep(0.05)
        assert sweep.rebuilds == 1 and sweep.failures == 0    # once: the scope is clean until it changes
        # Deleting marks the scope dirty again; the sweep (or an explicit rebuild) picks it up.
        doc_id = (await client.get("/documents", headers=headers)).json()["items"][0]["doc_id"]
        assert (await client.delete(f"/documents/{doc_id}", headers=headers)).status_code == 204
        store = KnowledgeStore(kbs.store())
        assert [str(s) for s in await store.dirty_scopes()] == ["acme/payments"]
        assert (await client.post("/rebuild", headers=headers)).status_code == 200
        assert await store.dirty_scopes() == []


async def test_search_after_an_embedder_change_is_lexical_and_says_so(sqlite_url, tmp_path) -> None:
    from knowledge_kit import WordsEmbedder

    from actors.tools.knowledge_bases import KnowledgeBases
    from incidentfox.object_store import LocalObjectStore

    class NewEmbedder(WordsEmbedder):
        name = "test-words-256-v2"

    settings = settings_for(sqlite_url, tmp_path)
    tokens = await seed_tenants(sqlite_url, settings)
    headers = {"Authorization": f"Bearer {tokens['acme/payments']}"}
    before = create_knowledge_app(settings, bases=bases(tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=before), base_url="http://kb") as client:
        assert (await _upload(client, headers, "team-runbook.md")).status_code == 201
        assert (await client.post("/rebuild", headers=headers)).status_code == 200
        normal = (await client.post("/search", headers=headers, json={"query": "checkout 503 pool exhausted"})).json()
        assert normal["index"] == {"degraded_reason": None, "lexical_scopes": []}
    # The same store, now read with another embedder (the team's knowledge.embeddings changed).
    kbs = KnowledgeBases(LocalObjectStore(tmp_path / "objects"), embedder=NewEmbedder())
    after = create_knowledge_app(settings, bases=kbs)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=after), base_url="http://kb") as client:
        found = await client.post("/search", headers=headers, json={"query": "checkout 503 pool exhausted"})
        assert found.status_code == 200         # not 409: answered from the existing tree
        body = found.json()
        assert body["index"] == {"degraded_reason": "embedder_changed", "lexical_scopes": ["acme/payments"]}
        assert body["results"][0]["source"] == "upload/team-runbook.md"
        sweep = after.state.sweep()
        assert await sweep.sweep_once() == 0 and await sweep.sweep_once() == 1    # picked up by itself
        healed = (await client.post("/search", headers=headers, json={"query": "checkout 503 pool exhausted"})).json()
        assert healed["index"]["degraded_reason"] is None and healed["results"]
