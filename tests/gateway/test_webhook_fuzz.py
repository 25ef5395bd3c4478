"""Fuzzing: whatever arrives, verify/parse raise only WebhookError and signature_present never raises.

Two layers: arbitrary bytes and headers (the outside), and real fixtures with one subtree replaced or
deleted (reaches the field handling deep inside each parser).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidentfox.contracts import ROUTING_KEYS, TriggerAction
from serve_apps.webhooks.common import ParseResult
from serve_apps.webhooks.errors import WebhookError
from serve_apps.webhooks.registry import SOURCES

NOW = 1_700_000_000.0
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

KNOWN_HEADERS = [
    "X-Slack-Signature", "X-Slack-Request-Timestamp", "X-Hub-Signature-256", "X-GitHub-Event",
    "X-GitHub-Delivery", "X-PagerDuty-Signature", "X-Webhook-Id", "webhook-id", "webhook-timestamp",
    "webhook-signature", "svix-signature", "Authorization", "X-Grafana-Alert-Signature", "Content-Type",
]
any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=80)   # surrogates included
header_values = st.one_of(
    any_text,
    st.sampled_from(["", " ", "v0=", "sha256=", "v1=,v1=", "v1,", "Bearer", "bearer x", "1700000000",
                     "-1", "9" * 40, "push", "issue_comment", "check_run", "workflow_run", "pull_request"]),
)
headers_st = st.dictionaries(st.one_of(st.sampled_from(KNOWN_HEADERS), any_text), header_values, max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=512),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"[" * 5000, b'{"a":' * 3000, b"1" * 5000, b"payload=" + b"%5B" * 3000,
                     b"command=%2Fx&trigger_id=&channel_id=", b"\xef\xbb\xbf{}"]),
)


def _check_result(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    if result.trigger is not None:
        assert set(result.trigger.identifiers) <= set(ROUTING_KEYS)
        json.loads(result.trigger.model_dump_json())          # storable as the delivery record
        if not result.ignored and result.response is None:
            assert result.trigger.action != TriggerAction.IGNORE


def _parse_only_malformed(source: str, headers: dict[str, str], body: bytes) -> None:
    try:
        result = SOURCES[source].parse(headers=headers, body=body, now=NOW)
    except WebhookError as exc:
        assert (exc.reason, exc.status) == ("malformed_body", 400)
    else:
        _check_result(result)


@FUZZ
@given(source=st.sampled_from(sorted(SOURCES)), headers=headers_st, body=bodies)
def test_parse_raises_only_malformed_body(source: str, headers: dict[str, str], body: bytes) -> None:
    _parse_only_malformed(source, headers, body)


@FUZZ
@given(source=st.sampled_from(sorted(SOURCES)), headers=headers_st, body=bodies,
       secret=st.one_of(any_text, st.sampled_from(["s3cret", "whsec_c2VjcmV0", "whsec_"])),
       now=st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
                     st.just(NOW)))
def test_verify_raises_only_webhook_error(source: str, headers: dict[str, str], body: bytes, secret: str,
                                         now: float) -> None:
    try:
        SOURCES[source].verify(headers=headers, body=body, secret=secret, now=now)
    except WebhookError as exc:
        assert exc.status == 401
        assert not secret or len(secret) < 4 or secret not in exc.message


@FUZZ
@given(source=st.sampled_from(sorted(SOURCES)), headers=headers_st, body=bodies)
def test_signature_present_never_raises(source: str, headers: dict[str, str], body: bytes) -> None:
    present = SOURCES[source].signature_present(headers)
    assert isinstance(present, bool)
    if not present:   # what the gateway refuses before any lookup must fail verification too
        with pytest.raises(WebhookError):
            SOURCES[source].verify(headers=headers, body=body, secret="s3cret-s3cret-s3cret", now=NOW)


# --- structured mutations of the real payloads ----------------------------------------------------

FIXTURES: dict[str, list[tuple[str, dict[str, str], str]]] = {
    # source -> [(fixture path, parse headers, wire encoding)]
    "slack": [("slack/event_callback.app_mention.json", {}, "json"),
              ("slack/event_callback.app_mention.org_install.json", {}, "json"),
              ("slack/url_verification.json", {}, "json"),
              ("slack/slash_command.parsed.json", {}, "form"),
              ("slack/block_actions.json", {}, "payload"),
              ("slack/block_actions.with_message.json", {}, "payload")],
    "github": [(f"github/{name}.json", {"X-GitHub-Event": event, "X-GitHub-Delivery": "d-1"}, "json")
               for name, event in [("issue_comment.created", "issue_comment"),
                                   ("issue_comment.created.with-installation", "issue_comment"),
                                   ("check_run.completed.failure", "check_run"),
                                   ("workflow_run.completed.success", "workflow_run"),
                                   ("push", "push"), ("pull_request.opened", "pull_request")]],
    "pagerduty": [(f"pagerduty/incident.{k}.json", {}, "json")
                  for k in ("triggered", "acknowledged", "resolved")],
    "incidentio": [(f"incident_io/{n}.json", {"webhook-id": "msg_1"}, "json")
                   for n in ("public_incident.incident_created_v2",
                             "public_incident.incident_status_updated_v2",
                             "private_incident.incident_created_v2")],
    "alertmanager": [("alertmanager/webhook.v4.firing.json", {}, "json"),
                     ("alertmanager/webhook.v4.resolved_single.json", {}, "json")],
    "grafana": [("grafana/alerting.webhook.v11.firing.json", {}, "json")],
}
CASES = [(source, *case) for source, cases in FIXTURES.items() for case in cases]


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


def _mutate(doc: Any, path: tuple, replacement: Any, delete: bool) -> Any:
    if not path:
        return replacement
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return doc


def _encode(doc: Any, encoding: str) -> bytes:
    if encoding == "json":
        return json.dumps(doc).encode()
    if encoding == "payload":
        return ("payload=" + quote(json.dumps(doc))).encode()
    if isinstance(doc, dict):   # a form: flat string pairs; non-strings are rendered as JSON
        return "&".join(f"{quote(str(k))}={quote(v if isinstance(v, str) else json.dumps(v))}"
                        for k, v in doc.items()).encode()
    return json.dumps(doc).encode()


@pytest.mark.parametrize("source,rel,headers,encoding", CASES, ids=[c[1] for c in CASES])
def test_mutated_fixtures_raise_only_malformed_body(fixtures_dir: Path, source: str, rel: str,
                                                    headers: dict[str, str], encoding: str) -> None:
    path = fixtures_dir / rel
    if not path.exists():
        pytest.skip(f"{rel} absent")
    original = json.loads(path.read_bytes())
    paths = _paths(original)

    @FUZZ
    @given(index=st.integers(min_value=0, max_value=len(paths) - 1), replacement=json_values,
           delete=st.booleans())
    def run(index: int, replacement: Any, delete: bool) -> None:
        target = paths[index]
        doc = _mutate(json.loads(path.read_bytes()), target, replacement, delete and bool(target))
        body = _encode(doc, encoding)
        _parse_only_malformed(source, headers, body)

    run()
