"""The egress allow-list over the public API, and SSRF through the public API.

* ``GET/PUT /api/v1/admin/egress-allowlist`` (+ ``/audit``): global admin only (org admin and team
  tokens 403, no token 401), entries validated (422 naming the entry), stored canonically, every
  change audited with what was added and removed.
* A team's config set over the config API points ``integrations.prometheus.url`` at an internal
  server; a run started over the agent API calls the tool through the real tool executor with the
  team's effective config: the call is refused, the server sees nothing, and the run's recorded
  tool call (read back over the agent API) holds the refusal, not the body. Once the global admin
  allow-lists exactly that host:port, the same call goes through.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from security_kit import STRICT, Sentinel

from actors.engine.tool_executor import ToolCallRequest, ToolExecutorCore
from config_service.services import config as config_svc
from config_service.testing import config_harness
from incidentfox.db import make_async_engine, session_factory
from incidentfox.egress import PolicySource
from incidentfox.egress.store import loader_for
from incidentfox.runs.runner import NullRunner
from serve_apps.agent_api import create_agent_app

PATH = "/api/v1/admin/egress-allowlist"


@pytest.fixture
async def cs(db_url: str, tmp_path: Any):
    async with config_harness(db_url=db_url, home=tmp_path, egress_allow=["203.0.113.7:443"]) as harness:
        await harness.create_org("acme")
        await harness.create_node("acme", "payments", kind="team")
        yield harness


def code(r: httpx.Response) -> str:
    return r.json()["error"]["code"]


async def test_only_the_global_admin_reads_or_edits_the_allow_list(cs: Any) -> None:
    org, team = await cs.org_token("acme"), await cs.team_token("acme", "payments")
    body = {"entries": [{"entry": "10.0.0.0/8"}]}
    for token in (org, team):
        assert (await cs.call("GET", PATH, token=token)).status_code == 403
        r = await cs.call("PUT", PATH, token=token, json=body)
        assert r.status_code == 403 and code(r) == "forbidden"
        assert (await cs.call("GET", PATH + "/audit", token=token)).status_code == 403
    assert (await cs.client.put(PATH, json=body)).status_code == 401
    assert (await cs.call("GET", PATH)).json() == {"entries": [], "operator_entries": ["203.0.113.7:443"]}


async def test_entries_are_validated_canonical_and_every_change_is_audited(cs: Any) -> None:
    for bad in ("0x7f.1", "host:99999", "10.0.0.1/8", "*"):
        r = await cs.call("PUT", PATH, json={"entries": [{"entry": "ok.example.com"}, {"entry": bad}]})
        assert r.status_code == 422 and code(r) == "invalid_egress_entry", bad
        assert r.json()["error"]["details"] == {"index": 1, "entry": bad}
    assert (await cs.call("PUT", PATH, json={"entries": ["x"]})).status_code == 422
    assert (await cs.call("GET", PATH)).json()["entries"] == []

    r = await cs.call("PUT", PATH, json={"entries": [{"entry": "Prometheus.Corp.Example:9090", "comment": "prom"},
                                                     {"entry": "[fd00::/8]:443"}]})
    assert r.status_code == 200, r.text
    assert [e["entry"] for e in r.json()["entries"]] == ["[fd00::/8]:443", "prometheus.corp.example:9090"]
    assert r.json()["changes"]["added"] == ["prometheus.corp.example:9090", "[fd00::/8]:443"]
    assert r.json()["entries"][1]["added_by"] == "admin" and r.json()["entries"][1]["comment"] == "prom"
    r = await cs.call("PUT", PATH, json={"entries": [{"entry": "prometheus.corp.example:9090", "comment": "prom"}]})
    assert r.json()["changes"] == {"added": [], "removed": ["[fd00::/8]:443"], "comment_changed": []}
    await cs.call("PUT", PATH, json={"entries": [{"entry": "prometheus.corp.example:9090", "comment": "prom"}]})

    history = (await cs.call("GET", PATH + "/audit")).json()["items"]
    assert [h["diff"]["removed"] for h in history] == [["[fd00::/8]:443"], []]     # the no-op wrote nothing
    assert all(h["action"] == "egress_allowlist.update" and h["actor"] == "admin" and h["org_id"] is None
               for h in history)
    page = (await cs.call("GET", PATH + "/audit?limit=1")).json()
    assert len(page["items"]) == 1 and page["next_cursor"] is not None


async def test_a_team_config_pointing_at_an_internal_server_is_refused_end_to_end(cs: Any, db_url: str,
                                                                                  sentinel: Sentinel) -> None:
    team = await cs.team_token("acme", "payments")
    r = await cs.patch("acme", "payments", {"integrations": {"prometheus": {"url": sentinel.url(),
                                                                            "token": "prom-secret-123456"}}})
    assert r.status_code == 200, r.text

    agent_app = create_agent_app(settings=cs.settings, runner=NullRunner())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=agent_app), base_url="http://agent") as agent:
        run = await agent.post("/run", json={"text": "is prometheus up?"}, headers=cs.auth(team))
        assert run.status_code == 202, run.text
        run_id = run.json()["run_id"]

        # What the engine hands the tool executor: the team's effective config, secrets decrypted.
        engine = make_async_engine(db_url)
        async with session_factory(engine)() as s:
            effective = await config_svc.get_effective_config(s, org_id="acme", node_id="payments",
                                                              reveal_secrets=True, settings=cs.settings)
        await engine.dispose()
        source = PolicySource(STRICT, load=loader_for(db_url), ttl_s=3600)
        core = ToolExecutorCore(db_url, egress=source)

        async def call() -> Any:
            out = await core.call(ToolCallRequest(run_id=run_id, org_id="acme", team_id="payments", agent="metrics",
                                                  tool="prometheus_query", args={"query": "up"},
                                                  integrations=effective["integrations"],
                                                  allowed=frozenset({"prometheus_query"})))
            await core.flush()
            return out.result

        refused = await call()
        assert refused.error == "egress_refused" and "loopback" in refused.message
        assert sentinel.requests == [] and sentinel.secret not in refused.model_dump_json()
        view = (await agent.get(f"/runs/{run_id}", headers=cs.auth(team))).json()
        assert [t["status"] for t in view["tool_calls"]] == ["error"]
        assert "refused: loopback" in view["tool_calls"][0]["error"] and sentinel.secret not in str(view)

        # The global admin admits exactly this host:port; another port stays refused.
        r = await cs.call("PUT", PATH, json={"entries": [{"entry": f"127.0.0.1:{sentinel.port + 1}"}]})
        assert r.status_code == 200
        source.invalidate()
        assert (await call()).error == "egress_refused" and sentinel.requests == []
        await cs.call("PUT", PATH, json={"entries": [{"entry": f"127.0.0.1:{sentinel.port}"}]})
        source.invalidate()
        admitted = await call()
        assert admitted.ok and len(sentinel.requests) == 1
        assert sentinel.requests[0][1].startswith("/api/v1/query")
    await agent_app.state.engine.dispose()
