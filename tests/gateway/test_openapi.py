"""One OpenAPI document for every HTTP surface: valid OpenAPI 3, holding every route of every
surface at its deployed path (derived from the apps' route tables), served publicly at
``GET /api/openapi.json`` and committed as ``docs/openapi.json`` (kept current). Each surface also
serves its own ``/openapi.json`` without a token. The merge itself is a pure function."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from serve_apps import api_docs
from serve_apps.openapi_merge import Surface, full_path, merge_openapi

ROOT = Path(__file__).resolve().parents[2]
OK = {"200": {"description": "ok"}}


@pytest.fixture(scope="module")
def surfaces():
    return api_docs.surface_apps()


@pytest.fixture(scope="module")
def merged(surfaces):
    return api_docs.merge_apps(surfaces)


def test_merged_document_is_valid_openapi_3(merged):
    validate(merged)
    assert merged["openapi"].startswith("3.")


def test_every_route_of_every_surface_is_in_it(surfaces, merged):
    assert {name for name, _, _ in surfaces} == set(api_docs.SURFACES), "a surface was not built"
    expected = set()
    for name, prefix, app in surfaces:
        for ctx in iter_route_contexts(app.routes):
            if isinstance(ctx.original_route, APIRoute) and ctx.original_route.include_in_schema:
                expected |= {(name, full_path(prefix, ctx.path), m.lower()) for m in ctx.methods - {"HEAD"}}
    assert len(expected) > 60
    found = {(op["x-surface"], path, method) for path, item in merged["paths"].items()
             for method, op in item.items()}
    assert expected - found == set(), "routes missing from the merged document"
    assert found - expected == set(), "operations that no app serves"
    ids = [op["operationId"] for item in merged["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_prefixes_are_the_deployed_ones(merged):
    prefixes = api_docs.mount_prefixes()
    assert prefixes["agent"] == "/api/v1/agent" and prefixes["config"] == "/"
    for path in ("/health", "/api/v1/agent/runs", "/api/v1/sandbox/sessions", "/api/v1/tools/catalog",
                 "/api/v1/reports/{report_id}", "/webhooks/slack/events/o/{org}", "/api/v1/orgs"):
        assert path in merged["paths"], path
    assert merged["paths"]["/api/v1/agent/run"]["post"]["deprecated"] is True


def test_committed_docs_openapi_json_is_current():
    committed = ROOT / "docs" / "openapi.json"
    assert committed.read_text() == api_docs.render(), \
        "docs/openapi.json is stale: run `incidentfox docs openapi` (or `make docs`)"


def test_the_platform_document_and_each_surface_document_are_public(tmp_path, surfaces):
    from config_service import create_app
    from config_service.testing import make_settings

    doc = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}
    app = create_app(make_settings(db_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", home=tmp_path),
                     platform_openapi=lambda: doc)
    client = TestClient(app)
    assert client.get("/api/openapi.json").json() == doc                       # no token needed
    assert client.get("/openapi.json").json()["info"]["title"] == "IncidentFox config service"
    for name, _, surface in surfaces:
        r = TestClient(surface).get("/openapi.json")
        assert r.status_code == 200 and r.json()["paths"], name
        assert TestClient(surface).get("/openapi.json/x").status_code in (401, 404, 405), name


def _doc(paths: dict, schemas: dict) -> dict:
    return {"openapi": "3.1.0", "info": {"title": "x", "version": "1"}, "paths": paths,
            "components": {"schemas": schemas}}


def test_merge_namespaces_conflicting_schemas_and_shared_operation_ids():
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Decision"}}}}
    a = _doc({"/x": {"post": {"operationId": "decide", "requestBody": ref, "responses": OK}}},
             {"Decision": {"type": "object", "properties": {"a": {"type": "string"}}},
              "Shared": {"type": "string"}})
    b = _doc({"/x": {"post": {"operationId": "decide", "requestBody": ref, "responses": OK}},
              "/": {"get": {"operationId": "root", "responses": OK}}},
             {"Decision": {"type": "object", "properties": {"b": {"type": "string"}}},
              "Shared": {"type": "string"}})
    merged = merge_openapi([Surface("agent", "/api/v1/agent", a), Surface("sandbox", "/api/v1/sandbox/", b)])
    schemas = merged["components"]["schemas"]
    assert set(schemas) == {"Agent_Decision", "Sandbox_Decision", "Shared"}
    agent_op = merged["paths"]["/api/v1/agent/x"]["post"]
    sandbox_op = merged["paths"]["/api/v1/sandbox/x"]["post"]
    assert agent_op["requestBody"]["content"]["application/json"]["schema"]["$ref"] \
        == "#/components/schemas/Agent_Decision"
    assert sandbox_op["requestBody"]["content"]["application/json"]["schema"]["$ref"] \
        == "#/components/schemas/Sandbox_Decision"
    assert (agent_op["operationId"], sandbox_op["operationId"]) == ("agent_decide", "sandbox_decide")
    assert merged["paths"]["/api/v1/sandbox"]["get"]["operationId"] == "root"      # unique: unchanged
    assert agent_op["tags"] == ["agent"] and agent_op["x-surface"] == "agent"
    validate(merged)
    assert a["components"]["schemas"]["Decision"]["properties"] == {"a": {"type": "string"}}   # inputs untouched


def test_two_surfaces_claiming_one_path_is_an_error():
    doc = _doc({"/api/v1/agent/runs": {"get": {"responses": OK}}}, {})
    other = _doc({"/runs": {"get": {"responses": OK}}}, {})
    with pytest.raises(ValueError, match="served by both"):
        merge_openapi([Surface("config", "/", doc), Surface("agent", "/api/v1/agent", other)])


def test_cli_writes_and_checks_the_document(tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    out = tmp_path / "openapi.json"
    runner = CliRunner()
    assert runner.invoke(app, ["docs", "openapi", "--out", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["paths"]
    assert runner.invoke(app, ["docs", "openapi", "--out", str(out), "--check"]).exit_code == 0
    out.write_text("{}")
    assert runner.invoke(app, ["docs", "openapi", "--out", str(out), "--check"]).exit_code == 1


async def test_tools_catalog_pages_like_every_list():
    from actors.tools.registry import catalog
    from serve_apps.tools_api import create_tools_app

    app = create_tools_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tools") as client:
        whole = (await client.get("/catalog")).json()
        assert whole["tools"] == whole["items"] == catalog() and whole["next_cursor"] is None
        seen, cursor = [], None
        while True:
            body = (await client.get("/catalog", params={"limit": 7, **({"cursor": cursor} if cursor else {})})).json()
            assert len(body["items"]) <= 7 and body["tools"] == body["items"]
            seen += body["items"]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == catalog() and len(catalog()) > 7
        r = await client.get("/catalog", params={"cursor": "WzFd"})   # [1]: not a (category, name) key
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_cursor"
