"""Grafana alerting webhooks (unified alerting contact point of type "webhook").

Verification is optional in Grafana (``hmacConfig``; grafana/alerting ``http/hmac.go``): when a secret
is set it sends ``hex(HMAC-SHA256(secret, [timestamp + ":"] + body))`` in a configurable header
(default ``X-Grafana-Alert-Signature``) and, only if a timestamp header is configured, the unix
timestamp in that header. Both names are configuration, so :func:`verify` takes them as keyword
arguments. With an EMPTY secret :func:`verify` returns without checking anything: whether an
unsigned Grafana endpoint is acceptable is the gateway's decision, not this module's.

The payload is Alertmanager-shaped (plus ``title``, ``message``, ``orgId`` and per-alert dashboard
links), so parsing is :func:`serve_apps.webhooks.alertmanager.parse_group`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from serve_apps.webhooks.alertmanager import group_service, parse_group
from serve_apps.webhooks.common import (
    REPLAY_WINDOW_S,
    ParseResult,
    candidates,
    check_timestamp,
    header,
    load_json_object,
    s,
    same,
    to_bytes,
    try_json_object,
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
    """Check Grafana's optional HMAC. Empty ``secret`` → no check (the gateway decides if allowed).

    With ``timestamp_header`` set, the timestamp is required, signed (``"{ts}:{body}"``) and must be
    within ``window`` seconds of ``now``. Raises WebhookError (401).
    """
    if not secret:
        return
    signature = header(headers, signature_header or DEFAULT_SIGNATURE_HEADER)
    if not signature:
        raise WebhookError("missing_signature", source=SOURCE,
                           message=f"missing {signature_header or DEFAULT_SIGNATURE_HEADER} header")
    ts: str | None = None
    if timestamp_header:
        ts = header(headers, timestamp_header)
        check_timestamp(ts, now=now, source=SOURCE, header_name=timestamp_header, window=window)
    expected = hmac.new(to_bytes(secret), _content(body, ts), hashlib.sha256).hexdigest()
    if not same(expected, signature.lower()):
        raise WebhookError("bad_signature", source=SOURCE, message="Grafana signature does not match")


def candidate_identifiers(*, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    """``alertmanager_receiver`` (the contact point), ``service`` and ``grafana_org_id`` from the
    unverified body; {} if unreadable."""
    data = try_json_object(body)
    return candidates(alertmanager_receiver=s(data, "receiver"), service=group_service(data),
                      grafana_org_id=s(data, "orgId"))


def parse(*, headers: Mapping[str, str], body: bytes, now: float) -> ParseResult:
    """One alert group → ParseResult (Grafana's ``title`` is used when present). ``now`` is unused."""
    return parse_group(load_json_object(body, SOURCE), source=SOURCE)


__all__ = ["DEFAULT_SIGNATURE_HEADER", "DEFAULT_TIMESTAMP_HEADER", "SOURCE", "candidate_identifiers",
           "parse", "sign", "verify"]
