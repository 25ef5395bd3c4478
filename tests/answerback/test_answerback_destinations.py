"""Each destination against a local server that speaks its API: request shape (auth headers, the
App's JWT claims, bodies), once per run and destination (a repeat posts nothing; an attempt after a
lost answer finds the earlier post), rate limits (429 / GitHub's 403 + Retry-After honoured,
bounded) and bad config (a clear, secret-free error, nothing sent). On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import pytest

from actors.answerback import incidentio
from actors.answerback.dispatch import answer_back
from actors.answerback.http import Outbound
from actors.answerback.markdown import marker
from incidentfox.contracts import RCA, AnswerTarget, Evidence, RootCause, Trigger
from incidentfox.runs.answers import answers_of
from tests.answerback_kit import FakeGitHub, FakeIncidentIo, FakePagerDuty, new_run, rsa_pem
from tests.tools_fakes import FakeHTTP

RCA_ = RCA(summary="checkout v2.3.1 exhausted its DB pool",
           root_causes=[RootCause(entity="deployment/checkout", description="pool of 5 after the deploy",
                                  confidence=0.8, evidence=[Evidence(kind="log", source="loki_query",
                                                                     quote="~~~~ pool exhausted ~~~~")])],
           recommended_actions=["roll back checkout to v2.3.0"])
PEM, PUBLIC = rsa_pem()
PD_TOKEN = "pd-rest-key-secret-123"
IIO_KEY = "iio-api-key-secret-456"
# The claims of the run's team (acme/payments) in these tests: the fakes' repository, service, team.
ROUTING = {"github_repos": ["acme/shop"], "pagerduty_service_ids": ["PSVC001"], "incidentio_team_ids": ["01TEAMA"]}


def out() -> Outbound:
    return Outbound(first_s=0.001, max_wait_s=5.0)


def trigger(source: str, **target: Any) -> Trigger:
    return Trigger(source=source, delivery_id=f"d-{time.monotonic_ns()}", event_kind="x", title="Checkout errors",
                   answer_to=AnswerTarget(source=source, **target))


async def answer(sessions: Any, run_id: str, t: Trigger, integrations: dict[str, Any], o: Outbound | None = None):
    return await answer_back(sessions=sessions, run_id=run_id, trigger=t.model_dump(mode="json"),
                             integrations=integrations, rca=RCA_, title=t.title, out=o or out(),
                             run_link="https://incidentfox.example/runs/" + run_id, routing=ROUTING)


def github_cfg(http: FakeHTTP, **extra: Any) -> dict[str, Any]:
    return {"github": {"answer_back": True, "app_id": 4242, "private_key": PEM, "api_url": http.url, **extra}}


# ---- GitHub --------------------------------------------------------------------------------------

async def test_github_comment_through_the_app_once(http: FakeHTTP, sessions: Any) -> None:
    gh = FakeGitHub(http, public_key=PUBLIC, app_id="4242", installation_id=77, repo="acme/shop")
    gh.issue(12)
    t = trigger("github", repo="acme/shop", issue_number=12, installation_id=77)
    run_id = await new_run(sessions, t)
    o = out()
    [outcome] = await answer(sessions, run_id, t, github_cfg(http), o)
    assert outcome.status == "posted" and outcome.destination == "github.comment", outcome
    [comment] = gh.comments[12]
    assert outcome.external_id == str(comment["id"])
    body = comment["body"]
    assert "checkout v2.3.1 exhausted its DB pool" in body and "deployment/checkout" in body
    assert body.rstrip().endswith(marker(run_id)) and "roll back checkout" in body
    assert "~~~~ pool exhausted" not in body, "a quote must not close its fence"
    # The JWT: RS256, signed by the App's key, iss = app id, iat back-dated, at most 10 minutes.
    [claims] = gh.jwt_claims
    assert claims["iss"] == "4242" and claims["iat"] <= time.time() - 30
    assert 0 < claims["exp"] - claims["iat"] <= 600
    posted = next(r for r in http.requests if r.method == "POST" and r.path.endswith("/comments"))
    assert posted.headers["Authorization"] == f"Bearer {gh.tokens[0]}"
    assert posted.headers["X-GitHub-Api-Version"] == "2022-11-28"

    # The finish step again (a retried run, a second copy): nothing is posted, no new token.
    [again] = await answer(sessions, run_id, t, github_cfg(http), o)
    assert again.status == "already_posted" and again.external_id == outcome.external_id
    assert len(gh.comments[12]) == 1 and len(gh.tokens) == 1
    async with sessions() as s:
        [row] = await answers_of(s, run_id)
    assert (row.destination, row.status, row.attempts) == ("github.comment", "posted", 1)


async def test_github_check_run_on_the_failed_commit(http: FakeHTTP, sessions: Any) -> None:
    sha = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    gh = FakeGitHub(http, public_key=PUBLIC, app_id="4242", installation_id=9, repo="acme/shop")
    gh.commit(sha)
    t = trigger("github", repo="acme/shop", head_sha=sha)      # a repo webhook: no installation in it
    run_id = await new_run(sessions, t)
    [outcome] = await answer(sessions, run_id, t, github_cfg(http, installation_id=9))
    assert outcome.status == "posted" and outcome.destination == "github.check_run", outcome
    [run] = gh.check_runs
    assert run["name"] == "IncidentFox RCA" and run["head_sha"] == sha and run["external_id"] == run_id
    assert run["status"] == "completed" and run["conclusion"] == "neutral"
    assert run["output"]["title"] == "Checkout errors" and "deployment/checkout" in run["output"]["summary"]
    assert run["details_url"] == f"https://incidentfox.example/runs/{run_id}"


async def test_github_lost_answer_is_found_not_posted_again(http: FakeHTTP, sessions: Any) -> None:
    # The comment is written but GitHub answers 502: the retry looks first and finds it.
    gh = FakeGitHub(http, public_key=PUBLIC, app_id="4242", installation_id=77, repo="acme/shop")
    gh.issue(5)
    gh.fault("POST", "/repos/acme/shop/issues/5/comments", 502, commit=True)
    t = trigger("github", repo="acme/shop", issue_number=5, installation_id=77)
    run_id = await new_run(sessions, t)
    [outcome] = await answer(sessions, run_id, t, github_cfg(http))
    assert outcome.status == "already_posted" and len(gh.comments[5]) == 1, (outcome, gh.comments)
    assert outcome.external_id == str(gh.comments[5][0]["id"])


async def test_github_secondary_rate_limit_is_waited_out(http: FakeHTTP, sessions: Any) -> None:
    sha = "a" * 40
    gh = FakeGitHub(http, public_key=PUBLIC, app_id="4242", installation_id=77, repo="acme/shop")
    gh.commit(sha)
    gh.fault("POST", "/repos/acme/shop/check-runs", 403, {"Retry-After": "0"})
    gh.fault("POST", "/repos/acme/shop/check-runs", 429, {"x-ratelimit-remaining": "0",
                                                         "x-ratelimit-reset": str(int(time.time()))})
    t = trigger("github", repo="acme/shop", head_sha=sha, installation_id=77)
    run_id = await new_run(sessions, t)
    [outcome] = await answer(sessions, run_id, t, github_cfg(http))
    assert outcome.status == "posted" and len(gh.check_runs) == 1, outcome
    assert len([r for r in http.requests if r.path == "/repos/acme/shop/check-runs"]) == 3


async def test_a_long_retry_after_is_not_slept_through(http: FakeHTTP, sessions: Any) -> None:
    gh = FakeGitHub(http, public_key=PUBLIC, app_id="4242", installation_id=77, repo="acme/shop")
    gh.issue(3)
    gh.fault("POST", "/repos/acme/shop/issues/3/comments", 429, {"Retry-After": "3600"})
    t = trigger("github", repo="acme/shop", issue_number=3, installation_id=77)
    run_id = await new_run(sessions, t)
    [outcome] = await answer(sessions, run_id, t, github_cfg(http))
    assert (outcome.status, outcome.reason) == ("failed", "rate_limited")
    assert gh.comments.get(3, []) == []
    async with sessions() as s:
        [row] = await answers_of(s, run_id)
    assert row.status == "failed" and row.error.startswith("rate_limited")
    # The next attempt (the record is not posted) looks first, then posts once.
    [retry] = await answer(sessions, run_id, t, github_cfg(http))
    assert retry.status == "posted" and len(gh.comments[3]) == 1
    async with sessions() as s:
        [row] = await answers_of(s, run_id)
    assert (row.status, row.attempts) == ("posted", 2)
    gets = [r for r in http.requests if r.method == "GET" and r.path == "/repos/acme/shop/issues/3/comments"]
    assert len(gets) == 1


@pytest.mark.parametrize(("cfg", "reason", "says"), [
    ({"app_id": 1}, "bad_config", "integrations.github.private_key is not set"),
    ({"private_key": "k"}, "bad_config", "integrations.github.app_id is not set"),
    ({"app_id": 1, "private_key": "not a pem"}, "bad_config", "not a PEM RSA private key"),
    ({"app_id": 1, "private_key": PEM, "installation_id": "9"}, "bad_config", "integrations.github.installation_id"),
])
async def test_github_bad_config_is_a_clear_error_and_sends_nothing(http: FakeHTTP, sessions: Any, cfg: dict,
                                                                    reason: str, says: str) -> None:
    t = trigger("github", repo="acme/shop", issue_number=1)
    run_id = await new_run(sessions, t)
    integrations = {"github": {"answer_back": True, "api_url": http.url, **cfg}}
    [outcome] = await answer(sessions, run_id, t, integrations)
    assert (outcome.status, outcome.reason) == ("failed", reason) and says in outcome.message, outcome
    assert "BEGIN" not in outcome.message and "not a pem" not in outcome.message.replace("not a PEM", "")
    assert http.requests == []


async def test_answering_back_is_off_unless_the_team_turns_it_on(http: FakeHTTP, sessions: Any) -> None:
    t = trigger("github", repo="acme/shop", issue_number=1)
    run_id = await new_run(sessions, t)
    for integrations in ({}, {"github": {"app_id": 1, "private_key": PEM}},
                         {"github": {"answer_back": False, "app_id": 1}}):
        assert await answer(sessions, run_id, t, integrations) == []
    no_target = Trigger(source="slack", delivery_id="e", event_kind="app_mention")
    assert await answer(sessions, run_id, no_target, github_cfg(http)) == []
    foreign = Trigger(source="api", delivery_id="f", event_kind="api_request",
                      answer_to=AnswerTarget(source="github", repo="acme/shop", issue_number=1))
    assert await answer(sessions, run_id, foreign, github_cfg(http)) == [], "only the source's own parser names one"
    assert http.requests == []


# ---- PagerDuty -----------------------------------------------------------------------------------

def pd_cfg(http: FakeHTTP, **extra: Any) -> dict[str, Any]:
    return {"pagerduty": {"answer_back": True, "token": PD_TOKEN, "from_email": "sre-bot@acme.example",
                          "api_url": http.url, **extra}}


async def test_pagerduty_note_with_from_then_status(http: FakeHTTP, sessions: Any) -> None:
    pd = FakePagerDuty(http, incident_id="PT4KHLK", token=PD_TOKEN)
    t = trigger("pagerduty", incident_id="PT4KHLK")
    run_id = await new_run(sessions, t)
    note, status = await answer(sessions, run_id, t, pd_cfg(http, set_status="acknowledged"))
    assert (note.destination, note.status) == ("pagerduty.note", "posted"), note
    assert (status.destination, status.status, status.external_id) == ("pagerduty.status", "posted",
                                                                     "status:acknowledged")
    [stored] = pd.notes
    assert stored["from"] == "sre-bot@acme.example" and marker(run_id) in stored["content"]
    assert note.external_id == stored["id"]
    assert pd.puts == [{"incident": {"type": "incident_reference", "status": "acknowledged"}}]
    # Again: nothing more is written.
    again = await answer(sessions, run_id, t, pd_cfg(http, set_status="acknowledged"))
    assert [o.status for o in again] == ["already_posted", "already_posted"]
    assert len(pd.notes) == 1 and len(pd.puts) == 1


async def test_pagerduty_leaves_the_status_unless_allowed_and_never_reopens(http: FakeHTTP, sessions: Any) -> None:
    pd = FakePagerDuty(http, incident_id="P1", token=PD_TOKEN, status="resolved")
    t = trigger("pagerduty", incident_id="P1")
    run_id = await new_run(sessions, t)
    [note] = await answer(sessions, run_id, t, pd_cfg(http))      # set_status unset: the note only
    assert note.status == "posted" and pd.puts == []
    t2 = trigger("pagerduty", incident_id="P1")
    run2 = await new_run(sessions, t2)
    pd.fault("POST", "/incidents/P1/notes", 500, commit=True)     # lost answer → found by its marker
    note2, status2 = await answer(sessions, run2, t2, pd_cfg(http, set_status="acknowledged"))
    assert note2.status == "already_posted" and len(pd.notes) == 2
    assert (status2.status, status2.external_id) == ("already_posted", "status:resolved") and pd.puts == []


async def test_pagerduty_429_is_retried_and_a_failed_note_skips_the_status(http: FakeHTTP, sessions: Any) -> None:
    pd = FakePagerDuty(http, incident_id="P2", token=PD_TOKEN)
    pd.fault("POST", "/incidents/P2/notes", 429, {"Retry-After": "0"})
    t = trigger("pagerduty", incident_id="P2")
    run_id = await new_run(sessions, t)
    [note] = await answer(sessions, run_id, t, pd_cfg(http))
    assert note.status == "posted" and len(pd.notes) == 1
    t3 = trigger("pagerduty", incident_id="P2")
    run3 = await new_run(sessions, t3)
    pd.fault("POST", "/incidents/P2/notes", 403)
    note3, status3 = await answer(sessions, run3, t3, pd_cfg(http, set_status="resolved"))
    assert (note3.status, note3.reason) == ("failed", "forbidden")
    assert (status3.status, status3.reason) == ("skipped", "pagerduty.note_not_posted") and pd.puts == []


async def test_pagerduty_needs_from_email_and_never_shows_the_key(http: FakeHTTP, sessions: Any) -> None:
    t = trigger("pagerduty", incident_id="P3")
    run_id = await new_run(sessions, t)
    [outcome] = await answer(sessions, run_id, t, {"pagerduty": {"answer_back": True, "token": PD_TOKEN,
                                                                 "api_url": http.url}})
    assert (outcome.status, outcome.reason) == ("failed", "bad_config")
    assert "integrations.pagerduty.from_email" in outcome.message and PD_TOKEN not in repr(outcome)
    # A wrong key: the 401 is recorded without the key.
    FakePagerDuty(http, incident_id="P3", token="another-key")
    [denied] = await answer(sessions, run_id, t, pd_cfg(http))
    assert denied.reason == "unauthorized" and PD_TOKEN not in repr(denied)
    async with sessions() as s:
        [row] = await answers_of(s, run_id)
    assert PD_TOKEN not in (row.error or "")


# ---- incident.io ---------------------------------------------------------------------------------

async def test_incidentio_update_with_its_idempotency_key(http: FakeHTTP, sessions: Any) -> None:
    iio = FakeIncidentIo(http, api_key=IIO_KEY)
    iio.incident("01FCNDV6P870EA6S7TK1DSYDG0", teams=("01TEAMA",))
    iio.fault("POST", "/v2/incident_updates", 503, commit=True)   # written, answer lost: same key again
    t = trigger("incidentio", incident_id="01FCNDV6P870EA6S7TK1DSYDG0")
    run_id = await new_run(sessions, t)
    cfg = {"incidentio": {"answer_back": True, "api_key": IIO_KEY, "api_url": http.url}}
    [outcome] = await answer(sessions, run_id, t, cfg)
    assert outcome.status == "posted" and len(iio.updates) == 1, outcome
    [update] = iio.updates.values()
    assert update["incident_id"] == "01FCNDV6P870EA6S7TK1DSYDG0" and marker(run_id) in update["message"]
    assert outcome.external_id == update["id"]
    posts = [r.json() for r in http.requests if r.path == "/v2/incident_updates"]
    assert len(posts) == 2 and {p["idempotency_key"] for p in posts} == {incidentio.idempotency_key(run_id)}
    assert await answer(sessions, run_id, t, cfg) and len(http.calls("/v2/incident_updates")) == 2


async def test_egress_policy_refuses_before_sending(sessions: Any) -> None:
    from incidentfox.egress import EgressPolicy

    t = trigger("incidentio", incident_id="01X")
    run_id = await new_run(sessions, t)
    cfg = {"incidentio": {"answer_back": True, "api_key": IIO_KEY, "api_url": "http://127.0.0.1:9"}}
    [outcome] = await answer(sessions, run_id, t, cfg, Outbound(egress=EgressPolicy(), first_s=0.001))
    assert (outcome.status, outcome.reason) == ("failed", "egress_refused"), outcome


async def test_github_answers_only_in_a_repository_the_team_claims(http: FakeHTTP, sessions: Any) -> None:
    """An App shared by an org's teams: a delivery signed with team A's secret naming team B's
    repository (and the App's installation) writes nothing there; the team's own repository works."""
    gh = FakeGitHub(http, public_key=PUBLIC, app_id="4242", installation_id=77, repo="acme/shop")
    gh.issue(12)
    routing = {"github_repos": ["Acme/Shop"]}
    foreign = trigger("github", repo="acme/billing", issue_number=12, installation_id=77)
    run_id = await new_run(sessions, foreign)
    [outcome] = await answer_back(sessions=sessions, run_id=run_id, trigger=foreign.model_dump(mode="json"),
                                  integrations=github_cfg(http), rca=RCA_, out=out(), routing=routing)
    assert (outcome.status, outcome.reason) == ("failed", "bad_target"), outcome
    assert "routing.github_repos" in outcome.message and http.requests == []

    own = trigger("github", repo="acme/shop", issue_number=12, installation_id=77)
    run_id = await new_run(sessions, own)
    [outcome] = await answer_back(sessions=sessions, run_id=run_id, trigger=own.model_dump(mode="json"),
                                  integrations=github_cfg(http), rca=RCA_, out=out(), routing=routing)
    assert outcome.status == "posted", outcome


async def test_pagerduty_answers_only_on_an_incident_of_a_service_the_team_claims(http: FakeHTTP,
                                                                                   sessions: Any) -> None:
    """A REST key shared by an org's teams: a delivery signed with team A's secret naming team B's
    incident gets no note and no status change there; an incident on the team's own service does."""
    pd = FakePagerDuty(http, incident_id="PB1", token=PD_TOKEN, service_id="PSVCOTHER")
    routing = {"pagerduty_service_ids": ["PSVCOWN"]}
    foreign = trigger("pagerduty", incident_id="PB1")
    run_id = await new_run(sessions, foreign)
    note, status = await answer_back(sessions=sessions, run_id=run_id, trigger=foreign.model_dump(mode="json"),
                                     integrations=pd_cfg(http, set_status="resolved"), rca=RCA_, out=out(),
                                     routing=routing)
    assert (note.status, note.reason) == ("failed", "bad_target"), note
    assert "routing.pagerduty_service_ids" in note.message and status.status == "skipped"
    assert pd.notes == [] and pd.puts == []

    pd.service_id = "PSVCOWN"
    own = trigger("pagerduty", incident_id="PB1")
    run_id = await new_run(sessions, own)
    note, status = await answer_back(sessions=sessions, run_id=run_id, trigger=own.model_dump(mode="json"),
                                     integrations=pd_cfg(http, set_status="resolved"), rca=RCA_, out=out(),
                                     routing=routing)
    assert (note.status, status.status) == ("posted", "posted") and len(pd.notes) == 1


def iio_cfg(http: FakeHTTP) -> dict[str, Any]:
    return {"incidentio": {"answer_back": True, "api_key": IIO_KEY, "api_url": http.url}}


async def answer_as_team(sessions: Any, t: Trigger, http: FakeHTTP, routing: dict[str, Any],
                         o: Outbound | None = None) -> tuple[str, Any]:
    run_id = await new_run(sessions, t)
    [outcome] = await answer_back(sessions=sessions, run_id=run_id, trigger=t.model_dump(mode="json"),
                                  integrations=iio_cfg(http), rca=RCA_, out=o or out(), routing=routing)
    return run_id, outcome


async def test_incidentio_answers_only_on_an_incident_the_team_claims(http: FakeHTTP, sessions: Any) -> None:
    """An API key shared by an org's teams: a delivery signed with team A's secret naming team B's
    incident writes no update there (the incident is read first); the refusal is on the run's answer
    record. An incident with the team's Team, Service or Slack channel is answered."""
    iio = FakeIncidentIo(http, api_key=IIO_KEY)
    iio.incident("01INCB", teams=("01TEAMB",), services=("billing",), slack_channel_id="CINCB")
    routing = {"incidentio_team_ids": ["01TEAMA"], "services": ["checkout"], "slack_channel_ids": ["CALERTS"]}
    run_id, outcome = await answer_as_team(sessions, trigger("incidentio", incident_id="01INCB"), http, routing)
    assert (outcome.status, outcome.reason) == ("failed", "bad_target"), outcome
    assert "routing.incidentio_team_ids" in outcome.message and iio.updates == {}
    assert http.calls("/v2/incident_updates") == [] and len(http.calls("/v2/incidents/01INCB")) == 1
    async with sessions() as s:
        [row] = await answers_of(s, run_id)
    assert (row.destination, row.status) == ("incidentio.update", "failed") and row.error.startswith("bad_target")

    iio.incident("01INCA", teams=("01TEAMA",))
    iio.incident("01INCS", services=("Checkout",))              # the Service field, case-insensitive
    iio.incident("01INCC", slack_channel_id="CALERTS")
    for incident in ("01INCA", "01INCS", "01INCC"):
        _, outcome = await answer_as_team(sessions, trigger("incidentio", incident_id=incident), http, routing)
        assert outcome.status == "posted", (incident, outcome)
    assert sorted(u["incident_id"] for u in iio.updates.values()) == ["01INCA", "01INCC", "01INCS"]


async def test_incidentio_ownership_follows_the_routers_order(http: FakeHTTP, sessions: Any) -> None:
    """A service of ours on an incident whose Team (or Slack channel) another team claims is that
    team's incident, as the router would route it: no update. Unclaimed identifiers are passed over."""
    from config_service.db.models import RoutingClaim

    async with sessions() as s:
        s.add_all([RoutingClaim(kind="incidentio_team_id", value="01TEAMB", org_id="acme", team_node_id="billing"),
                   RoutingClaim(kind="slack_channel_id", value="CBILLING", org_id="acme", team_node_id="billing")])
        await s.commit()
    iio = FakeIncidentIo(http, api_key=IIO_KEY)
    iio.incident("01INCB", teams=("01TEAMB",), services=("checkout",))
    iio.incident("01INCCH", teams=("01TEAMA",), slack_channel_id="CBILLING")
    iio.incident("01INCOK", teams=("01TEAMUNCLAIMED",), services=("checkout",))
    routing = {"incidentio_team_ids": ["01TEAMA"], "services": ["checkout"]}
    for incident in ("01INCB", "01INCCH"):
        _, outcome = await answer_as_team(sessions, trigger("incidentio", incident_id=incident), http, routing)
        assert (outcome.status, outcome.reason) == ("failed", "bad_target"), (incident, outcome)
    _, outcome = await answer_as_team(sessions, trigger("incidentio", incident_id="01INCOK"), http, routing)
    assert outcome.status == "posted", outcome
    assert [u["incident_id"] for u in iio.updates.values()] == ["01INCOK"]


async def test_incidentio_ownership_read_waits_out_429_and_an_unreadable_incident_is_not_written(
        http: FakeHTTP, sessions: Any) -> None:
    iio = FakeIncidentIo(http, api_key=IIO_KEY)
    iio.incident("01INCA", teams=("01TEAMA",))
    routing = {"incidentio_team_ids": ["01TEAMA"]}
    iio.fault("GET", "/v2/incidents/01INCA", 429, {"Retry-After": "0"})
    _, outcome = await answer_as_team(sessions, trigger("incidentio", incident_id="01INCA"), http, routing)
    assert outcome.status == "posted" and len(http.calls("/v2/incidents/01INCA")) == 2, outcome

    iio.fault("GET", "/v2/incidents/01INCA", 429, {"Retry-After": "3600"})   # longer than max_wait_s
    _, outcome = await answer_as_team(sessions, trigger("incidentio", incident_id="01INCA"), http, routing)
    assert (outcome.status, outcome.reason) == ("failed", "rate_limited"), outcome
    assert "check it is this team's" in outcome.message and len(iio.updates) == 1

    _, outcome = await answer_as_team(sessions, trigger("incidentio", incident_id="01GONE"), http, routing)
    assert (outcome.status, outcome.reason) == ("failed", "not_found") and len(iio.updates) == 1, outcome
    iio.api_key = "another-key"                                                # the key cannot read it
    _, outcome = await answer_as_team(sessions, trigger("incidentio", incident_id="01INCA"), http, routing)
    assert (outcome.status, outcome.reason) == ("failed", "unauthorized") and IIO_KEY not in repr(outcome)
    assert len(iio.updates) == 1 and len(http.calls("/v2/incident_updates")) == 1
