"""Helpers shared by the per-source webhook modules, and :class:`ParseResult`.

Everything here is pure and total: accessors return a neutral value ("" / {} / []) for a missing or
wrongly typed field instead of raising, so parsers decide explicitly which fields are required
(:func:`require_str`) and raise only :class:`~serve_apps.webhooks.errors.WebhookError`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from incidentfox.contracts import ROUTING_KEYS, AnswerTarget, Trigger, TriggerAction
from incidentfox.timeparse import parse_time  # noqa: F401 - the source parsers import it from here
from serve_apps.webhooks.errors import WebhookError, malformed

REPLAY_WINDOW_S = 300          # Slack and Standard Webhooks both allow 5 minutes of skew
TITLE_MAX = 500
TEXT_MAX = 4000
IDENTIFIER_MAX = 255
LINK_MAX = 2000
LINKS_MAX = 20
_TIMESTAMP_RE = re.compile(r"[0-9]{1,15}")   # bounded so float(now) - ts can never overflow


class ParseResult(BaseModel):
    """What ``parse`` returns. The gateway acts on it in this order:

    * ``response`` set: answer 200 with exactly that JSON, record nothing (Slack ``url_verification``,
      an empty slash command's usage text).
    * ``ignored``: answer 200 ``{"ignored": true}``, record nothing. ``trigger`` is then either None or
      a trigger with ``action == IGNORE`` (kept for logging); ``reason`` says why.
    * otherwise ``trigger`` is set and its ``action`` is not IGNORE: record it, then dispatch.
    """

    model_config = ConfigDict(frozen=True)
    trigger: Trigger | None = None
    ignored: bool = False
    reason: str = ""
    response: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ParseResult:
        if self.response is not None:
            return self
        if self.ignored:
            if self.trigger is not None and self.trigger.action != TriggerAction.IGNORE:
                raise ValueError("an ignored result carries no actionable trigger")
        elif self.trigger is None or self.trigger.action == TriggerAction.IGNORE:
            raise ValueError("a non-ignored result needs an actionable trigger")
        return self


def accepted(trigger: Trigger) -> ParseResult:
    return ParseResult(trigger=trigger, reason=trigger.event_kind)


def ignored(reason: str, trigger: Trigger | None = None) -> ParseResult:
    if trigger is not None and trigger.action != TriggerAction.IGNORE:
        trigger = trigger.model_copy(update={"action": TriggerAction.IGNORE})
    return ParseResult(trigger=trigger, ignored=True, reason=reason)


# --- headers -------------------------------------------------------------------------------------

def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup; values are stripped. Non-string values count as absent."""
    value: Any = None
    try:
        value = headers.get(name)
    except (TypeError, AttributeError):
        value = None
    if value is None:
        lname = name.lower()
        for key, val in headers.items():
            if isinstance(key, str) and key.lower() == lname:
                value = val
                break
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    return value.strip()


def has_header(headers: Mapping[str, str], *names: str) -> bool:
    """True when any of ``names`` is present with a non-empty value (the cheap "is it signed at
    all" test the gateway runs before it looks anything up)."""
    return any(header(headers, name) for name in names)


def body_digest(body: bytes) -> str:
    """Hex SHA-256 of the raw body: a dedupe key bound to signed content (issue 12, point 7)."""
    return hashlib.sha256(bytes(body)).hexdigest()


def to_bytes(text: str) -> bytes:
    """Encode header-derived text for hashing; never raises (lone surrogates pass through)."""
    return text.encode("utf-8", "surrogatepass")


# --- signatures ----------------------------------------------------------------------------------

def same(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time equality for str or bytes (hmac.compare_digest rejects non-ASCII str)."""
    ab = to_bytes(a) if isinstance(a, str) else a
    bb = to_bytes(b) if isinstance(b, str) else b
    return hmac.compare_digest(ab, bb)


def require_secret(secret: str, source: str) -> bytes:
    if not isinstance(secret, str) or not secret:
        raise WebhookError("secret_not_configured", source=source,
                           message=f"no {source} webhook secret is configured")
    return to_bytes(secret)


def check_timestamp(raw: str | None, *, now: float, source: str, header_name: str,
                    window: float = REPLAY_WINDOW_S) -> int:
    """Parse a unix-seconds header and enforce ``|now - ts| <= window``; return the timestamp."""
    if raw is None or raw == "":
        raise WebhookError("missing_header", source=source, message=f"missing {header_name} header")
    if not _TIMESTAMP_RE.fullmatch(raw):
        raise WebhookError("bad_timestamp", source=source,
                           message=f"{header_name} is not a unix timestamp in seconds")
    ts = int(raw)
    skew = abs(float(now) - ts)
    if not skew <= window:   # written so that a NaN clock fails closed
        raise WebhookError("stale_timestamp", source=source,
                           message=f"stale timestamp: {header_name} is {skew:.0f} s away from server "
                                   f"time (allowed {int(window)} s); check the sender's clock or replay")
    return ts


# --- bodies --------------------------------------------------------------------------------------

def load_json(body: bytes, source: str) -> Any:
    """Decode a JSON body, mapping every decoding failure to ``malformed_body``."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise malformed(source, "body must be bytes")
    try:
        return json.loads(bytes(body).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise malformed(source, f"body is not valid JSON ({type(exc).__name__})") from None


def load_json_object(body: bytes, source: str) -> dict[str, Any]:
    data = load_json(body, source)
    if not isinstance(data, dict):
        raise malformed(source, "body must be a JSON object")
    return data


def try_json_object(body: bytes) -> dict[str, Any]:
    """Best-effort decode for unverified bodies: a dict, or {} for anything that is not one."""
    try:
        data = json.loads(bytes(body).decode("utf-8"))
    except (TypeError, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def load_form(body: bytes, source: str) -> dict[str, str]:
    """Decode an ``application/x-www-form-urlencoded`` body (last value wins)."""
    try:
        text = bytes(body).decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=1000)
    except (TypeError, UnicodeDecodeError, ValueError) as exc:
        raise malformed(source, f"body is not a valid form ({type(exc).__name__})") from None
    return dict(pairs)


# --- typed accessors -----------------------------------------------------------------------------

def obj(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def arr(data: Any, key: str) -> list[Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, list) else []


def s(data: Any, key: str) -> str:
    """A string field, stripped; integers are accepted (ids are sometimes numeric); else ""."""
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def require_str(data: Any, key: str, source: str, where: str = "") -> str:
    value = s(data, key)
    if not value:
        raise malformed(source, f"missing or empty field {where + '.' if where else ''}{key}")
    return value


# --- normalisation -------------------------------------------------------------------------------

def readable(text: str) -> str:
    """``text`` without NUL characters, its lone surrogates replaced by U+FFFD."""
    return text.replace("\x00", "").encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def identifiers(**values: str) -> dict[str, str]:
    """Routing identifiers: keys from ROUTING_KEYS, values trimmed; repos and services lowercased."""
    out: dict[str, str] = {}
    for key, value in values.items():
        assert key in ROUTING_KEYS, key
        value = (value or "").strip()
        if key in ("github_repo", "service"):
            value = value.lower()
        if value and len(value) <= IDENTIFIER_MAX:
            out[key] = value
    return out


def candidates(**values: str) -> dict[str, str]:
    """Candidate identifiers (any documented key): trimmed, empty or oversized values dropped."""
    out: dict[str, str] = {}
    for key, value in values.items():
        value = (value or "").strip() if isinstance(value, str) else ""
        if key in ("github_repo", "github_owner", "service"):
            value = value.lower()
        if value and len(value) <= IDENTIFIER_MAX:
            out[key] = value
    return out


def links(*urls: str) -> list[str]:
    """http(s) links, deduplicated in order, bounded in count and length."""
    out: list[str] = []
    for url in urls:
        if (isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) <= LINK_MAX
                and url not in out):
            out.append(url)
    return out[:LINKS_MAX]


def services(*names: str) -> list[str]:
    out: list[str] = []
    for name in names:
        name = name.strip().lower() if isinstance(name, str) else ""
        if name and len(name) <= IDENTIFIER_MAX and name not in out:
            out.append(name)
    return out


def positive_int(data: Any, key: str) -> int | None:
    """A positive integer field (GitHub's issue numbers and installation ids), else None."""
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def answer_target(source: str, **fields: Any) -> AnswerTarget | None:
    """Where to answer the delivery (:class:`AnswerTarget`), or None when the payload does not name
    a usable object: a bad value here never makes a delivery malformed, it only means the RCA is
    answered in Slack alone."""
    try:
        return AnswerTarget(source=source, **{k: v for k, v in fields.items() if v not in (None, "")})
    except ValidationError:
        return None


# --- building ------------------------------------------------------------------------------------

def delivery_id(value: str, source: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise malformed(source, f"missing {what}")
    if len(value) > 255:
        raise malformed(source, f"{what} is longer than 255 characters")
    return value


def build_trigger(source: str, **fields: Any) -> Trigger:
    """Construct a :class:`Trigger` with clipped text and ``payload_ref`` set.

    Parsers validate their inputs first; a ValidationError here still maps to ``malformed_body`` so
    that nothing but WebhookError can escape a parser.
    """
    # A NUL in a message is dropped and a lone surrogate (a JSON "\\ud800" escape) becomes U+FFFD;
    # either in an id, channel or link makes the trigger malformed (incidentfox.contracts.Key):
    # PostgreSQL cannot store a NUL, and no reply holding a lone surrogate can be written.
    fields["title"] = clip(readable(fields.get("title") or ""), TITLE_MAX)
    fields["text"] = clip(readable(fields.get("text") or ""), TEXT_MAX)
    did = fields["delivery_id"]
    fields.setdefault("payload_ref", f"delivery:{source}:{did}")
    try:
        return Trigger(source=source, **fields)
    except ValidationError as exc:
        raise malformed(source, f"payload does not form a valid trigger ({exc.error_count()} errors)"
                        ) from None
