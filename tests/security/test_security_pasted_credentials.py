"""A credential pasted with a stray newline or tab never comes back in clear.

HTTP refuses such a header value before it is sent, and h11's error quotes it escaped
(``Illegal header value b'…\\n'``), a form that matching the stored value exactly would miss. Three
layers, each tested on its own:

* at config write: a value sent in a request header (``headers`` values, ``token``, ``api_key`` …)
  holding a control character or a blank at either end is 422 ``invalid_config`` naming the path,
  never the value;
* at use (a config stored before the rule): the HTTP call reports the problem without quoting the
  header, and every quoted form of a credential is masked in what a tool returns;
* header values count as credentials for masking whatever their name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from security_kit import FakeDNS

from actors.tools.base import ToolContext
from actors.tools.execute import execute, mask_text, secret_forms
from actors.tools.registry import TOOLS
from config_service.testing import ConfigHarness, config_harness
from incidentfox.egress import EgressPolicy
from tests.tools_fakes import FakeHTTP

NAME = "logs.corp.example"
POLICY = EgressPolicy.build(allow=[NAME])
KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def cs(sqlite_url: str, tmp_path: Path) -> AsyncIterator[ConfigHarness]:
    async with config_harness(db_url=sqlite_url, home=tmp_path) as harness:
        await harness.create_org("acme")
        await harness.create_node("acme", "sre", kind="team")
        yield harness


@pytest.mark.parametrize(("block", "path", "value"), [
    ("datadog", ("api_key",), KEY + "\n"),
    ("elasticsearch", ("api_key",), "\t" + KEY),
    ("grafana", ("token",), KEY + " "),
    ("prometheus", ("headers", "X-Auth-Key"), KEY + "\r\n"),
    ("tempo", ("tenant",), "team\x07one" + KEY),
], ids=["untyped-newline", "typed-tab", "token-blank", "header-crlf", "tenant-bell"])
async def test_a_header_value_with_a_control_character_is_refused_at_write(cs: ConfigHarness, block: str,
                                                                           path: tuple[str, ...], value: str):
    leaf: Any = value
    for key in reversed(path):
        leaf = {key: leaf}
    r = await cs.patch("acme", "sre", {"integrations": {block: {"url": "https://x.example", **leaf}}})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_config"), r.text
    errors = r.json()["error"]["details"]["errors"]
    assert [e["path"] for e in errors] == [".".join(("integrations", block, *path))]
    assert KEY not in r.text


async def test_multi_line_values_that_are_not_headers_are_accepted(cs: ConfigHarness):
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"
    r = await cs.patch("acme", "sre", {"integrations": {"github": {"app_id": "1", "private_key": pem},
                                                        "datadog": {"api_key": KEY, "app_key": KEY}}})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("tool", "block", "args"), [
    ("elasticsearch_search_logs", {"api_key": KEY + "\n"},
     {"query": "x", "index": None, "since_minutes": None, "limit": None}),
    ("prometheus_query", {"headers": {"X-Auth-Key": KEY + "\t"}}, {"query": "up", "metric": None, "time": None}),
    ("loki_query_logs", {"token": KEY + "\n"}, {"query": "{app=\"x\"}", "since_minutes": None, "limit": None}),
], ids=["api-key", "header-named-innocently", "bearer-token"])
async def test_a_stored_pasted_credential_never_reaches_the_tool_result(upstream: FakeHTTP, tool: str,
                                                                        block: dict[str, Any],
                                                                        args: dict[str, Any]):
    spec = TOOLS[tool]
    url = upstream.url.replace("127.0.0.1", NAME)
    ctx = ToolContext(integrations={spec.integration: {"url": url, **block}}, org_id="acme", team_id="sre",
                      egress=POLICY, resolver=FakeDNS({NAME: ["127.0.0.1"]}))
    result = await execute(spec, args, ctx, backoff_s=0.001)
    assert not result.ok
    dumped = result.model_dump_json()
    assert KEY not in dumped and KEY[:16] not in dumped, dumped


def test_every_quoted_form_of_a_secret_is_masked():
    secret = "glsa_SECRET!tok+value\n"
    for quoted in (f"Illegal header value {secret.encode()!r}", repr(secret), f'{{"token": "{secret.strip()}\\n"}}', secret.strip()):
        masked = mask_text(f"refused: {quoted} (end)", [secret])
        assert "SECRET" not in masked and "tok+value" not in masked, masked
    assert secret in secret_forms(secret) and secret.strip() in secret_forms(secret)
