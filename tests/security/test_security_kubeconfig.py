"""Attacks through ``integrations.kubernetes``: a kubeconfig that runs a command or reads a host file.

Each attack is tried through the public config API (refused with 422 naming the field, nothing
stored) and again at use, with the hostile config written straight into the database as if the write
check had been bypassed: the tool refuses it, the command never runs, the file is never opened and
no request reaches the tenant's server.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from actors.tools.base import ToolContext, ToolResult
from actors.tools.execute import execute
from actors.tools.registry import TOOLS
from config_service.core.crypto import settings_cipher
from config_service.core.secret_fields import MASK, encrypt_secrets
from config_service.core.validation import validate_config
from config_service.db.models import ConfigNode
from config_service.services.config import get_effective_config
from config_service.services.orgs import bump_org_epoch
from config_service.testing import ConfigHarness, config_harness
from incidentfox.db import session_factory
from incidentfox.errors import Unprocessable
from incidentfox.kubeconfig import KubeconfigError, check_kubernetes_block, kubernetes_credentials
from tests.tls_certs import local_pki
from tests.tools_fakes import FakeHTTP

TOKEN = "tenant-sa-token-123"
NODES = {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": []}

# Every open() of a path in here is recorded: proof that a file was never read, not just never sent.
_WATCHED: set[str] = set()
_OPENED: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and args and isinstance(args[0], str) and args[0] in _WATCHED:
        _OPENED.append(args[0])


sys.addaudithook(_audit)


def kubeconfig(server: str, user: dict[str, Any], cluster_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "prod",
            "clusters": [{"name": "prod", "cluster": {"server": server,
                                                      "certificate-authority-data": local_pki().ca.cert_b64,
                                                      **(cluster_extra or {})}}],
            "users": [{"name": "sa", "user": user}],
            "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "sa"}}]}


def exec_user(marker: Path) -> dict[str, Any]:
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "touch",
                     "args": [str(marker)], "interactiveMode": "Never"}}


@pytest.fixture
async def k8s_api() -> AsyncIterator[FakeHTTP]:
    fake = FakeHTTP()
    await fake.start(ssl_context=local_pki().server_context())
    fake.route("GET", "/api/v1/nodes", (200, NODES))
    yield fake
    await fake.close()


@pytest.fixture
async def cs(sqlite_url: str, tmp_path: Path) -> AsyncIterator[ConfigHarness]:
    async with config_harness(db_url=sqlite_url, home=tmp_path) as harness:
        await harness.create_org("acme")
        await harness.create_node("acme", "sre", kind="team")
        yield harness


async def run(ctx: ToolContext) -> ToolResult:
    return await execute(TOOLS["kubernetes_list_nodes"], {}, ctx, backoff_s=0.001)


async def store_bypassing_checks(cs: ConfigHarness, config: dict[str, Any]) -> dict[str, Any]:
    """Write ``config`` (encrypted like a normal write) straight into the node row, then read the
    engine's revealed effective config, as the tool executor receives it."""
    sessions = session_factory(cs.app.state.engine)
    async with sessions() as session:
        await bump_org_epoch(session, org_id="acme")
        node = (await session.execute(select(ConfigNode).where(
            ConfigNode.org_id == "acme", ConfigNode.node_id == "sre"))).scalar_one()
        node.config = encrypt_secrets(config, settings_cipher(cs.settings))
        await session.commit()
    async with sessions() as session:
        return await get_effective_config(session, org_id="acme", node_id="sre", reveal_secrets=True,
                                          settings=cs.settings)


def error_paths(response: Any) -> list[str]:
    return [e["path"] for e in response.json()["error"]["details"]["errors"]]


# ---- at config write --------------------------------------------------------------------------------

@pytest.mark.parametrize("as_text", [True, False], ids=["yaml-text", "object"])
async def test_exec_kubeconfig_is_refused_at_write(cs: ConfigHarness, tmp_path: Path, as_text: bool) -> None:
    marker = tmp_path / "pwned"
    doc = kubeconfig("https://k8s.example.com", exec_user(marker))
    value = yaml.safe_dump(doc) if as_text else doc
    before = await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/raw")
    r = await cs.patch("acme", "sre", {"integrations": {"kubernetes": {"kubeconfig": value}}})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_config")
    assert error_paths(r) == ["integrations.kubernetes.kubeconfig.users[0].user.exec"]
    assert str(marker) not in r.text and "touch" not in r.text
    after = await cs.call("GET", "/api/v1/orgs/acme/nodes/sre/config/raw")
    assert after.json() == before.json()  # nothing stored
    assert not marker.exists()


