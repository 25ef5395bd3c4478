"""Attacks through ``integrations.aws``: borrowing the platform's AWS identity, or picking the endpoint.

The platform's own credentials are in the environment (``AWS_ACCESS_KEY_ID``…, and a container
credential endpoint standing in for the EKS pod role), as they would be on a tool host. Every AWS
request goes through a recording proxy in front of moto (the operator's ``AWS_ENDPOINT_URL``), so the
tests see which access key signed each one.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st
from moto_kit import moto_server

from actors.tools.base import ToolContext, ToolResult
from actors.tools.execute import execute
from actors.tools.registry import TOOLS
from config_service.core.secret_fields import MASK
from config_service.core.validation import validate_config
from config_service.testing import ConfigHarness, config_harness
from incidentfox.aws_credentials import AwsCredentialsError, aws_integration, check_aws_block
from incidentfox.errors import Unprocessable
from incidentfox.settings import get_settings
from tests.tools_fakes import FakeHTTP

REGION = "us-east-1"
PLATFORM_KEY = "AKIAPLATFORM0000001"
ASSUMER_KEY = "AKIAASSUMER00000001"
TENANT = {"access_key_id": "AKIATENANT000000001", "secret_access_key": "tenant-secret-key-1"}
_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        iam = boto3.client("iam", region_name=REGION, endpoint_url=url, aws_access_key_id="AKIASEED",
                           aws_secret_access_key="seed")
        iam.create_role(RoleName="incidentfox-security-read", AssumeRolePolicyDocument="{}")
        yield url


class RecordingProxy:
    """Forwards every request to moto and records (signing key id, decoded form body)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.seen: list[tuple[str, dict[str, list[str]]]] = []
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        match = _CREDENTIAL.search(request.headers.get("Authorization", ""))
        form = parse_qs(body.decode(errors="replace")) if b"=" in body else {}
        self.seen.append((match.group(1) if match else "", form))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        # httpx's default 5 s timeout failed this under a full suite's load (moto answered slower and
        # the proxy said 500); what is tested is who signs, not how fast moto answers
        async with httpx.AsyncClient(timeout=60.0) as client:
            resp = await client.request(request.method, self.upstream + request.path_qs, headers=headers,
                                        content=body)
        keep = {k: v for k, v in resp.headers.items() if k.lower() in ("content-type", "x-amzn-requestid")}
        return web.Response(status=resp.status_code, body=resp.content, headers=keep)

    def signers(self) -> list[str]:
        return [key for key, _ in self.seen]


@pytest.fixture
async def proxy(moto_url: str) -> AsyncIterator[RecordingProxy]:
    rec = RecordingProxy(moto_url)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    rec.server = TestServer(app, host="127.0.0.1", port=0)
    await rec.server.start_server()
    yield rec
    await rec.server.close()


@pytest.fixture
async def pod_identity() -> AsyncIterator[FakeHTTP]:
    """A container-credentials endpoint, the way EKS hands a pod its role: must never be asked."""
    fake = FakeHTTP()
    await fake.start()
    fake.route("GET", "/creds", (200, {"AccessKeyId": "ASIAPODROLE00000001", "SecretAccessKey": "pod-secret",
                                       "Token": "pod-token", "Expiration": "2099-01-01T00:00:00Z"}))
    yield fake
    await fake.close()


@pytest.fixture(autouse=True)
def platform_env(proxy: RecordingProxy, pod_identity: FakeHTTP, monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> Iterator[None]:
    assert proxy.server is not None
    monkeypatch.setenv("AWS_ENDPOINT_URL", str(proxy.server.make_url("")).rstrip("/"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", PLATFORM_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "platform-secret-key")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "platform-session-token")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{pod_identity.url}/creds")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    for name in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "PROFILE"):
        monkeypatch.delenv(f"INCIDENTFOX_AWS_ASSUMER_{name}", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def assumer_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCIDENTFOX_AWS_ASSUMER_ACCESS_KEY_ID", ASSUMER_KEY)
    monkeypatch.setenv("INCIDENTFOX_AWS_ASSUMER_SECRET_ACCESS_KEY", "assumer-secret-key")
    get_settings.cache_clear()


async def run(block: Any, org: str = "acme", team: str = "sre", run_id: str | None = None) -> ToolResult:
    ctx = ToolContext(integrations={"aws": block}, org_id=org, team_id=team, run_id=run_id)
    return await execute(TOOLS["aws_rds_instances"], {}, ctx, backoff_s=0.001)


ROLE = "arn:aws:iam::123456789012:role/incidentfox-security-read"


# ---- at use --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("block", [{}, {"region": "eu-west-1"}, {"enabled": True}, True,
                                   {"region": REGION, "endpoint_url": "http://169.254.169.254/"},
                                   {"profile": "default"}, {"access_key_id": TENANT["access_key_id"]}])
