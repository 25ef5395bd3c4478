"""Pure edges of the config service: ids, JSON parsing, validation, locks, secrets, impersonation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet, MultiFernet
from hypothesis import given, settings
from hypothesis import strategies as st

from config_service.core.ids import is_valid_id, require_id
from config_service.core.impersonation import ImpersonationError, sign_impersonation, verify_impersonation
from config_service.core.jsondoc import parse_json
from config_service.core.locks import find_lock_violation, prune_locked, raise_if_locked
from config_service.core.secret_fields import (
    ENC_PREFIX,
    MASK,
    decrypt_secrets,
    drop_masked,
    encrypt_secrets,
    is_secret_path,
    mask_secrets,
    rotate_secrets,
)
from config_service.core.validation import normalize_patch, validate_config
from incidentfox.errors import Conflict, IncidentFoxError, Unprocessable

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", ["acme", "a", "team-1", "0abc", "a" * 31])
def test_valid_ids(value):
    assert is_valid_id(value)


@pytest.mark.parametrize("value", ["Acme", "a.b", "a_b", "-a", "", "a" * 32, "a b", "ä", None, 3])
def test_invalid_ids_are_422(value):
    assert not is_valid_id(value)
    with pytest.raises(Unprocessable) as exc:
        require_id(value, field="org_id")
    assert exc.value.code == "invalid_id" and exc.value.details["field"] == "org_id"


@pytest.mark.parametrize("raw,code,status", [
    (b"{", "malformed_json", 400),
    (b"\xff\xfe", "malformed_json", 400),
    (b'{"a": NaN}', "malformed_json", 400),
    (b'{"a": Infinity}', "malformed_json", 400),
    (b'{"a": "\\u0000"}', "invalid_string", 422),
    (b'{"a\\u0000": 1}', "invalid_string", 422),
    (b'{"a": "\\ud800"}', "invalid_string", 422),
    (b"[" * 5000 + b"]" * 5000, "too_deep", 422),
    (b'{"a":' * 40 + b"1" + b"}" * 40, "too_deep", 422),
    (b"1" * 5000, "malformed_json", 400),  # beyond Python's int-string limit
    (b'{"a": [1e999]}', "invalid_number", 422),
])
def test_parse_json_rejects_with_typed_errors(raw, code, status):
    with pytest.raises(IncidentFoxError) as exc:
        parse_json(raw)
    assert (exc.value.code, exc.value.status) == (code, status)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_parse_json_raises_only_typed_errors(raw):
    try:
        parse_json(raw)
    except IncidentFoxError as exc:
        assert 400 <= exc.status < 500


def test_parse_json_accepts_nesting_at_the_limit():
    doc = parse_json(b'{"a":' * 32 + b"1" + b"}" * 32)
    assert isinstance(doc, dict)


def test_validation_reports_every_bad_known_section_and_keeps_unknown():
    bad = {"llm": {"provider": "gpt-cloud", "model": 3}, "tools": {"k8s": "yes"},
           "investigation": {"deadline_s": -1, "max_turns": 1.5}, "deployment": {"mode": "big"},
           "quotas": {"max_concurrent_runs": True}, "schedules": {"x": 1}, "sandbox": {"mcp_servers": ["rm -rf /"]},
           "routing": {"slack_channel_ids": "C1"}, "locked_paths": ["ok.path", "bad path"],
           "integrations": {"slack": "token"}, "slack": {"default_channel": ""}}
    with pytest.raises(Unprocessable) as exc:
        validate_config(bad, kind="team")
    paths = {e["path"] for e in exc.value.details["errors"]}
    assert paths == {"llm.provider", "llm.model", "tools.k8s", "investigation.deadline_s", "investigation.max_turns",
                     "deployment.mode", "quotas.max_concurrent_runs", "schedules", "sandbox.mcp_servers",
                     "routing.slack_channel_ids", "locked_paths", "integrations.slack", "slack.default_channel"}
    assert "token" not in json.dumps(exc.value.details)  # values are never echoed
    validate_config({"custom": {"anything": [1, {"x": None}]}, "llm": {"provider": "anthropic", "extra": 1}},
                    kind="team")


def test_trace_and_log_search_blocks_are_typed():
    good = {"integrations": {
        "tempo": {"url": "https://tempo.example.com", "token": "***", "tenant": "team-a", "verify_ssl": False},
        "jaeger": {"url": "http://jaeger.example.com:16686", "headers": {"X-Org": "a"}},
        "elasticsearch": {"url": "https://es.example.com:9200", "api_key": "***", "index": "logs-*",
                          "service_field": "kubernetes.labels.app", "custom": [1]}}}
    validate_config(good, kind="team")
    bad = {"integrations": {"tempo": {"url": "tempo:3200", "verify_ssl": "false"},
                            "jaeger": {"headers": ["X-Org: a"], "token": "s3cret-jaeger-token"},
                            "elasticsearch": {"timestamp_field": "a b", "api_key": 123}}}
    with pytest.raises(Unprocessable) as exc:
        validate_config(bad, kind="team")
    paths = {e["path"] for e in exc.value.details["errors"]}
    assert paths == {"integrations.tempo.url", "integrations.tempo.verify_ssl", "integrations.jaeger.headers",
                     "integrations.elasticsearch.timestamp_field", "integrations.elasticsearch.api_key"}
    assert "tempo:3200" not in json.dumps(exc.value.details) and "s3cret" not in json.dumps(exc.value.details)


def test_validation_kind_rules():
    with pytest.raises(Unprocessable):
        validate_config({"routing": {"services": ["a"]}}, kind="unit")
    with pytest.raises(Unprocessable):
        validate_config({"locked_paths": ["llm"]}, kind="team")
    validate_config({"locked_paths": ["llm"]}, kind="org")
    validate_config({"routing": {"services": []}}, kind="unit")


def test_normalize_patch_trims_lowercases_dedupes():
    patch = {"routing": {"slack_channel_ids": [" C01ABC ", "C01ABC"], "github_repos": ["Acme/Repo "],
                         "services": ["Checkout", "checkout"], "pagerduty_service_ids": ["PABC"]}}
    assert normalize_patch(patch)["routing"] == {"slack_channel_ids": ["C01ABC"], "github_repos": ["acme/repo"],
                                                 "services": ["checkout"], "pagerduty_service_ids": ["PABC"]}


def test_lock_collisions_name_path_and_node():
    ancestors = [("acme", {"locked_paths": ["llm.provider"]}), ("eng", {"locked_paths": ["quotas"]})]
    assert find_lock_violation(touched=[("llm", "model")], ancestors=ancestors) is None
    v = find_lock_violation(touched=[("quotas", "max_concurrent_runs")], ancestors=ancestors)
    assert (v.path, v.locked_path, v.locked_by) == ("quotas.max_concurrent_runs", "quotas", "eng")
    with pytest.raises(Conflict) as exc:
        raise_if_locked(touched=[("llm",)], ancestors=ancestors)
    assert exc.value.code == "path_locked"
    assert exc.value.details == {"path": "llm", "locked_path": "llm.provider", "locked_by": "acme"}


def test_prune_locked_drops_overriding_values_only():
    cfg = {"llm": {"provider": "x", "model": "m"}, "quotas": 3, "tools": {"a": True}}
    assert prune_locked(cfg, ["llm.provider", "quotas.max_concurrent_runs", "missing.path"]) == {
        "llm": {"model": "m"}, "tools": {"a": True}}
    assert cfg["llm"] == {"provider": "x", "model": "m"}  # input untouched


def test_secret_paths():
    assert is_secret_path(("integrations", "slack", "bot_token"))
    assert is_secret_path(("integrations", "datadog", "site"))  # the whole integrations subtree
    assert is_secret_path(("llm", "api_key"))
    assert is_secret_path(("x", "signing_secret")) and is_secret_path(("x", "password"))
    assert not is_secret_path(("llm", "model")) and not is_secret_path(("integrations",))
    assert not is_secret_path(("aws", "access_key_id"))


def test_encrypt_mask_decrypt_rotate():
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    cipher = MultiFernet([Fernet(old_key)])
    doc = {"llm": {"api_key": "sk-1", "model": "m"}, "integrations": {"aws": {"region": "eu", "port": 5,
                                                                             "secret_access_key": None}}}
    enc = encrypt_secrets(doc, cipher)
    assert enc["llm"]["model"] == "m" and enc["llm"]["api_key"].startswith(ENC_PREFIX)
    assert enc["integrations"]["aws"]["port"].startswith(ENC_PREFIX)
    assert enc["integrations"]["aws"]["secret_access_key"] is None  # patch nulls pass through
    assert "sk-1" not in json.dumps(enc)
    assert mask_secrets(enc) == {"llm": {"api_key": MASK, "model": "m"},
                                 "integrations": {"aws": {"region": MASK, "port": MASK, "secret_access_key": None}}}
    assert decrypt_secrets(enc, cipher) == doc  # types survive (5 stays an int)
    rotated_cipher = MultiFernet([Fernet(new_key), Fernet(old_key)])
    rotated, n = rotate_secrets(enc, rotated_cipher)
    assert n == 3
    assert decrypt_secrets(rotated, MultiFernet([Fernet(new_key)])) == doc


def test_masked_values_in_patches_mean_unchanged():
    patch = {"integrations": {"slack": {"bot_token": MASK, "channel": "C1"}, "pd": {"token": MASK}},
             "llm": {"model": MASK}}
    assert drop_masked(patch) == {"integrations": {"slack": {"channel": "C1"}}, "llm": {"model": MASK}}


KEY = b"k" * 32


def test_impersonation_round_trip_and_rejections():
    token, claims = sign_impersonation(key=KEY, org_id="acme", team_node_id="sre", ttl_s=600, now=NOW)
    got = verify_impersonation(token, key=KEY, now=NOW + timedelta(seconds=599))
    assert (got.org_id, got.team_node_id, got.jti) == ("acme", "sre", claims.jti)
    cases = {
        "expired": {"token": token, "key": KEY, "now": NOW + timedelta(seconds=600)},
        "bad_signature": {"token": token, "key": b"x" * 32, "now": NOW},
        "wrong_audience": {"token": token, "key": KEY, "now": NOW, "audience": "other"},
        "malformed": {"token": "imp_v1.abc", "key": KEY, "now": NOW},
    }
    for reason, kw in cases.items():
        with pytest.raises(ImpersonationError) as exc:
            verify_impersonation(kw.pop("token"), **kw)
        assert exc.value.reason == reason
    with pytest.raises(ValueError):
        sign_impersonation(key=KEY, org_id="acme", team_node_id="sre", ttl_s=901, now=NOW)


@settings(max_examples=200)
@given(st.data())
def test_impersonation_any_flipped_character_fails(data):
    token, _ = sign_impersonation(key=KEY, org_id="acme", team_node_id="sre", ttl_s=600, now=NOW)
    i = data.draw(st.integers(0, len(token) - 1))
    repl = data.draw(st.sampled_from("ABCabc012-_.="))
    tampered = token[:i] + repl + token[i + 1:]
    if tampered != token:
        with pytest.raises(ImpersonationError):
            verify_impersonation(tampered, key=KEY, now=NOW)
