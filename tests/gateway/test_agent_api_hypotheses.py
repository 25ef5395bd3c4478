"""The run's API view carries the RCA's follow-up hypotheses (``GET /runs/{id}`` → ``result.hypotheses``)."""

from __future__ import annotations

import httpx
import pytest
from gateway_kit import seed_tenants, settings_for

from incidentfox.contracts import RCA, Hypothesis, RunStatus
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs import store
from serve_apps.agent_api import create_agent_app

RCA_WITH_FOLLOW_UPS = RCA(
    summary="api-1 crash-loops on a missing setting",
    notes=["Follow-ups ended by the time budget (investigation.time_budget_s = 30 s) after 1 round(s)"],
    hypotheses=[Hypothesis(round=1, hypothesis="pod shop/api-1 is crash-looping (5 restarts): read its previous logs",
                           tool="kubernetes_get_pod_logs", found="40 log lines from api-1, 3 errors")])


class RcaRunner:
    """Completes each run at once with :data:`RCA_WITH_FOLLOW_UPS` as its result, as the engine does."""

    def __init__(self, database_url: str) -> None:
        self._sessions = session_factory(make_async_engine(database_url))

    async def submit(self, *, run_id: str, org_id: str, team_id: str) -> None:
        async with self._sessions() as s:
            if await store.claim(s, run_id=run_id, owner="rca-runner", lease_s=30):
                await store.transition(s, run_id=run_id, to=RunStatus.SUCCEEDED,
                                       result=RCA_WITH_FOLLOW_UPS.model_dump(mode="json"))
            await s.commit()

    async def cancel(self, *, run_id: str) -> None:
        return None

    async def attach(self, **_: object) -> None:
        return None


@pytest.fixture
async def api(db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    toks = await seed_tenants(db_url, settings)
    app = create_agent_app(settings=settings, runner=RcaRunner(db_url), sse_poll_s=0.05, sse_max_s=5)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        yield app, client, toks
    await app.state.engine.dispose()


async def test_the_run_view_shows_each_hypothesis_and_what_it_found(api) -> None:
    app, client, toks = api
    headers = {"Authorization": f"Bearer {toks['acme/payments']}"}
    r = await client.post("/runs", json={"text": "why is api-1 restarting?", "services": ["api"]}, headers=headers)
    assert r.status_code == 202, r.text
    await app.state.dispatch_tasks.drain(10)
    view = (await client.get(f"/runs/{r.json()['run_id']}", headers=headers)).json()
    assert view["status"] == "succeeded"
    assert view["result"]["hypotheses"] == [{"round": 1, "tool": "kubernetes_get_pod_logs",
                                             "hypothesis": "pod shop/api-1 is crash-looping (5 restarts): read its "
                                                           "previous logs",
                                             "found": "40 log lines from api-1, 3 errors"}]
    assert "time budget" in view["result"]["notes"][0]
    assert RCA.model_validate(view["result"]).hypotheses == RCA_WITH_FOLLOW_UPS.hypotheses
