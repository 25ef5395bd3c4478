"""Grafana alerting webhooks (unified alerting contact point of type "webhook").

Verification is optional in Grafana (``hmacConfig``; grafana/alerting ``http/hmac.go``): when a secret
is set it sends ``hex(HMAC-SHA256(secret, [timestamp + ":"] + body))`` in a configurable header
(default ``X-Grafana-Alert-Signature``) and, only if a timestamp header is configured, the unix
timestamp in that header. Both names are configuration, so :func:`verify` takes them as keyword
arguments. The gateway never accepts unsigned Grafana requests (issue 12): :func:`verify` with an
empty secret raises ``secret_not_configured`` like every other source. A custom signature header
must end in ``-Signature`` (the config service checks it), so :func:`signature_present` can tell a
signed request from an unsigned one before any lookup.

The payload is Alertmanager-shaped (plus ``title``, ``message``, ``orgId`` and per-alert dashboard
links), so parsing is :func:`serve_apps.webhooks.alertmanager.parse_group`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from serve_apps.webhooks.alertmanager import parse_group
from serve_apps.webhooks.common import (
    REPLAY_WINDOW_S,
    ParseResult,
    check_timestamp,
    header,
    load_json_object,
    require_secret,
    same,
    to_bytes,
)
from serve_apps.webhooks.errors import WebhookError

SOURCE = "grafana"
DEFAULT_SIGNATURE_HEADER = "X-Grafana-Alert-Signature"   # grafana/alerting's default when unset
DEFAULT_TIMESTAMP_HEADER = ""                            # Grafana signs no timestamp unless configured


def _content(body: bytes, timestamp: str | None) -> bytes:
    return (to_bytes(timestamp) + b":" + bytes(body)) if timestamp is not None else bytes(body)


def sign(*, body: bytes, secret: str, timestamp: int | None = None,
         signature_header: str = DEFAULT_SIGNATURE_HEADER,
         timestamp_header: str = DEFAULT_TIMESTAMP_HEADER) -> dict[str, str]:
    """The headers Grafana would send (tests, benchmarks). A timestamp needs a timestamp header."""
    ts = str(timestamp) if timestamp_header and timestamp is not None else None
    out = {signature_header: hmac.new(to_bytes(secret), _content(body, ts), hashlib.sha256).hexdigest()}
    if ts is not None:
        out[timestamp_header] = ts
    return out


def verify(*, headers: Mapping[str, str], body: bytes, secret: str, now: float,
           signature_header: str = DEFAULT_SIGNATURE_HEADER,
           timestamp_header: str = DEFAULT_TIMESTAMP_HEADER,
           window: float = REPLAY_WINDOW_S) -> None:
    """Check Grafana's HMAC; an empty ``secret`` is ``secret_not_configured`` (401).

    With ``timestamp_header`` set, the timestamp is required, signed (``"{ts}:{body}"``) and must be
    within ``window`` seconds of ``now``. Raises WebhookError (401).
    """
    key = require_secret(secret, SOURCE)
    signature = header(headers, signature_header or DEFAULT_SIGNATURE_HEADER)
    if not signature:
        raise WebhookError("missing_signature", source=SOURCE,
                           message=f"missing {signature_header or DEFAULT_SIGNATURE_HEADER} header")
    ts: str | None = None
    if timestamp_header:
        ts = header(headers, timestamp_header)
        check_timestamp(ts, now=now, source=SOURCE, header_name=timestamp_header, window=window)
    expected = hmac.new(key, _content(body, ts), hashlib.sha256).hexdigest()
    if not same(expected, signature.lower()):
        raise WebhookError("bad_signature", source=SOURCE, message="Grafana signature does not match")


def signature_present(headers: Mapping[str, str]) -> bool:
    """Whether any ``*-Signature`` header has a value (Grafana's header name is configuration)."""
    try:
        items = list(headers.items())
    except (AttributeError, TypeError):
        return False
    return any(isinstance(k, str) and k.lower().endswith("-signature") and header(headers, k)
               for k, _ in items)


def parse(*, headers: Mapping[str, str], body: bytes, now: float) -> ParseResult:
    """One alert group → ParseResult (Grafana's ``title`` is used when present). ``now`` is unused."""
    return parse_group(load_json_object(body, SOURCE), source=SOURCE)


__all__ = ["DEFAULT_SIGNATURE_HEADER", "DEFAULT_TIMESTAMP_HEADER", "SOURCE", "parse", "sign",
           "signature_present", "verify"]
