"""From a real, signed fixture delivery to the write: the gateway records the run with its
AnswerTarget, the engine's answer step (what a finished run calls after its Slack post) writes to a
local server that speaks the source's API, records each outcome as a run ``note`` event, and a
redelivery of the same webhook neither starts a second run nor posts a second answer. Bad config
ends as a clear note on the run. No Ray: the step is called as the run's actor calls it (the engine
test, tests/engine/test_engine_answerback.py, runs it inside a real run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gateway_kit import DEFAULT_ROUTES, StaticRoutes, client_for, load, make_core, signed

from actors.answerback.dispatch import answer_run
from actors.answerback.http import Outbound
from actors.answerback.markdown import marker
from config_service import TeamConfig
from incidentfox.contracts import RCA, RootCause
from incidentfox.links import run_url
from incidentfox.runs import store
from incidentfox.runs.answers import answers_of
from tests.answerback_kit import FakeGitHub, FakeIncidentIo, FakePagerDuty, rsa_pem
from tests.tools_fakes import FakeHTTP

PEM, PUBLIC = rsa_pem()
RCA_ = RCA(summary="The deploy of checkout broke it.",
           root_causes=[RootCause(entity="deployment/checkout", description="bad image", confidence=0.7)])
ROUTES = {**DEFAULT_ROUTES, ("incidentio_team_id", "01fcndv6p870ea6s7tk1dsydg0"): ("acme", "payments"),
          ("slack_channel_id", "C02AW36C1M5"): ("acme", "payments")}


async def deliver(core: Any, source: str, body: bytes, **kw: Any) -> dict[str, Any]:
    async with client_for(core) as client:
        r = await client.post(f"/{source}", content=body, headers=signed(source, body, **kw))
    assert r.status_code == 200, r.text
    return r.json()


# The claims of the fixtures' team: their repository, the fake PagerDuty incident's service, the
# incident.io fixture's "Affected Team" catalog entry.
CLAIMS = {"github_repos": ["codertocat/hello-world"], "pagerduty_service_ids": ["PSVC001"],
          "incidentio_team_ids": ["01FCNDV6P870EA6S7TK1DSYDG0"]}


async def finish_step(core: Any, run_id: str, integrations: dict[str, Any],
                      routing: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    async with core.sessions() as s:
        run = await store.get_run(s, run_id)
    notes: list[dict[str, Any]] = []
    # As the engine calls it once the run is succeeded and its Slack answer posted (investigation.py).
    await answer_run(sessions=core.sessions, run_id=run.id, trigger=run.trigger, rca=RCA_,
                     integrations=TeamConfig({"integrations": integrations}).integrations,
                     run_link=run_url("https://incidentfox.example", run.id), since=run.created_at,
                     out=Outbound(first_s=0.001), note=notes.append, routing=CLAIMS if routing is None else routing)
    return notes


@pytest.fixture
async def core(sqlite_url: str) -> Any:
    core = make_core(sqlite_url, routes=StaticRoutes(ROUTES))
    yield core
    await core.engine.dispose()


async def test_github_check_run_failure_answers_with_a_check_run(fixtures_dir: Path, core: Any,
                                                                 http: FakeHTTP) -> None:
    body = load(fixtures_dir, "github/check_run.completed.failure.json")
    sha = json.loads(body)["check_run"]["head_sha"]
    gh = FakeGitHub(http, public_key=PUBLIC, app_id="31337", installation_id=4, repo="Codertocat/Hello-World")
    gh.commit(sha)
    first = await deliver(core, "github", body, event="check_run")
    run_id = first["run_id"]
    integrations = {"github": {"answer_back": True, "app_id": "31337", "private_key": PEM, "installation_id": 4,
                               "api_url": http.url}}
    notes = await finish_step(core, run_id, integrations)
    assert notes == [{"answer_back": "posted", "destination": "github.check_run",
                      "external_id": str(gh.check_runs[0]["id"])}]
    [check] = gh.check_runs
    assert check["external_id"] == run_id and check["head_sha"] == sha
    link = run_url("https://incidentfox.example", run_id)
    assert link and link in check["output"]["summary"] and check["details_url"] == link
    # GitHub redelivers the same body: a duplicate, same run; the finish step again posts nothing.
    again = await deliver(core, "github", body, event="check_run")
    assert again.get("duplicate") is True and again["run_id"] == run_id
    assert (await finish_step(core, run_id, integrations))[0]["answer_back"] == "already_posted"
    assert len(gh.check_runs) == 1
    assert PEM not in json.dumps(notes)


async def test_github_comment_mention_answers_in_the_issue(fixtures_dir: Path, core: Any, http: FakeHTTP) -> None:
    data = json.loads(load(fixtures_dir, "github/issue_comment.created.with-installation.json"))
    data["comment"]["body"] = "@incidentfox why is checkout failing?"
    body = json.dumps(data).encode()
    repo, number, installation = data["repository"]["full_name"], data["issue"]["number"], data["installation"]["id"]
    gh = FakeGitHub(http, public_key=PUBLIC, app_id="31337", installation_id=installation, repo=repo)
    gh.issue(number)
    run_id = (await deliver(core, "github", body, event="issue_comment"))["run_id"]
    integrations = {"github": {"answer_back": True, "app_id": 31337, "private_key": PEM, "api_url": http.url}}
    [note] = await finish_step(core, run_id, integrations)
    assert note["answer_back"] == "posted" and note["destination"] == "github.comment"
    [comment] = gh.comments[number]
    assert marker(run_id) in comment["body"] and "deployment/checkout" in comment["body"]
    assert http.calls(f"/app/installations/{installation}/access_tokens"), "the delivery's installation acts"


async def test_pagerduty_triggered_answers_with_a_note_and_acknowledges(fixtures_dir: Path, core: Any,
                                                                       http: FakeHTTP) -> None:
    body = load(fixtures_dir, "pagerduty/incident.triggered.json")
    incident = json.loads(body)["event"]["data"]["id"]
    pd = FakePagerDuty(http, incident_id=incident, token="pd-key-0123")
    run_id = (await deliver(core, "pagerduty", body))["run_id"]
    integrations = {"pagerduty": {"answer_back": True, "token": "pd-key-0123", "from_email": "bot@acme.example",
                                  "set_status": "acknowledged", "api_url": http.url}}
    notes = await finish_step(core, run_id, integrations)
    assert [(n["destination"], n["answer_back"]) for n in notes] == [("pagerduty.note", "posted"),
                                                                     ("pagerduty.status", "posted")]
    assert pd.status == "acknowledged" and len(pd.notes) == 1 and pd.notes[0]["from"] == "bot@acme.example"
    # PagerDuty retries the webhook (same event id): a duplicate, nothing new is written.
    again = await deliver(core, "pagerduty", body)
    assert again.get("duplicate") is True and again["run_id"] == run_id
    await finish_step(core, run_id, integrations)
    assert len(pd.notes) == 1 and len(pd.puts) == 1


async def test_incidentio_created_answers_with_an_incident_update(fixtures_dir: Path, core: Any,
                                                                 http: FakeHTTP) -> None:
    body = load(fixtures_dir, "incident_io/public_incident.incident_created_v2.json")
    incident = json.loads(body)["public_incident.incident_created_v2"]
    iio = FakeIncidentIo(http, api_key="iio-key-0123")
    iio.incident(incident["id"])
    iio.incidents[incident["id"]] = incident      # the API's IncidentV2 is the webhook's incident object
    run_id = (await deliver(core, "incidentio", body))["run_id"]
    integrations = {"incidentio": {"answer_back": True, "api_key": "iio-key-0123", "api_url": http.url}}
    # The fixture's incident names the team by its "Affected Team" catalog entry.
    [note] = await finish_step(core, run_id, integrations)
    assert note["answer_back"] == "posted" and note["destination"] == "incidentio.update", note
    [update] = iio.updates.values()
    assert update["incident_id"] == incident["id"] and marker(run_id) in update["message"]


async def test_bad_config_is_a_note_on_the_run_and_nothing_is_sent(fixtures_dir: Path, core: Any,
                                                                  http: FakeHTTP) -> None:
    body = load(fixtures_dir, "pagerduty/incident.triggered.json")
    run_id = (await deliver(core, "pagerduty", body))["run_id"]
    integrations = {"pagerduty": {"answer_back": True, "token": "pd-key-0123", "api_url": http.url}}
    [note] = await finish_step(core, run_id, integrations)
    assert note["answer_back"] == "failed" and note["reason"] == "bad_config"
    assert "integrations.pagerduty.from_email" in note["message"] and "pd-key-0123" not in json.dumps(note)
    assert http.requests == []
    async with core.sessions() as s:
        assert await answers_of(s, run_id) == []
