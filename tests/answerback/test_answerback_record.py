"""The ``run_answers`` record (once per run and destination, one winner when attempts race), the
AnswerTarget the parsers put on real fixture deliveries, and the RCA's Markdown."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from actors.answerback.http import AnswerError, classify
from actors.answerback.markdown import marker, rca_markdown
from incidentfox.contracts import RCA, Evidence, RootCause, Trigger
from incidentfox.db import utcnow
from incidentfox.runs.answers import STALE_S, answers_of, claim_answer, record_answer
from serve_apps.webhooks import github, incidentio, pagerduty
from tests.answerback_kit import new_run


async def test_claims_race_to_one_winner_and_posted_is_final(sessions: Any) -> None:
    run_id = await new_run(sessions, Trigger(source="api", delivery_id="r1", event_kind="x"))

    async def claim(now: Any = None) -> Any:
        async with sessions() as s:
            got = await claim_answer(s, run_id=run_id, destination="pagerduty.note", now=now)
            await s.commit()
            return got

    first = await claim()
    assert first.claimed and first.first
    # While its writer may be alive, a pending row is not taken over.
    assert (await claim()).reason == "busy"
    # Once stale (its writer died), two takeovers at once: exactly one may write, and it looks first.
    later = utcnow() + timedelta(seconds=STALE_S + 1)
    racing = await asyncio.gather(claim(later), claim(later))
    assert sorted(c.claimed for c in racing) == [False, True], racing
    assert [c.first for c in racing if c.claimed] == [False]
    async with sessions() as s:
        await record_answer(s, run_id=run_id, destination="pagerduty.note", status="posted", external_id="PN1")
        await s.commit()
    after = await claim()
    assert (after.claimed, after.reason, after.external_id) == (False, "posted", "PN1")


async def test_failed_attempts_are_bounded(sessions: Any) -> None:
    run_id = await new_run(sessions, Trigger(source="api", delivery_id="r2", event_kind="x"))
    seen = []
    for _ in range(7):
        async with sessions() as s:
            c = await claim_answer(s, run_id=run_id, destination="github.comment", max_attempts=3)
            if c.claimed:
                await record_answer(s, run_id=run_id, destination="github.comment", status="failed",
                                    error="upstream_unavailable: github answered HTTP 502\nmore")
            await s.commit()
            seen.append(c.claimed)
    assert seen == [True, True, True, False, False, False, False]
    async with sessions() as s:
        [row] = await answers_of(s, run_id)
    assert row.attempts == 3 and row.error == "upstream_unavailable: github answered HTTP 502"


def _parse(module: Any, fixtures: Path, rel: str, headers: dict[str, str], mutate: Any = None) -> Trigger:
    data = json.loads((fixtures / rel).read_bytes())
    if mutate:
        mutate(data)
    result = module.parse(headers=headers, body=json.dumps(data).encode(), now=time.time())
    assert result.trigger is not None
    return result.trigger


def test_parsers_say_where_to_answer(fixtures_dir: Path) -> None:
    check = _parse(github, fixtures_dir, "github/check_run.completed.failure.json", {"X-GitHub-Event": "check_run"})
    assert check.answer_to is not None and check.answer_to.source == "github"
    assert (check.answer_to.repo, check.answer_to.head_sha) == ("Codertocat/Hello-World",
                                                               "ec26c3e57ca3a959ca5aad62de7213c562f8c821")
    assert check.answer_to.issue_number is None and check.answer_to.installation_id is None

    def mention(d: dict[str, Any]) -> None:
        d["comment"]["body"] = "/incidentfox what broke?"
    comment = _parse(github, fixtures_dir, "github/issue_comment.created.with-installation.json",
                     {"X-GitHub-Event": "issue_comment"}, mention)
    assert (comment.answer_to.issue_number, comment.answer_to.installation_id) == (1, 1)
    pd = _parse(pagerduty, fixtures_dir, "pagerduty/incident.triggered.json", {})
    assert (pd.answer_to.source, pd.answer_to.incident_id) == ("pagerduty", "PFQZPSY")
    iio = _parse(incidentio, fixtures_dir, "incident_io/public_incident.incident_created_v2.json", {"webhook-id": "m"})
    assert (iio.answer_to.source, iio.answer_to.incident_id) == ("incidentio", "01FDAG4SAP5TYPT98WGR2N7W91")
    # The target rides on the run's stored trigger and comes back intact.
    assert Trigger.model_validate(check.model_dump(mode="json")).answer_to == check.answer_to


def test_a_bad_answer_value_never_makes_a_delivery_malformed(fixtures_dir: Path) -> None:
    def odd(d: dict[str, Any]) -> None:
        d["check_run"]["head_sha"] = "not-a-sha"
    t = _parse(github, fixtures_dir, "github/check_run.completed.failure.json", {"X-GitHub-Event": "check_run"}, odd)
    assert t.action.value == "start" and t.answer_to is None


def _rca(quote: str = "x", summary: str = "s", causes: int = 1) -> RCA:
    return RCA(summary=summary, root_causes=[RootCause(entity=f"svc{i}", description="d", confidence=0.5,
                                                       evidence=[Evidence(kind="log", quote=quote)])
                                             for i in range(causes)])


_TEXT = st.text(alphabet=st.sampled_from("~`a \n#*") | st.characters(), max_size=600)


@given(quote=_TEXT, summary=_TEXT, limit=st.integers(200, 5000))
def test_markdown_keeps_its_marker_and_its_bound(quote: str, summary: str, limit: int) -> None:
    text = rca_markdown(_rca(quote, summary, causes=3), run_id="run_abc", title="t",
                        run_link="https://x.example/r", limit=limit)
    assert len(text) <= limit and text.endswith(marker("run_abc"))
    # Only the fences themselves are runs of four tildes: a quote can never close its block.
    assert "~~~~" not in text.replace("\n~~~~\n", "\n\n")
    assert text.split("\n").count("~~~~") % 2 == 0, "a clipped answer closes its open fence"


def test_classify_reads_rate_limits() -> None:
    import httpx

    def resp(code: int, **headers: str) -> httpx.Response:
        return httpx.Response(code, headers=headers, text="body")

    for r, reason, wait in [(resp(429, **{"retry-after": "7"}), "rate_limited", 7.0),
                            (resp(403, **{"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1030"}),
                             "rate_limited", 30.0),
                            (resp(403), "forbidden", None), (resp(502), "upstream_unavailable", None),
                            (resp(422), "bad_request", None)]:
        try:
            classify(r, service="github", now=1000.0)
        except AnswerError as exc:
            assert (exc.reason, exc.retry_after) == (reason, wait)
        else:
            raise AssertionError(r.status_code)
    classify(resp(201), service="github", now=0.0)


def test_answer_back_config_is_stored_encrypted_and_shown_masked() -> None:
    # Every leaf under integrations is a secret to the config service (encrypted at rest, "***" in
    # every read): the App key, the API keys, and the ids and emails beside them alike.
    from config_service.core.secret_fields import is_secret_path, mask_secrets

    for path in ("github.private_key", "github.app_id", "pagerduty.token", "pagerduty.from_email",
                 "incidentio.api_key"):
        assert is_secret_path(("integrations", *path.split("."))), path
    masked = mask_secrets({"integrations": {"github": {"private_key": "-----BEGIN", "app_id": 7}}})
    assert masked == {"integrations": {"github": {"private_key": "***", "app_id": "***"}}}


def test_a_second_config_write_keeps_the_stored_typed_blocks_valid() -> None:
    # Writes validate merge_patch(mask_secrets(stored), patch): every stored integrations leaf is then
    # "***". Those were checked when written; only the new values are (a typed block must not turn a
    # later, unrelated write into a 422).
    from config_service import merge_patch
    from config_service.core.secret_fields import mask_secrets
    from config_service.core.validation import validate_config
    from incidentfox.errors import IncidentFoxError

    stored = {"integrations": {"github": {"api_url": "https://ghe.example/api/v3", "app_id": 7, "answer_back": True},
                               "pagerduty": {"answer_back": True, "from_email": "a@b.example"},
                               "tempo": {"url": "http://tempo:3200", "verify_ssl": False}}}
    validate_config(merge_patch(mask_secrets(stored), {"slack": {"default_channel": "C1"}}), kind="team")
    bad = {"integrations": {"pagerduty": {"set_status": "snoozed"}}}
    try:
        validate_config(merge_patch(mask_secrets(stored), bad), kind="team")
    except IncidentFoxError as exc:
        assert [e["path"] for e in exc.details["errors"]] == ["integrations.pagerduty.set_status"]
    else:
        raise AssertionError("a bad new value must still be refused")


def test_a_cut_right_after_an_opening_fence_leaves_no_empty_block() -> None:
    """Found by Hypothesis (quote '', summary '0', limit 228): the cut fell just after an evidence
    block's opening fence, which was then closed at once; the open fence is dropped instead."""
    text = rca_markdown(_rca("", "0", causes=3), run_id="run_abc", title="t", run_link="https://x.example/r",
                        limit=228)
    assert "~~~~\n~~~~" not in text and "~~~~" not in text.replace("\n~~~~\n", "\n\n")
    assert text.split("\n").count("~~~~") % 2 == 0 and len(text) <= 228
