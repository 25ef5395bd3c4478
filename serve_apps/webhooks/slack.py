"""Slack: Events API, slash commands and Block Kit interactions.

Verification (https://docs.slack.dev/authentication/verifying-requests-from-slack/):
``X-Slack-Signature = "v0=" + hex(HMAC-SHA256(signing_secret, "v0:{X-Slack-Request-Timestamp}:{body}"))``,
timestamp within 300 s of ``now``. The HMAC and its comparison are slack_sdk's ``SignatureVerifier``,
its clock pinned to the ``now`` the caller passes (so :func:`verify` stays pure); the checks before it
only give each refusal its typed reason.

The three endpoints share one :func:`parse`; the body says which it is: a JSON object is an Events API
envelope, a form with ``payload`` is an interaction, a form with ``command`` is a slash command.

Interaction contract (for whoever posts the buttons): a button's ``action_id`` is one of
:data:`INTERACTION_ACTIONS`, and its ``value`` is the run id, or a JSON object carrying ``run_id``
plus any extra keys (e.g. ``{"run_id": "…", "approval_id": "…"}``; extras land in
``interaction["data"]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from slack_sdk.signature import Clock, SignatureVerifier

from incidentfox.contracts import TriggerAction
from serve_apps.webhooks.common import (
    ParseResult,
    accepted,
    arr,
    build_trigger,
    check_timestamp,
    clip,
    delivery_id,
    has_header,
    header,
    identifiers,
    ignored,
    load_form,
    load_json_object,
    obj,
    parse_time,
    require_secret,
    require_str,
    s,
    to_bytes,
    try_json_object,
)
from serve_apps.webhooks.errors import WebhookError, malformed

SOURCE = "slack"
SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
INTERACTION_ACTIONS = frozenset({"rerun", "cancel", "feedback_up", "feedback_down", "approve", "deny",
                                 "postmortem"})
# Our buttons' action_id is namespaced: "incidentfox_<action>" (see actors/slack/reporter.py); the
# parsed interaction carries the bare verb as ``interaction["action"]``.
ACTION_PREFIX = "incidentfox_"
USAGE = ("Usage: `/incidentfox <question>` starts an investigation here; "
         "`/incidentfox sandbox <question>` runs it in a sandbox.")
# Subtypes that are still a person writing in a thread; every other subtype (edits, joins, bots…) is not.
_HUMAN_SUBTYPES = frozenset({"", "thread_broadcast", "file_share"})
_MENTION_RE = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_LEADING_MENTION_RE = re.compile(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>[\s,:]*")


class _At(Clock):
    """slack_sdk's clock, pinned to one instant: the ``now`` the caller passed."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def sign(*, body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The headers Slack would send for ``body`` at ``timestamp`` (tests, benchmarks). Slack's bodies
    are UTF-8; any other body is signed as its lossy decoding, which :func:`verify` then refuses."""
    text = bytes(body).decode("utf-8", "replace")
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=text)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature or ""}


def verify(*, headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
    """Check the v0 signature and the 300 s replay window; raise WebhookError (401) otherwise."""
    require_secret(secret, SOURCE)
    try:
        verifier = SignatureVerifier(secret, clock=_At(now))
    except ValueError:   # slack_sdk refuses a blank secret
        raise WebhookError("secret_not_configured", source=SOURCE,
                           message=f"no {SOURCE} webhook secret is configured") from None
    signature = header(headers, SIGNATURE_HEADER)
    if not signature:
        raise WebhookError("missing_signature", source=SOURCE, message=f"missing {SIGNATURE_HEADER} header")
    raw_ts = header(headers, TIMESTAMP_HEADER)
    check_timestamp(raw_ts, now=now, source=SOURCE, header_name=TIMESTAMP_HEADER)
    try:
        # A non-ASCII signature cannot be Slack's hex (and hmac.compare_digest refuses it); a body
        # that is not UTF-8 cannot be one Slack signed (slack_sdk decodes it).
        valid = signature.isascii() and verifier.is_valid(body=bytes(body), timestamp=raw_ts,
                                                          signature=signature)
    except UnicodeDecodeError:
        valid = False
    except UnicodeEncodeError:   # a secret with lone surrogates cannot be encoded for the HMAC
        raise WebhookError("invalid_secret", source=SOURCE,
                           message=f"the {SOURCE} webhook secret is not valid UTF-8") from None
    if not valid:
        raise WebhookError("bad_signature", source=SOURCE, message="Slack signature does not match")


def signature_present(headers: Mapping[str, str]) -> bool:
    """Whether the request carries a Slack signature at all (checked before any lookup)."""
    return has_header(headers, SIGNATURE_HEADER)


def parse(*, headers: Mapping[str, str], body: bytes, now: float) -> ParseResult:
    """Events API envelope, slash command or interaction → ParseResult. ``now`` is unused: Slack
    payloads carry their own times."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise malformed(SOURCE, "body must be bytes")
    if bytes(body).lstrip().startswith(b"{"):
        return parse_event(load_json_object(bytes(body), SOURCE))
    form = load_form(bytes(body), SOURCE)
    if "payload" in form:
        return parse_interaction(load_json_object(to_bytes(form["payload"]), SOURCE))
    if "command" in form:
        return parse_command(form, request_ts=header(headers, TIMESTAMP_HEADER) or "")
    raise malformed(SOURCE, "body is neither an event, a slash command nor an interaction")


