"""Webhook sources as the config service sees them: who issues each source's signing secret, and
which secrets and options it accepts. Pure; no I/O.

The gateway's registry (:mod:`serve_apps.webhooks.registry`) declares how each source is verified
and parsed; this module declares the part the config service needs to store per-org secrets, one
layer below (the config service never imports the gateway). A test keeps both lists equal.

* ``issuer="platform"``: the sender lets you type a secret (GitHub, Alertmanager, Grafana), so the
  config service generates one (256 random bits) and shows it once.
* ``issuer="sender"``: the sender assigns the secret (Slack's app signing secret, PagerDuty's
  per-subscription secret, incident.io's ``whsec_`` secret); the tenant pastes it in.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field
from typing import Literal

from incidentfox.errors import NotFound, Unprocessable

SECRET_MIN = 16
SECRET_MAX = 512
GENERATED_BYTES = 32
_PRINTABLE = re.compile(r"[\x21-\x7e]+")       # visible ASCII, no spaces: what every sender sends
# Grafana's signature header is configuration; it must end in "-Signature" so the gateway can tell
# an unsigned request from a signed one before it looks anything up (cheap rejection).
_SIGNATURE_HEADER = re.compile(r"X-[A-Za-z0-9-]{1,60}-Signature", re.IGNORECASE)
_TIMESTAMP_HEADER = re.compile(r"X-[A-Za-z0-9-]{1,64}", re.IGNORECASE)


@dataclass(frozen=True)
class WebhookSourcePolicy:
    name: str
    issuer: Literal["platform", "sender"]
    secret_format: Literal["any", "whsec"] = "any"
    options: frozenset[str] = field(default_factory=frozenset)   # non-secret per-org verify options


WEBHOOK_SOURCES: dict[str, WebhookSourcePolicy] = {p.name: p for p in (
    WebhookSourcePolicy("slack", "sender"),
    WebhookSourcePolicy("github", "platform"),
    WebhookSourcePolicy("pagerduty", "sender"),
    WebhookSourcePolicy("incidentio", "sender", secret_format="whsec"),
    WebhookSourcePolicy("alertmanager", "platform"),
    WebhookSourcePolicy("grafana", "platform", options=frozenset({"signature_header", "timestamp_header"})),
)}


def source_policy(name: str) -> WebhookSourcePolicy:
    """404 ``unknown_webhook_source`` for a name that is not a webhook source."""
    policy = WEBHOOK_SOURCES.get(name) if isinstance(name, str) else None
    if policy is None:
        raise NotFound("unknown webhook source", code="unknown_webhook_source",
                       details={"source": str(name)[:64], "sources": sorted(WEBHOOK_SOURCES)})
    return policy


def generate_secret(policy: WebhookSourcePolicy) -> str:
    """A fresh secret for a platform-issued source (URL-safe, 256 random bits)."""
    if policy.issuer != "platform":
        raise Unprocessable(f"{policy.name} assigns its own signing secret: send it as 'secret'",
                            code="secret_required", details={"source": policy.name})
    return secrets.token_urlsafe(GENERATED_BYTES)


def check_secret(policy: WebhookSourcePolicy, secret: str) -> str:
    """A tenant-supplied secret, or 422 ``invalid_webhook_secret`` (never echoing it)."""
    if not isinstance(secret, str) or not SECRET_MIN <= len(secret) <= SECRET_MAX \
            or not _PRINTABLE.fullmatch(secret):
        raise Unprocessable(f"secret must be {SECRET_MIN}..{SECRET_MAX} visible ASCII characters",
                            code="invalid_webhook_secret", details={"source": policy.name})
    if policy.secret_format == "whsec":
        raw = secret.removeprefix("whsec_")
        try:
            key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not secret.startswith("whsec_") or len(key) < 16:
            raise Unprocessable("secret must be the sender's whsec_<base64> signing secret",
                                code="invalid_webhook_secret", details={"source": policy.name})
    return secret


def check_options(policy: WebhookSourcePolicy, options: dict[str, str]) -> dict[str, str]:
    """Non-secret verify options (Grafana header names), or 422 ``invalid_webhook_option``."""
    out: dict[str, str] = {}
    for key, value in options.items():
        if value is None or value == "":
            continue
        if key not in policy.options:
            raise Unprocessable(f"{policy.name} takes no option {key!r}", code="invalid_webhook_option",
                                details={"source": policy.name, "option": key})
        pattern = _SIGNATURE_HEADER if key == "signature_header" else _TIMESTAMP_HEADER
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise Unprocessable(f"{key} must match {pattern.pattern}", code="invalid_webhook_option",
                                details={"source": policy.name, "option": key})
        out[key] = value
    return out
