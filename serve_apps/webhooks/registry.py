"""The webhook sources, declared once: what the gateway, its docs and its tests iterate over.

For each source the gateway (issue 12, "the webhook boundary"):

1. refuses the request (401 ``missing_signature``) unless ``signature_present(headers)``: this costs
   no lookup, database read or decrypt;
2. picks the secret(s) from the SIGNED ROUTE only (:mod:`serve_apps.webhook_secrets`): the
   environment's ``secret_env`` on the shared URL, the org's or team's own secret on
   ``/o/<org>[/t/<team>]``. Nothing in the body chooses a secret;
3. calls ``verify(headers=, body=, secret=, now=, **options)`` (Grafana's header names are options
   stored with the org's secret; absent → defaults);
4. only then calls ``parse(headers=, body=, now=)`` and acts on the :class:`ParseResult`, whose
   ``trigger.delivery_id`` is derived from signed content only (the dedupe key).

Every function raises only :class:`~serve_apps.webhooks.errors.WebhookError`; ``signature_present``
never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType

from config_service.webhook_credentials import WEBHOOK_SOURCES, WebhookSourcePolicy
from serve_apps.webhooks import alertmanager, github, grafana, incidentio, pagerduty, slack
from serve_apps.webhooks.common import ParseResult
from serve_apps.webhooks.errors import WebhookError

Verify = Callable[..., None]
Parse = Callable[..., ParseResult]


@dataclass(frozen=True)
class SourceSpec:
    """One webhook source: its pure functions and where its default secret comes from."""

    name: str                         # also the URL segment: POST /webhooks/<name>[/...]
    verify: Verify                    # (*, headers, body, secret, now, **options) -> None
    parse: Parse                      # (*, headers, body, now) -> ParseResult
    signature_present: Callable[[Mapping[str, str]], bool]   # cheap pre-check, never raises
    sign: Callable[..., dict[str, str]]           # test/bench helper: the headers the sender would add
    secret_env: str                   # env var holding the shared URL's (single-tenant) secret
    policy: WebhookSourcePolicy       # who issues per-org secrets, which options they take
    module: ModuleType | None = None


def _spec(module: ModuleType, *, secret_env: str) -> SourceSpec:
    name = module.SOURCE
    return SourceSpec(name=name, verify=module.verify, parse=module.parse,
                      signature_present=module.signature_present, sign=module.sign,
                      secret_env=secret_env, policy=WEBHOOK_SOURCES[name], module=module)


SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        _spec(slack, secret_env="SLACK_SIGNING_SECRET"),
        _spec(github, secret_env="GITHUB_WEBHOOK_SECRET"),
        _spec(pagerduty, secret_env="PAGERDUTY_WEBHOOK_SECRET"),
        _spec(incidentio, secret_env="INCIDENTIO_WEBHOOK_SECRET"),
        _spec(alertmanager, secret_env="ALERTMANAGER_WEBHOOK_TOKEN"),
        _spec(grafana, secret_env="GRAFANA_WEBHOOK_SECRET"),
    )
}


def get_source(name: str) -> SourceSpec:
    """The spec for ``name``; an unknown source is a 404-shaped WebhookError."""
    spec = SOURCES.get(name)
    if spec is None:
        raise WebhookError("unknown_source", source=name[:64], message="unknown webhook source", status=404)
    return spec


__all__ = ["SOURCES", "ParseResult", "SourceSpec", "WebhookError", "get_source"]