# --- Events API ----------------------------------------------------------------------------------

def parse_event(data: dict[str, Any]) -> ParseResult:
    kind = s(data, "type")
    if kind == "url_verification":
        challenge = require_str(data, "challenge", SOURCE)
        if len(challenge) > 1000:
            raise malformed(SOURCE, "challenge is too long")
        return ParseResult(response={"challenge": challenge}, reason="url_verification")
    if kind != "event_callback":
        return ignored(f"unsupported_envelope:{clip(kind, 64) or 'none'}")
    did = delivery_id(s(data, "event_id"), SOURCE, "event_id")
    event = obj(data, "event")
    if not event:
        raise malformed(SOURCE, "event_callback without an event object")
    etype = s(event, "type")
    bot_users = _bot_user_ids(data)
    if s(event, "bot_id") or s(event, "subtype") == "bot_message" or obj(event, "bot_profile"):
        return ignored("bot_message")
    user = s(event, "user")
    if user and user in bot_users:
        return ignored("own_message")
    if etype == "app_mention":
        return _message_trigger(data, event, did, TriggerAction.START, bot_users)
    if etype == "message":
        if s(event, "subtype") not in _HUMAN_SUBTYPES:
            return ignored("message_subtype")
        thread_ts, ts = s(event, "thread_ts"), s(event, "ts")
        if not thread_ts or thread_ts == ts:
            return ignored("not_in_thread")
        raw = event.get("text") if isinstance(event.get("text"), str) else ""
        if any(m in bot_users for m in _MENTION_RE.findall(raw)):
            return ignored("handled_as_app_mention")   # Slack sends the same message as app_mention
        return _message_trigger(data, event, did, TriggerAction.CONTINUE, bot_users)
    return ignored(f"unsupported_event:{clip(etype, 64) or 'none'}")


def _message_trigger(data: dict[str, Any], event: dict[str, Any], did: str, action: TriggerAction,
                     bot_users: set[str]) -> ParseResult:
    channel = require_str(event, "channel", SOURCE, "event")
    ts = s(event, "ts")
    thread_ts = s(event, "thread_ts")
    raw = event.get("text") if isinstance(event.get("text"), str) else ""
    text = _strip_mentions(raw, bot_users | set(_strs(arr(data, "authed_users"))))
    trigger = build_trigger(
        SOURCE,
        delivery_id=did,
        event_kind=s(event, "type"),
        action=action,
        identifiers=identifiers(slack_channel_id=channel),
        title=text.splitlines()[0] if text else "",
        text=text,
        thread={"channel": channel, "ts": (thread_ts or ts) or None},   # validated by build_trigger
        human=True,
        actor=s(event, "user") or None,
        occurred_at=parse_time(data.get("event_time")) or parse_time(ts),
        external_ref=ts or None,   # the message's own ts: one thread turn per message (runs/turns.py)
    )
    return accepted(trigger)


def _bot_user_ids(data: dict[str, Any]) -> set[str]:
    return {s(a, "user_id") for a in arr(data, "authorizations")
            if isinstance(a, dict) and a.get("is_bot") is True and s(a, "user_id")}


def _strs(values: list[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str)]


