"""The webhook sources, declared once: what the gateway, its docs and its tests iterate over.

For each source the gateway:

1. reads the default secret from ``secret_env`` (an org may override it at ``config_key`` in its
   effective config; ``candidate_identifiers`` picks which org's secret to try, from the unverified
   body, using the keys listed in ``candidate_keys``);
2. calls ``verify(headers=, body=, secret=, now=, **verify_options)``, where ``verify_options`` come
   from the org config fields named in ``option_keys`` (Grafana's header names; absent → defaults);
3. only then calls ``parse(headers=, body=, now=)`` and acts on the :class:`ParseResult`.

Every function raises only :class:`~serve_apps.webhooks.errors.WebhookError`, except
``candidate_identifiers``, which never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from serve_apps.webhooks import alertmanager, github, grafana, incidentio, pagerduty, slack
from serve_apps.webhooks.common import ParseResult
from serve_apps.webhooks.errors import WebhookError

Verify = Callable[..., None]
Parse = Callable[..., ParseResult]
CandidateIdentifiers = Callable[..., dict[str, str]]


@dataclass(frozen=True)
class SourceSpec:
    """One webhook source: its pure functions and where its secret comes from."""

    name: str                         # also the URL segment: POST /webhooks/<name>[/...]
    verify: Verify                    # (*, headers, body, secret, now, **options) -> None
    parse: Parse                      # (*, headers, body, now) -> ParseResult
    candidate_identifiers: CandidateIdentifiers   # (*, headers, body) -> dict[str, str]
    sign: Callable[..., dict[str, str]]           # test/bench helper: the headers the sender would add
    secret_env: str                   # env var holding the default secret
    config_key: str                   # dotted path in an org's effective config overriding it
    candidate_keys: tuple[str, ...]   # keys candidate_identifiers may return
    option_keys: Mapping[str, str] = field(default_factory=dict)  # verify kwarg -> config path
    secret_optional: bool = False     # True: verify() skips the check when the secret is empty
    module: ModuleType | None = None


def _spec(module: ModuleType, *, secret_env: str, config_field: str, candidate_keys: tuple[str, ...],
          option_fields: Mapping[str, str] | None = None, secret_optional: bool = False) -> SourceSpec:
    name = module.SOURCE
    return SourceSpec(
        name=name,
        verify=module.verify,
        parse=module.parse,
        candidate_identifiers=module.candidate_identifiers,
        sign=module.sign,
        secret_env=secret_env,
        config_key=f"integrations.{name}.{config_field}",
        candidate_keys=candidate_keys,
        option_keys={k: f"integrations.{name}.{v}" for k, v in (option_fields or {}).items()},
        secret_optional=secret_optional,
        module=module,
    )


SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        _spec(slack, secret_env="SLACK_SIGNING_SECRET", config_field="signing_secret",
              candidate_keys=("slack_app_id", "slack_team_id", "slack_enterprise_id", "slack_channel_id")),
        _spec(github, secret_env="GITHUB_WEBHOOK_SECRET", config_field="webhook_secret",
              candidate_keys=("github_repo", "github_owner", "github_installation_id", "github_hook_id")),
        _spec(pagerduty, secret_env="PAGERDUTY_WEBHOOK_SECRET", config_field="webhook_secret",
              candidate_keys=("pagerduty_service_id", "pagerduty_account", "pagerduty_subscription_id")),
        _spec(incidentio, secret_env="INCIDENTIO_WEBHOOK_SECRET", config_field="webhook_secret",
              candidate_keys=("slack_team_id", "slack_channel_id", "service", "incidentio_team_id")),
        _spec(alertmanager, secret_env="ALERTMANAGER_WEBHOOK_TOKEN", config_field="webhook_token",
              candidate_keys=("alertmanager_receiver", "service")),
        _spec(grafana, secret_env="GRAFANA_WEBHOOK_SECRET", config_field="webhook_secret",
              candidate_keys=("alertmanager_receiver", "service", "grafana_org_id"),
              option_fields={"signature_header": "signature_header", "timestamp_header": "timestamp_header"},
              secret_optional=True),
    )
}


def get_source(name: str) -> SourceSpec:
    """The spec for ``name``; an unknown source is a 404-shaped WebhookError."""
    spec = SOURCES.get(name)
    if spec is None:
        raise WebhookError("unknown_source", source=name[:64], message="unknown webhook source", status=404)
    return spec


def config_value(config: Mapping[str, Any], dotted: str) -> Any:
    """Look up ``integrations.<source>.<field>`` in a nested config dict; None when absent."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


__all__ = ["SOURCES", "ParseResult", "SourceSpec", "WebhookError", "config_value", "get_source"]
