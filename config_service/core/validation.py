"""Validation of the known config sections; unknown keys (anywhere) are kept.

:func:`validate_config` checks a node's whole raw config (secrets masked) and raises one 422
``invalid_config`` listing every problem as ``{"path", "message"}`` (values are never echoed: they
may be secrets). Besides the checks written here (routing claims, locks, the messages the API has
always given), every layer must fit the typed model the platform reads
(:class:`config_service.config_sections.EffectiveConfig`, e.g. the ``access`` lists of Slack ids): a
config the service accepts is one every reader can parse, since merging valid layers stays valid. :func:`normalize_patch` rewrites routing claim lists in a patch into
their canonical form (trimmed, repos and services lowercased, de-duplicated); lists replace on
merge, so normalising the patch normalises the stored config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from config_service.core.secret_fields import MASK
from config_service.integration_blocks import integration_block_problems
from config_service.team_config import config_errors
from incidentfox.errors import Unprocessable
from incidentfox.tenant_credentials import credential_problems

# Config key (plural) → routing kind (the singular key `POST /routing/lookup` takes).
ROUTING_CLAIM_KEYS: dict[str, str] = {
    "slack_channel_ids": "slack_channel_id",
    "github_repos": "github_repo",
    "pagerduty_service_ids": "pagerduty_service_id",
    "incidentio_team_ids": "incidentio_team_id",
    "alertmanager_receivers": "alertmanager_receiver",
    "services": "service",
}
LOWERCASED_KINDS = frozenset({"github_repo", "service"})
MAX_CLAIM_LEN = 255
LLM_PROVIDERS = ("openai", "openai_compatible", "anthropic")
DEPLOYMENT_MODES = ("shared", "dedicated")
_PATH_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_MCP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def normalize_claim(kind: str, value: str) -> str:
    value = value.strip()
    return value.lower() if kind in LOWERCASED_KINDS else value


def normalize_patch(patch: dict[str, Any]) -> dict[str, Any]:
    """Return ``patch`` with ``routing.<claim list>`` values normalised (other values untouched)."""
    routing = patch.get("routing")
    if not isinstance(routing, Mapping):
        return patch
    new_routing = dict(routing)
    for key, kind in ROUTING_CLAIM_KEYS.items():
        values = routing.get(key)
        if isinstance(values, list) and all(isinstance(v, str) for v in values):
            seen: dict[str, None] = {}
            for v in values:
                seen.setdefault(normalize_claim(kind, v), None)
            new_routing[key] = list(seen)
    return {**patch, "routing": new_routing}


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append({"path": path, "message": message})


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _obj(errs: _Errors, doc: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        errs.add(key, "must be an object")
        return None
    return value


def _check(errs: _Errors, section: Mapping[str, Any], prefix: str, key: str, ok, message: str) -> None:
    if key in section and not ok(section[key]):
        errs.add(f"{prefix}.{key}", message)


def validate_config(doc: Mapping[str, Any], *, kind: str) -> None:
    """Raise 422 ``invalid_config`` if a known section has the wrong shape for a ``kind`` node."""
    errs = _Errors()
    if (llm := _obj(errs, doc, "llm")) is not None:
        _check(errs, llm, "llm", "provider", lambda v: v in LLM_PROVIDERS, f"must be one of {list(LLM_PROVIDERS)}")
        for key in ("model", "base_url", "api_key"):
            _check(errs, llm, "llm", key, lambda v: isinstance(v, str), "must be a string")
    if (slack := _obj(errs, doc, "slack")) is not None:
        _check(errs, slack, "slack", "default_channel", lambda v: isinstance(v, str) and v.strip() != "",
               "must be a non-empty string")
    if (routing := _obj(errs, doc, "routing")) is not None:
        for key in ROUTING_CLAIM_KEYS:
            _check(errs, routing, "routing", key,
                   lambda v: isinstance(v, list) and all(isinstance(s, str) and 0 < len(s.strip()) <= MAX_CLAIM_LEN
                                                         for s in v),
                   f"must be a list of non-empty strings of at most {MAX_CLAIM_LEN} characters")
        if kind != "team" and any(routing.get(k) for k in ROUTING_CLAIM_KEYS):
            errs.add("routing", "only team nodes can claim routing identifiers")
    if (integrations := _obj(errs, doc, "integrations")) is not None:
        for name, block in integrations.items():
            if not isinstance(block, Mapping):
                errs.add(f"integrations.{name}", "must be an object")
        # Kubernetes and AWS credentials must be the tenant's own (incidentfox/tenant_credentials.py).
        for problem in credential_problems(integrations, placeholder=MASK):
            errs.add(problem.path, problem.message)
        # Trace and log-search blocks have typed fields (config_service/integration_blocks.py).
        for path, message in integration_block_problems(integrations, placeholder=MASK):
            errs.add(path, message)
    if "locked_paths" in doc:
        paths = doc["locked_paths"]
        if not (isinstance(paths, list) and all(isinstance(p, str) and _PATH_RE.fullmatch(p) for p in paths)):
            errs.add("locked_paths", "must be a list of dotted paths such as \"llm.provider\"")
        elif kind == "team" and paths:
            errs.add("locked_paths", "only org and unit nodes can lock paths")
    for section in ("tools", "subagents"):
        if (ids := _obj(errs, doc, section)) is not None:
            for key, value in ids.items():
                if not isinstance(value, bool):
                    errs.add(f"{section}.{key}", "must be true or false")
    if (inv := _obj(errs, doc, "investigation")) is not None:
        _check(errs, inv, "investigation", "deadline_s", lambda v: _is_num(v) and v > 0, "must be a number > 0")
        _check(errs, inv, "investigation", "correlation_window_s", lambda v: _is_num(v) and v >= 0,
               "must be a number >= 0")
        _check(errs, inv, "investigation", "max_turns", lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
    if (dep := _obj(errs, doc, "deployment")) is not None:
        _check(errs, dep, "deployment", "mode", lambda v: v in DEPLOYMENT_MODES,
               f"must be one of {list(DEPLOYMENT_MODES)}")
        _check(errs, dep, "deployment", "resources", lambda v: isinstance(v, Mapping), "must be an object")
    if (quotas := _obj(errs, doc, "quotas")) is not None:
        _check(errs, quotas, "quotas", "max_concurrent_runs", lambda v: _is_int(v) and v >= 1,
               "must be an integer >= 1")
    if "schedules" in doc:
        schedules = doc["schedules"]
        if not (isinstance(schedules, list) and all(isinstance(s, Mapping) for s in schedules)):
            errs.add("schedules", "must be a list of objects")
        else:   # where a schedule posts is checked against the team's channels (services/channels.py)
            for i, schedule in enumerate(schedules):
                dest = schedule.get("destination")
                if dest is not None and not isinstance(dest, Mapping):
                    errs.add(f"schedules.{i}.destination", "must be an object")
                elif dest is not None:
                    _check(errs, dest, f"schedules.{i}.destination", "slack_channel",
                           lambda v: isinstance(v, str) and 0 < len(v.strip()) <= MAX_CLAIM_LEN,
                           "must be a Slack channel id (a non-empty string)")
    if (sandbox := _obj(errs, doc, "sandbox")) is not None:
        _check(errs, sandbox, "sandbox", "ttl_s", lambda v: _is_num(v) and v > 0, "must be a number > 0")
        _check(errs, sandbox, "sandbox", "mcp_servers",
               lambda v: isinstance(v, list) and all(isinstance(s, str) and _MCP_NAME_RE.fullmatch(s) for s in v),
               "must be a list of allow-listed server names")
    reported = [e["path"] for e in errs.items]
    for err in config_errors(doc):   # the reader's model: whatever it would refuse is refused now
        if not any(err["path"] == p or err["path"].startswith(p + ".") for p in reported):
            errs.add(err["path"], err["message"])
    if errs.items:
        raise Unprocessable("config failed validation", code="invalid_config", details={"errors": errs.items})