def _strip_mentions(text: str, bot_users: set[str]) -> str:
    """Drop the leading mention (whoever it is, it addressed us) and any other mention of our bot."""
    text = _LEADING_MENTION_RE.sub("", text, count=1)
    text = _MENTION_RE.sub(lambda m: "" if m.group(1) in bot_users else m.group(0), text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


# --- slash commands ------------------------------------------------------------------------------

def parse_command(form: dict[str, str], *, request_ts: str = "") -> ParseResult:
    """``/incidentfox <text>`` → START (``/incidentfox sandbox <q>`` → event_kind ``sandbox``).

    Empty text or ``help`` answers the usage line ephemerally (``response``), recording nothing.
    """
    did = delivery_id(form.get("trigger_id", ""), SOURCE, "trigger_id")
    require_str(form, "command", SOURCE)
    channel = require_str(form, "channel_id", SOURCE)
    text = (form.get("text") or "").strip()
    kind = "slash_command"
    first, _, rest = text.partition(" ")
    if first.lower() == "sandbox":
        kind, text = "sandbox", rest.strip()
    if not text or text.lower() == "help":
        return ParseResult(response={"response_type": "ephemeral", "text": USAGE}, reason="usage")
    trigger = build_trigger(
        SOURCE,
        delivery_id=did,
        event_kind=kind,
        action=TriggerAction.START,
        identifiers=identifiers(slack_channel_id=channel),
        title=text.splitlines()[0],
        text=text,
        thread={"channel": channel, "ts": None},
        human=True,
        actor=(form.get("user_id") or "").strip() or None,
        occurred_at=parse_time(request_ts),
    )
    return accepted(trigger)


# --- interactions --------------------------------------------------------------------------------

def parse_interaction(payload: dict[str, Any]) -> ParseResult:
    """``block_actions`` with one of :data:`INTERACTION_ACTIONS` → INTERACTION; other buttons and
    interaction types are ignored."""
    kind = s(payload, "type")
    if kind != "block_actions":
        return ignored(f"unsupported_interaction:{clip(kind, 64) or 'none'}")
    actions = [a for a in arr(payload, "actions") if isinstance(a, dict)]
    if not actions:
        raise malformed(SOURCE, "block_actions without actions")
    action = actions[0]
    action_id = s(action, "action_id")
    value = s(action, "value") or s(obj(action, "selected_option"), "value")
    did = delivery_id(s(payload, "trigger_id") or (f"{action_id}:{s(action, 'action_ts')}"
                                                     if action_id and s(action, "action_ts") else ""),
                      SOURCE, "trigger_id")
    container, message = obj(payload, "container"), obj(payload, "message")
    channel = s(container, "channel_id") or s(obj(payload, "channel"), "id")
    message_ts = s(container, "message_ts") or s(message, "ts")
    thread_ts = s(container, "thread_ts") or s(message, "thread_ts") or message_ts
    user = s(obj(payload, "user"), "id")
    verb = action_id.removeprefix(ACTION_PREFIX) if action_id.startswith(ACTION_PREFIX) else ""
    interaction: dict[str, Any] = {"action_id": action_id, "action": verb, "value": value, "user": user}
    run_id, extra = _run_id_from_value(value)
    if run_id:
        interaction["run_id"] = run_id
    if extra:
        interaction["data"] = extra
    trigger = build_trigger(
        SOURCE,
        delivery_id=did,
        event_kind="block_actions",
        action=TriggerAction.INTERACTION,
        identifiers=identifiers(slack_channel_id=channel),
        title=clip(action_id, 200),
        thread={"channel": channel, "ts": thread_ts or None} if channel else None,
        human=True,
        actor=user or None,
        occurred_at=parse_time(s(action, "action_ts")),
        interaction=interaction,
    )
    if verb not in INTERACTION_ACTIONS:
        return ignored("unknown_action", trigger)
    return accepted(trigger)


def _run_id_from_value(value: str) -> tuple[str, dict[str, Any]]:
    """A button value is a bare run id or a JSON object with ``run_id`` (extras returned apart)."""
    if value.startswith("{"):
        data = try_json_object(to_bytes(value))
        run_id = s(data, "run_id")
        extra = {k: v for k, v in data.items() if k != "run_id" and isinstance(v, str | int | float | bool)}
        return (run_id if _is_id(run_id) else ""), extra
    return (value if _is_id(value) else ""), {}


def _is_id(value: str) -> bool:
    """A run id as a button carries it: printable, no spaces, at most 255 characters."""
    return 0 < len(value) <= 255 and value.isprintable() and not any(c.isspace() for c in value)


__all__ = ["ACTION_PREFIX", "INTERACTION_ACTIONS", "SOURCE", "USAGE", "parse", "parse_command",
           "parse_event", "parse_interaction", "sign", "signature_present", "verify"]
