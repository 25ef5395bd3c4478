"""One reader of the environment: ``incidentfox.settings.Settings`` (issue 15, "One settings reference").

Production code reads no environment variable except through ``Settings``; the few places that touch
``os.environ`` for another reason (handing the environment on to a child process) are listed below,
each with its reason. Every field is documented and keeps today's variable name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from incidentfox.settings import WEBHOOK_SECRET_FIELDS, Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("incidentfox", "config_service", "serve_apps", "actors", "cluster", "cli", "evaluation")
SETTINGS_MODULE = "incidentfox/settings.py"

# (file, enclosing function) → why touching os.environ there is not an ad hoc read.
ALLOWED: dict[tuple[str, str], str] = {
    ("cli/platform_cmds.py", "prepare_environment"):
        "writes the variables `incidentfox up` settles on so Ray workers and Serve replicas inherit "
        "them, and returns the forwarded copy for a joined cluster; nothing is interpreted there",
    ("cli/demo/flow.py", "Demo.start_platform"):
        "builds the environment of the `incidentfox up` child process (this one, with the demo's "
        "values over it); the values it uses itself come from Settings",
    ("incidentfox/knowledge/git_source.py", "_git"):
        "passes only PATH on to the `git` child (with no user or system config and no prompt), so the "
        "clone finds git; nothing is interpreted there",
    ("incidentfox/knowledge/embedders.py", "MiniLMEmbedder.model"):
        "sets (setdefault, never reads) the Hugging Face offline switches before the bundled model "
        "loads, so transformers and huggingface_hub never try the network; nothing is interpreted",
}


def _env_uses(tree: ast.AST) -> list[tuple[str, int, str]]:
    """``(enclosing function, line, what)`` for each os.environ/os.getenv use and typer ``envvar=``."""
    os_names = {"os"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                inner = f"{scope}.{child.name}" if scope else child.name
            if (isinstance(child, ast.Attribute) and child.attr in ("environ", "environb", "getenv", "getenvb")
                    and isinstance(child.value, ast.Name) and child.value.id in os_names):
                found.append((scope, child.lineno, f"os.{child.attr}"))
            if isinstance(child, ast.ImportFrom) and child.module == "os":
                for alias in child.names:
                    if alias.name in ("environ", "environb", "getenv", "getenvb"):
                        found.append((scope, child.lineno, f"from os import {alias.name}"))
            if isinstance(child, ast.keyword) and child.arg in ("envvar", "auto_envvar_prefix"):
                found.append((scope, child.value.lineno, f"{child.arg}= (the CLI library reads it)"))
            visit(child, inner)

    visit(tree, "")
    return found


def test_production_code_reads_the_environment_only_through_settings() -> None:
    offenders: list[str] = []
    used_allowances: set[tuple[str, str]] = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == SETTINGS_MODULE:
                continue
            for scope, line, what in _env_uses(ast.parse(path.read_text(), filename=rel)):
                if (rel, scope) in ALLOWED:
                    used_allowances.add((rel, scope))
                else:
                    offenders.append(f"{rel}:{line} ({scope or 'module'}): {what}")
    assert not offenders, ("read these through incidentfox.settings.Settings (a field, with a description), "
                           "or allow-list the use with its reason:\n" + "\n".join(offenders))
    assert used_allowances == set(ALLOWED), f"stale allow-list entries: {set(ALLOWED) - used_allowances}"


def test_the_scan_sees_each_form_of_read() -> None:
    src = ("import os\nimport os as o\nfrom os import getenv\n"
           "def f():\n    return os.environ.get('A'), o.getenv('B')\n"
           "X = os.environ['C']\n"
           "def g(url: str = typer.Option(None, envvar='D')): ...\n")
    assert [(scope, what) for scope, _, what in _env_uses(ast.parse(src))] == [
        ("", "from os import getenv"), ("f", "os.environ"), ("f", "os.getenv"), ("", "os.environ"),
        ("g", "envvar= (the CLI library reads it)")]


def test_every_setting_has_a_description() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not (field.description or "").strip()]
    assert not missing, f"describe these fields (the description is their documentation): {missing}"


# Variable names the platform has always read: renaming one breaks deployments.
KEPT_NAMES = {
    "INCIDENTFOX_HOME", "INCIDENTFOX_DATABASE_URL", "INCIDENTFOX_ADMIN_TOKEN", "INCIDENTFOX_TOKEN_PEPPER",
    "INCIDENTFOX_SECRET_KEY", "INCIDENTFOX_CONFIG_URL", "INCIDENTFOX_TOKEN", "INCIDENTFOX_SLACK_API_URL",
    "INCIDENTFOX_AGENT_TRACING", "INCIDENTFOX_TEST_PG", "INCIDENTFOX_EGRESS_ALLOW",
    "INCIDENTFOX_SANDBOX_TTL_S", "INCIDENTFOX_AWS_ASSUMER_PROFILE", "INCIDENTFOX_OBJECT_STORE",
    "AWS_ENDPOINT_URL", "KUBECONFIG", "RAY_ADDRESS", "SLACK_SIGNING_SECRET", "GITHUB_WEBHOOK_SECRET",
    "PAGERDUTY_WEBHOOK_SECRET", "INCIDENTIO_WEBHOOK_SECRET", "ALERTMANAGER_WEBHOOK_TOKEN",
    "GRAFANA_WEBHOOK_SECRET",
}


def test_todays_variable_names_are_kept() -> None:
    names = {env_name(f) for f in Settings.model_fields}
    assert KEPT_NAMES <= names, KEPT_NAMES - names


@pytest.mark.parametrize("var, value, field, expected", [
    ("SLACK_SIGNING_SECRET", "shh-signing", "slack_signing_secret", "shh-signing"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000", "aws_endpoint_url", "http://127.0.0.1:5000"),
    ("KUBECONFIG", "/tmp/kc", "kubeconfig", "/tmp/kc"),
    ("RAY_ADDRESS", "ray://head:10001", "ray_address", "ray://head:10001"),
    ("INCIDENTFOX_AGENT_TRACING", "1", "agent_tracing", True),
    ("INCIDENTFOX_TEST_PG", "postgresql://x@db/postgres", "test_pg", "postgresql://x@db/postgres"),
])
def test_each_variable_is_read_under_its_own_name(monkeypatch: pytest.MonkeyPatch, var: str, value: str,
                                                  field: str, expected: object) -> None:
    monkeypatch.setenv(var, value)
    got = getattr(Settings(), field)
    got = got.get_secret_value() if hasattr(got, "get_secret_value") else got
    assert got == expected
    assert env_name(field) == var


def test_an_unprefixed_name_is_not_also_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("INCIDENTFOX_AWS_ENDPOINT_URL", "http://elsewhere")
    assert Settings().aws_endpoint_url == ""


def test_shared_webhook_secrets_are_the_gateways_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    from serve_apps.webhooks.registry import SOURCES

    assert {env_name(f) for f in WEBHOOK_SECRET_FIELDS} == {s.secret_env for s in SOURCES.values()}
    for f in WEBHOOK_SECRET_FIELDS:
        monkeypatch.delenv(env_name(f), raising=False)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "gh-secret-value")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "")
    assert Settings().shared_webhook_secrets() == {"GITHUB_WEBHOOK_SECRET": "gh-secret-value"}


def test_process_secrets_lists_every_secret_and_each_fernet_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCIDENTFOX_SECRET_KEY", "key-one-aaaaaaaa, key-two-bbbbbbbb")
    monkeypatch.setenv("INCIDENTFOX_ADMIN_TOKEN", "ifx-admin-probe")
    monkeypatch.setenv("GRAFANA_WEBHOOK_SECRET", "grafana,with-comma")
    secrets = Settings().process_secrets()
    assert {"key-one-aaaaaaaa", "key-two-bbbbbbbb", "ifx-admin-probe", "grafana,with-comma"} <= set(secrets)