HOSTILE: list[tuple[str, Any, str]] = [
    # (what, mutation of a valid kubeconfig, offending path inside `kubeconfig`)
    ("tokenFile", lambda d: d["users"][0]["user"].update(tokenFile="/etc/passwd"), "users[0].user.tokenFile"),
    ("auth-provider", lambda d: d["users"][0]["user"].update({"auth-provider": {"name": "gcp"}}),
     "users[0].user.auth-provider"),
    ("client-certificate path", lambda d: d["users"][0]["user"].update({
        "client-certificate": "/etc/ssl/private/platform.crt"}), "users[0].user.client-certificate"),
    ("client-key path", lambda d: d["users"][0]["user"].update({"client-key": "/root/.ssh/id_rsa"}),
     "users[0].user.client-key"),
    ("certificate-authority path", lambda d: d["clusters"][0]["cluster"].update({
        "certificate-authority": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"}),
     "clusters[0].cluster.certificate-authority"),
    ("basic auth", lambda d: d["users"][0]["user"].update(username="admin"),
     "users[0].user.username"),
    ("impersonation", lambda d: d["users"][0]["user"].update({"as": "system:admin"}), "users[0].user.as"),
    ("proxy-url", lambda d: d["clusters"][0]["cluster"].update({"proxy-url": "http://169.254.169.254"}),
     "clusters[0].cluster.proxy-url"),
    ("cluster extensions", lambda d: d["clusters"][0]["cluster"].update(extensions=[{"name": "x"}]),
     "clusters[0].cluster.extensions"),
    ("context extensions", lambda d: d["contexts"][0]["context"].update(extensions=[]),
     "contexts[0].context.extensions"),
    ("top-level extensions", lambda d: d.update(extensions=[]), "extensions"),
    ("unknown user field", lambda d: d["users"][0]["user"].update(tokenfile="/etc/passwd"),
     "users[0].user.tokenfile"),
    ("unknown entry field", lambda d: d["users"][0].update(exec={"command": "sh"}), "users[0].exec"),
    ("preferences", lambda d: d.update(preferences={"colors": True}), "preferences.colors"),
    ("TLS off", lambda d: d["clusters"][0]["cluster"].update({"insecure-skip-tls-verify": True}),
     "clusters[0].cluster.insecure-skip-tls-verify"),
    ("cleartext server", lambda d: d["clusters"][0]["cluster"].update(server="http://k8s.example.com"),
     "clusters[0].cluster.server"),
    ("userinfo in server", lambda d: d["clusters"][0]["cluster"].update(server="https://u:p@k8s.example.com"),
     "clusters[0].cluster.server"),
    ("CA that is not a certificate", lambda d: d["clusters"][0]["cluster"].update({
        "certificate-authority-data": "L2V0Yy9wYXNzd2Q="}), "clusters[0].cluster.certificate-authority-data"),
    ("header injection in token", lambda d: d["users"][0]["user"].update(token="t\r\nX-Evil: 1"),
     "users[0].user.token"),
    ("second user with exec", lambda d: d["users"].append({"name": "other", "user": {"exec": {}}}),
     "users[1].user.exec"),
]


@pytest.mark.parametrize("mutate, path", [(m, p) for _, m, p in HOSTILE], ids=[w for w, _, _ in HOSTILE])
def test_hostile_kubeconfig_fields_are_refused_by_path(mutate: Any, path: str) -> None:
    doc = kubeconfig("https://k8s.example.com", {"token": TOKEN})
    mutate(doc)
    for value in (doc, yaml.safe_dump(doc)):
        with pytest.raises(KubeconfigError) as err:
            kubernetes_credentials({"kubeconfig": value})
        assert err.value.path == f"kubeconfig.{path}"
        with pytest.raises(Unprocessable) as refused:
            validate_config({"integrations": {"kubernetes": {"kubeconfig": value}}}, kind="team")
        assert refused.value.details["errors"] == [
            {"path": f"integrations.kubernetes.kubeconfig.{path}", "message": err.value.message}]


@pytest.mark.parametrize("block, path", [
    ({"host": "https://k8s.example.com", "token": TOKEN, "verify_ssl": False}, "verify_ssl"),
    ({"host": "http://10.0.0.1", "token": TOKEN}, "host"),
    ({"host": "https://k8s.example.com", "token": TOKEN, "token_file": "/etc/passwd"}, "token_file"),
    ({"kubeconfig": "{}", "host": "https://k8s.example.com"}, "host"),
    ({"kubeconfig": "clusters: [unclosed", "context": "x"}, "kubeconfig"),
    ({"kubeconfig": "[" * 5000}, "kubeconfig"),
])
async def test_hostile_blocks_are_refused_at_write(cs: ConfigHarness, block: dict, path: str) -> None:
    r = await cs.patch("acme", "sre", {"integrations": {"kubernetes": block}})
    assert r.status_code == 422 and error_paths(r) == [f"integrations.kubernetes.{path}"]
    assert TOKEN not in r.text


async def test_a_valid_kubeconfig_is_stored_and_used(cs: ConfigHarness, k8s_api: FakeHTTP) -> None:
    doc = kubeconfig(k8s_api.url, {"token": TOKEN})
    r = await cs.patch("acme", "sre", {"integrations": {"kubernetes": {"kubeconfig": yaml.safe_dump(doc)}}})
    assert r.status_code == 200, r.text
    # A later write that does not resend the (masked) kubeconfig is not refused for it.
    r = await cs.patch("acme", "sre", {"integrations": {"kubernetes": {"context": "prod"}}})
    assert r.status_code == 200, r.text
    sessions = session_factory(cs.app.state.engine)
    async with sessions() as session:
        eff = await get_effective_config(session, org_id="acme", node_id="sre", reveal_secrets=True,
                                         settings=cs.settings)
    result = await run(ToolContext(integrations=eff["integrations"]))
    assert result.ok, result.message
    assert k8s_api.calls("/api/v1/nodes")[0].headers["Authorization"] == f"Bearer {TOKEN}"


# ---- at use, with the write check bypassed -------------------------------------------------------------

async def test_exec_stored_in_the_database_is_refused_at_use_and_never_runs(
        cs: ConfigHarness, k8s_api: FakeHTTP, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    eff = await store_bypassing_checks(cs, {"integrations": {"kubernetes": {
        "kubeconfig": yaml.safe_dump(kubeconfig(k8s_api.url, exec_user(marker)))}}})
    result = await run(ToolContext(integrations=eff["integrations"]))
    assert result.error == "not_configured" and result.attempts == 1
    assert result.message.startswith("integrations.kubernetes.kubeconfig.users[0].user.exec:")
    assert not marker.exists()
    assert k8s_api.requests == []


async def test_token_file_is_never_read_nor_sent(cs: ConfigHarness, k8s_api: FakeHTTP, tmp_path: Path) -> None:
    secret_file = tmp_path / "platform-secret"
    secret_file.write_text("PLATFORM-SECRET-VALUE")
    _WATCHED.update({str(secret_file), "/etc/passwd"})
    for path in (str(secret_file), "/etc/passwd"):
        for user in ({"tokenFile": path}, {"token": TOKEN, "tokenFile": path}):
            eff = await store_bypassing_checks(cs, {"integrations": {"kubernetes": {
                "kubeconfig": kubeconfig(k8s_api.url, user)}}})
            result = await run(ToolContext(integrations=eff["integrations"]))
            assert result.error == "not_configured" and "tokenFile" in result.message
            assert "PLATFORM-SECRET" not in result.message and "root:" not in result.message
    assert _OPENED == [] and k8s_api.requests == []


async def test_file_paths_stored_in_the_database_are_never_opened(cs: ConfigHarness, k8s_api: FakeHTTP,
                                                                  tmp_path: Path) -> None:
    key = tmp_path / "platform.key"
    key.write_text("not a key")
    _WATCHED.add(str(key))
    for user, cluster in (({"token": TOKEN, "client-key": str(key)}, {}),
                          ({"token": TOKEN}, {"certificate-authority": str(key)})):
        doc = kubeconfig(k8s_api.url, user, cluster)
        eff = await store_bypassing_checks(cs, {"integrations": {"kubernetes": {"kubeconfig": doc}}})
        assert (await run(ToolContext(integrations=eff["integrations"]))).error == "not_configured"
    assert _OPENED == [] and k8s_api.requests == []


# ---- fuzzing -------------------------------------------------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                     st.text(max_size=40), st.just(MASK), st.just("https://k8s.example.com"))
_keys = st.sampled_from(["apiVersion", "kind", "clusters", "users", "contexts", "current-context", "name",
                         "cluster", "user", "context", "server", "token", "exec", "tokenFile",
                         "certificate-authority-data", "client-key-data", "namespace", "preferences",
                         "extensions", "insecure-skip-tls-verify"]) | st.text(max_size=12)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(_keys, inner, max_size=5), max_leaves=30)


@given(_json, st.booleans())
def test_fuzzed_kubeconfigs_raise_only_the_typed_error(doc: Any, as_text: bool) -> None:
    value = yaml.safe_dump(doc) if as_text else copy.deepcopy(doc)
    for block in ({"kubeconfig": value}, {"kubeconfig": value, "context": "prod"}):
        try:
            kubernetes_credentials(block)
        except KubeconfigError:
            pass
        try:
            check_kubernetes_block(block, placeholder=MASK)
        except KubeconfigError:
            pass
        try:
            validate_config({"integrations": {"kubernetes": block}}, kind="team")
        except Unprocessable as exc:
            assert all(e["path"].startswith("integrations.kubernetes") for e in exc.details["errors"])


@given(st.dictionaries(_keys, _json, max_size=6))
def test_fuzzed_blocks_raise_only_the_typed_error(block: dict[str, Any]) -> None:
    try:
        kubernetes_credentials(block)
    except KubeconfigError:
        pass
