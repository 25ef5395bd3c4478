"""Slack and GitHub parsing: every real fixture, plus the variants the gateway depends on."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from incidentfox.contracts import ROUTING_KEYS, ThreadRef, TriggerAction
from serve_apps.webhooks import github, slack
from serve_apps.webhooks.common import TEXT_MAX, TITLE_MAX, ParseResult
from serve_apps.webhooks.errors import WebhookError

NOW = 1_700_000_000.0


def _raw(fixtures_dir: Path, rel: str) -> bytes:
    path = fixtures_dir / rel
    if not path.exists():
        pytest.skip(f"{rel} absent")
    return path.read_bytes()


def _json(fixtures_dir: Path, rel: str) -> dict[str, Any]:
    return json.loads(_raw(fixtures_dir, rel))


def _slack(body: bytes | dict[str, Any], headers: dict[str, str] | None = None) -> ParseResult:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    return slack.parse(headers=headers or {}, body=body, now=NOW)


def _interaction_body(payload: dict[str, Any]) -> bytes:
    # On the wire: application/x-www-form-urlencoded, payload=<urlencoded JSON> (as Slack sends it).
    return ("payload=" + quote(json.dumps(payload))).encode()


def _assert_keys(result: ParseResult) -> None:
    if result.trigger is not None:
        assert set(result.trigger.identifiers) <= set(ROUTING_KEYS)


# --- Slack ----------------------------------------------------------------------------------------

def test_slack_url_verification_answers_the_challenge(fixtures_dir: Path) -> None:
    body = _json(fixtures_dir, "slack/url_verification.json")
    result = _slack(body)
    assert result.response == {"challenge": body["challenge"]}
    assert result.trigger is None and not result.ignored


@pytest.mark.parametrize("rel", ["slack/event_callback.app_mention.json",
                                 "slack/event_callback.app_mention.org_install.json"])
def test_slack_app_mention_starts_a_human_run(fixtures_dir: Path, rel: str) -> None:
    result = _slack(_raw(fixtures_dir, rel))
    t = result.trigger
    assert not result.ignored and t is not None
    assert (t.source, t.delivery_id, t.event_kind) == ("slack", "Ev111", "app_mention")
    assert t.action == TriggerAction.START
    assert t.human and not t.is_alert
    assert t.text == "Hi there!" and t.title == "Hi there!"        # the bot mention is stripped
    assert t.identifiers == {"slack_channel_id": "C111"}
    assert t.thread == ThreadRef(channel="C111", ts="1595926230.009600")
    assert t.actor == "W222"
    assert t.occurred_at == datetime(2020, 7, 28, 8, 50, 30, tzinfo=UTC)
    assert t.payload_ref == "delivery:slack:Ev111"


def _mention(fixtures_dir: Path, **event: Any) -> dict[str, Any]:
    body = _json(fixtures_dir, "slack/event_callback.app_mention.org_install.json")
    body["event"].update(event)
    return body


def test_slack_mention_inside_a_thread_uses_the_thread_root(fixtures_dir: Path) -> None:
    body = _mention(fixtures_dir, thread_ts="1595926000.000100", text="<@W111> why is checkout slow? <@W111>")
    t = _slack(body).trigger
    assert t is not None and t.thread == ThreadRef(channel="C111", ts="1595926000.000100")
    assert t.text == "why is checkout slow?"


@pytest.mark.parametrize("event", [{"bot_id": "B1"}, {"subtype": "bot_message"},
                                   {"bot_profile": {"id": "B1"}}, {"user": "W111"}])
def test_slack_bot_messages_are_ignored_including_our_own(fixtures_dir: Path, event: dict) -> None:
    result = _slack(_mention(fixtures_dir, **event))
    assert result.ignored and result.trigger is None
    assert result.reason in ("bot_message", "own_message")


def test_slack_threaded_follow_up_continues(fixtures_dir: Path) -> None:
    body = _mention(fixtures_dir, type="message", text="it started after the deploy",
                    ts="1595926300.000200", thread_ts="1595926230.009600")
    t = _slack(body).trigger
    assert t is not None and t.action == TriggerAction.CONTINUE and t.human
    assert t.event_kind == "message" and t.text == "it started after the deploy"
    assert t.thread == ThreadRef(channel="C111", ts="1595926230.009600")


@pytest.mark.parametrize("event,reason", [
    ({"type": "message", "text": "hello", "ts": "1.2"}, "not_in_thread"),
    ({"type": "message", "text": "hi", "ts": "1.2", "thread_ts": "1.2"}, "not_in_thread"),
    ({"type": "message", "subtype": "message_changed", "ts": "1.3", "thread_ts": "1.2"}, "message_subtype"),
    ({"type": "message", "text": "<@W111> again", "ts": "1.3", "thread_ts": "1.2"}, "handled_as_app_mention"),
    ({"type": "reaction_added"}, "unsupported_event:reaction_added"),
])
def test_slack_messages_that_are_not_follow_ups_are_ignored(fixtures_dir: Path, event: dict,
                                                            reason: str) -> None:
    result = _slack(_mention(fixtures_dir, **event))
    assert result.ignored and result.reason == reason


def test_slack_slash_command_fixture(fixtures_dir: Path) -> None:
    raw = _raw(fixtures_dir, "slack/slash_command.form-urlencoded.txt")
    parsed = _json(fixtures_dir, "slack/slash_command.parsed.json")
    result = _slack(raw, headers={"X-Slack-Request-Timestamp": "1700000000"})
    t = result.trigger
    assert t is not None and not result.ignored
    assert (t.delivery_id, t.event_kind, t.action, t.text) == (parsed["trigger_id"], "slash_command",
                                                               TriggerAction.START, parsed["text"])
    assert t.human and t.actor == parsed["user_id"]
    assert t.identifiers == {"slack_channel_id": parsed["channel_id"]}
    assert t.thread == ThreadRef(channel=parsed["channel_id"], ts=None)
    assert t.occurred_at == datetime.fromtimestamp(1_700_000_000, tz=UTC)


def test_slack_sandbox_command_and_usage(fixtures_dir: Path) -> None:
    form = _json(fixtures_dir, "slack/slash_command.parsed.json")
    t = _slack(urlencode({**form, "command": "/incidentfox", "text": "sandbox  why 502s?"}).encode()).trigger
    assert t is not None and (t.event_kind, t.text) == ("sandbox", "why 502s?")
    for text in ("", "  ", "help", "sandbox"):
        result = _slack(urlencode({**form, "text": text}).encode())
        assert result.response is not None and result.response["response_type"] == "ephemeral"
        assert result.trigger is None


@pytest.mark.parametrize("rel", ["slack/block_actions.json", "slack/block_actions.with_message.json"])
def test_slack_fixture_buttons_are_not_ours(fixtures_dir: Path, rel: str) -> None:
    payload = _json(fixtures_dir, rel)
    result = _slack(_interaction_body(payload))
    assert result.ignored and result.reason == "unknown_action"
    t = result.trigger
    assert t is not None and t.action == TriggerAction.IGNORE
    assert t.delivery_id == payload["trigger_id"]
    assert t.interaction is not None and t.interaction["action_id"] == payload["actions"][0]["action_id"]
    assert t.identifiers == {"slack_channel_id": "C111"}


@pytest.mark.parametrize("verb", sorted(slack.INTERACTION_ACTIONS))
def test_slack_our_buttons_are_interactions(fixtures_dir: Path, verb: str) -> None:
    action_id = slack.ACTION_PREFIX + verb
    payload = _json(fixtures_dir, "slack/block_actions.with_message.json")
    payload["actions"][0].update(action_id=action_id, value="run_0123abcd")
    payload["message"]["thread_ts"] = "1678252000.000001"
    t = _slack(_interaction_body(payload)).trigger
    assert t is not None and t.action == TriggerAction.INTERACTION and t.event_kind == "block_actions"
    assert t.interaction == {"action_id": action_id, "action": verb, "value": "run_0123abcd",
                             "run_id": "run_0123abcd", "user": "U111"}
    assert t.delivery_id == "4916855695380.xxx.yyy"
    assert t.thread == ThreadRef(channel="C111", ts="1678252000.000001")
    assert t.actor == "U111" and t.human
    assert t.occurred_at == datetime.fromtimestamp(1678252216.469172, tz=UTC)


def test_slack_button_value_may_carry_json(fixtures_dir: Path) -> None:
    payload = _json(fixtures_dir, "slack/block_actions.json")
    del payload["trigger_id"]
    value = json.dumps({"run_id": "run_9", "approval_id": "ap_1"})
    payload["actions"][0].update(action_id="incidentfox_approve", value=value)
    t = _slack(_interaction_body(payload)).trigger
    assert t is not None and t.interaction is not None
    assert (t.interaction["run_id"], t.interaction["data"]) == ("run_9", {"approval_id": "ap_1"})
    assert t.delivery_id == "incidentfox_approve:1596530385.194939"       # no trigger_id: action id + action_ts


@pytest.mark.parametrize("body", [b"", b"{", b"[1,2]", b'{"type": "event_callback"}',
                                  b'{"type": "event_callback", "event_id": "Ev1"}',
                                  b'{"type": "url_verification"}', b"payload=%7B", b"payload=%5B%5D",
                                  b"token=x&team_id=T", b'payload={"type":"block_actions","actions":[]}',
                                  b"command=%2Fincidentfox&text=hi&channel_id=C1",
                                  b"\xff\xfe"])
def test_slack_malformed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(WebhookError) as info:
        _slack(body)
    assert (info.value.reason, info.value.status) == ("malformed_body", 400)


def test_slack_text_is_truncated(fixtures_dir: Path) -> None:
    t = _slack(_mention(fixtures_dir, text="<@W111> " + "x" * 50_000)).trigger
    assert t is not None and len(t.text) == TEXT_MAX and len(t.title) == TITLE_MAX


# --- GitHub ---------------------------------------------------------------------------------------

def _gh(body: bytes | dict[str, Any], event: str, delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
        ) -> ParseResult:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
    result = github.parse(headers=headers, body=body, now=NOW)
    _assert_keys(result)
    return result


@pytest.mark.parametrize("rel", ["github/issue_comment.created.json",
                                 "github/issue_comment.created.with-installation.json"])
def test_github_comment_fixture_does_not_address_us(fixtures_dir: Path, rel: str) -> None:
    result = _gh(_raw(fixtures_dir, rel), "issue_comment")
    assert result.ignored and result.reason == "not_addressed"
    t = result.trigger
    assert t is not None and t.action == TriggerAction.IGNORE
    assert t.identifiers == {"github_repo": "codertocat/hello-world"}
    assert t.title == "Spelling error in the README file" and t.actor == "Codertocat"


@pytest.mark.parametrize("comment,text", [
    ("@incidentfox why did the deploy fail?", "why did the deploy fail?"),
    ("Hey @IncidentFox[bot], look at this", "Hey , look at this"),
    ("/incidentfox check the CI", "check the CI"),
])
def test_github_comment_addressed_to_us_starts_a_run(fixtures_dir: Path, comment: str, text: str) -> None:
    body = _json(fixtures_dir, "github/issue_comment.created.json")
    body["comment"]["body"] = comment
    t = _gh(body, "issue_comment").trigger
    assert t is not None and t.action == TriggerAction.START and t.human
    # Issue 12: the unsigned X-GitHub-Delivery is not the dedupe key; the signed body's hash is.
    assert t.delivery_id == "sha256:" + hashlib.sha256(json.dumps(body).encode()).hexdigest()
    assert _gh(body, "issue_comment", delivery="fresh-guid").trigger.delivery_id == t.delivery_id
    assert (t.event_kind, t.text) == ("issue_comment", text)
    assert t.identifiers == {"github_repo": "codertocat/hello-world"}
    assert t.external_ref == "https://github.com/Codertocat/Hello-World/issues/1"
    assert t.links[0] == "https://github.com/Codertocat/Hello-World/issues/1#issuecomment-492700400"
    assert t.occurred_at == datetime(2019, 5, 15, 15, 20, 21, tzinfo=UTC)


@pytest.mark.parametrize("comment,user_type,action", [
    ("email me@incidentfox.dev", "User", "created"),
    ("@incidentfoxes are cute", "User", "created"),
    ("@incidentfox hello", "Bot", "created"),
    ("@incidentfox hello", "User", "edited"),
])
def test_github_comments_we_ignore(fixtures_dir: Path, comment: str, user_type: str, action: str) -> None:
    body = _json(fixtures_dir, "github/issue_comment.created.json")
    body["comment"]["body"], body["comment"]["user"]["type"], body["action"] = comment, user_type, action
    assert _gh(body, "issue_comment").ignored


def test_github_check_run_failure_starts_a_ci_run(fixtures_dir: Path) -> None:
    t = _gh(_raw(fixtures_dir, "github/check_run.completed.failure.json"), "check_run").trigger
    assert t is not None and (t.action, t.event_kind) == (TriggerAction.START, "ci_failure")
    assert not t.human and t.identifiers == {"github_repo": "codertocat/hello-world"}
    assert t.title == "CI failure: Octocoders-linter on Codertocat/Hello-World@changes"
    assert t.external_ref == "https://github.com/Codertocat/Hello-World/runs/128620228"
    assert t.occurred_at == datetime(2019, 5, 15, 15, 21, 12, tzinfo=UTC)


def test_github_workflow_run_success_is_ignored_and_failure_starts(fixtures_dir: Path) -> None:
    body = _json(fixtures_dir, "github/workflow_run.completed.success.json")
    result = _gh(body, "workflow_run")
    assert result.ignored and result.reason == "workflow_run_success"
    body["workflow_run"]["conclusion"] = "failure"
    t = _gh(body, "workflow_run").trigger
    assert t is not None and (t.action, t.event_kind) == (TriggerAction.START, "ci_failure")
    assert t.identifiers == {"github_repo": "octo-org/octo-repo"}
    assert t.external_ref == "https://github.com/octo-org/octo-repo/actions/runs/289782451"
    body["action"] = "requested"
    assert _gh(body, "workflow_run").ignored


def test_github_push_is_recorded(fixtures_dir: Path) -> None:
    t = _gh(_raw(fixtures_dir, "github/push.json"), "push").trigger
    assert t is not None and (t.action, t.event_kind) == (TriggerAction.RECORD, "push")
    assert t.identifiers == {"github_repo": "codertocat/hello-world"}
    assert t.links == ["https://github.com/Codertocat/Hello-World/compare/6113728f27ae...000000000000"]
    assert t.title == "Codertocat/Hello-World refs/tags/simple-tag deleted"
    assert t.occurred_at == datetime.fromtimestamp(1557933657, tz=UTC)   # repository.pushed_at


def test_github_pull_request_is_recorded(fixtures_dir: Path) -> None:
    body = _json(fixtures_dir, "github/pull_request.opened.json")
    t = _gh(body, "pull_request").trigger
    assert t is not None and (t.action, t.event_kind) == (TriggerAction.RECORD, "pull_request.opened")
    assert t.title == "PR #2 opened: Update the README with new information."
    assert t.external_ref == "https://github.com/Codertocat/Hello-World/pull/2"
    body["action"] = "labeled"
    assert _gh(body, "pull_request").ignored


def test_github_form_encoded_body_and_unknown_events(fixtures_dir: Path) -> None:
    raw = _raw(fixtures_dir, "github/push.json")
    t = _gh(b"payload=" + quote(raw.decode()).encode(), "push").trigger
    assert t is not None and t.action == TriggerAction.RECORD
    assert _gh(raw, "ping").ignored and _gh(raw, "star").reason == "unsupported_event:star"


@pytest.mark.parametrize("headers", [{}, {"X-GitHub-Event": "push"}, {"X-GitHub-Delivery": "d"},
                                     {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d" * 256}])
def test_github_missing_headers_are_400(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookError) as info:
        github.parse(headers=headers, body=b"{}", now=NOW)
    assert (info.value.reason, info.value.status) == ("malformed_body", 400)


@pytest.mark.parametrize("event,body", [("push", b"not json"), ("push", b"{}"), ("issue_comment", b"[]"),
                                        ("issue_comment", b'{"repository": {"full_name": "a/b"}}'),
                                        ("check_run", b'{"repository": {"full_name": "a/b"}}')])
def test_github_malformed_bodies_are_400(event: str, body: bytes) -> None:
    with pytest.raises(WebhookError) as info:
        _gh(body, event)
    assert (info.value.reason, info.value.status) == ("malformed_body", 400)