async def test_no_tenant_credentials_means_no_call(block: Any, proxy: RecordingProxy,
                                                    pod_identity: FakeHTTP) -> None:
    result = await run(block)
    assert result.error == "not_configured" and result.attempts <= 1
    assert proxy.seen == [] and pod_identity.requests == []


async def test_tenant_keys_sign_every_request(proxy: RecordingProxy, pod_identity: FakeHTTP) -> None:
    result = await run({"region": REGION, **TENANT})
    assert result.ok, result.message
    assert proxy.signers() and set(proxy.signers()) == {TENANT["access_key_id"]}
    assert pod_identity.requests == []


async def test_role_is_assumed_by_the_assumer_with_an_org_scoped_external_id(
        proxy: RecordingProxy, pod_identity: FakeHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    assumer_keys(monkeypatch)
    block = {"region": REGION, "role_arn": ROLE, "external_id": "shared-ext-id"}
    assert (await run(block, org="acme", team="sre")).ok
    assert (await run(block, org="globex", team="ops")).ok  # same role and id written by another org
    sts = [(key, form) for key, form in proxy.seen if form.get("Action") == ["AssumeRole"]]
    assert [key for key, _ in sts] == [ASSUMER_KEY, ASSUMER_KEY]
    assert [form["ExternalId"] for _, form in sts] == [["acme:shared-ext-id"], ["globex:shared-ext-id"]]
    assert [form["RoleSessionName"] for _, form in sts] == [["incidentfox-acme-sre"], ["incidentfox-globex-ops"]]
    others = {key for key, form in proxy.seen if form.get("Action") != ["AssumeRole"]}
    assert others and all(key.startswith("ASIA") for key in others)  # the role's temporary keys
    assert PLATFORM_KEY not in proxy.signers() and pod_identity.requests == []
    # The assumed keys are reused until they near expiry: a second call assumes nothing.
    before = len(sts)
    assert (await run(block, org="acme", team="sre")).ok
    assert len([1 for _, f in proxy.seen if f.get("Action") == ["AssumeRole"]]) == before


async def test_a_runs_aws_clients_and_assumed_keys_go_when_the_run_ends(
        proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tenant keys live in the executor only while their run does: forgetting the run drops its
    cached boto3 clients and assumed-role keys, and other runs' entries stay."""
    from actors.engine.tool_executor import ToolExecutorCore
    from actors.tools import aws_client

    assumer_keys(monkeypatch)
    block = {"region": REGION, "role_arn": ROLE, "external_id": "ext-run"}
    assert (await run(block, run_id="run_one")).ok
    assert (await run({"region": REGION, **TENANT}, run_id="run_two")).ok

    def held(scope: str) -> int:
        return sum(1 for k in [*aws_client._clients, *aws_client._assumed] if k[0] == scope)

    assert held("run_one") >= 2 and held("run_two") >= 1   # a client each, and run_one's role keys
    ToolExecutorCore(None).forget("run_one")
    assert held("run_one") == 0 and held("run_two") >= 1


async def test_role_without_assumer_never_falls_back(proxy: RecordingProxy, pod_identity: FakeHTTP) -> None:
    result = await run({"role_arn": ROLE, "external_id": "ext-1"})
    assert result.error == "not_configured" and "INCIDENTFOX_AWS_ASSUMER_" in result.message
    assert proxy.seen == [] and pod_identity.requests == []


async def test_assumer_profile_needs_credentials_of_its_own(
        proxy: RecordingProxy, pod_identity: FakeHTTP, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "aws-config").write_text("[profile assumer]\nregion = us-east-1\n"
                                         "[profile keyed]\nregion = us-east-1\n")
    (tmp_path / "aws-credentials").write_text(
        f"[keyed]\naws_access_key_id = {ASSUMER_KEY}\naws_secret_access_key = assumer-secret\n")
    block = {"role_arn": ROLE, "external_id": "ext-1"}
    monkeypatch.setenv("INCIDENTFOX_AWS_ASSUMER_PROFILE", "assumer")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")  # else the profile resolves to the pod role
    get_settings.cache_clear()
    result = await run(block)
    assert result.error == "not_configured" and "no credentials of its own" in result.message
    assert proxy.seen == []
    monkeypatch.setenv("INCIDENTFOX_AWS_ASSUMER_PROFILE", "keyed")
    get_settings.cache_clear()
    assert (await run(block)).ok
    assert proxy.signers()[0] == ASSUMER_KEY and PLATFORM_KEY not in proxy.signers()


# ---- at config write -----------------------------------------------------------------------------------

@pytest.fixture
async def cs(sqlite_url: str, tmp_path: Path) -> AsyncIterator[ConfigHarness]:
    async with config_harness(db_url=sqlite_url, home=tmp_path) as harness:
        await harness.create_org("acme")
        await harness.create_node("acme", "sre", kind="team")
        yield harness


@pytest.mark.parametrize("block, path", [
    ({"region": "eu-west-1"}, "integrations.aws.access_key_id"),
    ({"enabled": True}, "integrations.aws.access_key_id"),
    ({**TENANT, "endpoint_url": "http://169.254.169.254"}, "integrations.aws.endpoint_url"),
    ({"profile": "platform"}, "integrations.aws.profile"),
    ({"credential_process": "cat /etc/passwd"}, "integrations.aws.credential_process"),
    ({"secret_access_key": "s3cr3t-value-xyz"}, "integrations.aws.access_key_id"),
    ({"role_arn": ROLE}, "integrations.aws.external_id"),
    ({"role_arn": "arn:aws:iam::123:user/x", "external_id": "e1"}, "integrations.aws.role_arn"),
    ({**TENANT, "role_arn": ROLE, "external_id": "e1"}, "integrations.aws.role_arn"),
    ({**TENANT, "region": "evil.example.com#"}, "integrations.aws.region"),
])
async def test_refused_at_write_naming_the_field(cs: ConfigHarness, block: dict, path: str) -> None:
    r = await cs.patch("acme", "sre", {"integrations": {"aws": block}})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_config")
    assert [e["path"] for e in r.json()["error"]["details"]["errors"]] == [path]
    assert "s3cr3t" not in r.text and TENANT["secret_access_key"] not in r.text


async def test_accepted_at_write_and_stored_secrets_stay_hidden(cs: ConfigHarness) -> None:
    assert (await cs.patch("acme", "sre", {"integrations": {"aws": {**TENANT, "region": "eu-west-1"}}})
            ).status_code == 200
    # Changing only the region keeps the stored (masked) keys: accepted.
    assert (await cs.patch("acme", "sre", {"integrations": {"aws": {"region": "us-west-2"}}})).status_code == 200
    # Removing the secret leaves half a key pair: refused.
    r = await cs.patch("acme", "sre", {"integrations": {"aws": {"secret_access_key": None}}})
    assert r.status_code == 422
    # Switching to a role means clearing the keys in the same write.
    r = await cs.patch("acme", "sre", {"integrations": {"aws": {
        "access_key_id": None, "secret_access_key": None, "role_arn": ROLE, "external_id": "ext-1"}}})
    assert r.status_code == 200, r.text
    assert (await cs.patch("acme", "sre", {"integrations": {"aws": {"enabled": False}}})).status_code == 200


# ---- fuzzing -------------------------------------------------------------------------------------------

_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30), st.just(MASK),
                    st.just(ROLE), st.lists(st.text(max_size=5), max_size=2))
_keys = st.sampled_from(sorted({"enabled", "region", "access_key_id", "secret_access_key", "session_token",
                                "role_arn", "external_id", "endpoint_url", "profile"})) | st.text(max_size=10)


@given(st.dictionaries(_keys, _values, max_size=7))
def test_fuzzed_aws_blocks_raise_only_the_typed_error(block: dict[str, Any]) -> None:
    for check in (aws_integration, lambda b: check_aws_block(b, placeholder=MASK)):
        try:
            check(block)
        except AwsCredentialsError as exc:
            assert not exc.path or exc.path in block or exc.path in ("access_key_id", "secret_access_key",
                                                                     "role_arn", "external_id")
    try:
        validate_config({"integrations": {"aws": block}}, kind="team")
    except Unprocessable as exc:
        assert all(e["path"].startswith("integrations.aws") for e in exc.details["errors"])
