"""The onboarding commands (`orgs`, `teams`, `tokens`, `routing`, `config`, `webhooks`, `init`)
driven through typer's CliRunner against a real config service (uvicorn on a free port, in a
thread, throwaway SQLite), asserting what the API then holds; and docs/onboarding.md's CLI
commands run as written."""

from __future__ import annotations

import json
import re
import shlex
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml
from gateway_kit import ADMIN_TOKEN, settings_for
from typer.testing import CliRunner

from cli.init_cmds import MANIFEST_BEGIN, MANIFEST_END
from cli.main import app
from cli.slack_manifest import BOT_EVENTS, BOT_SCOPES
from incidentfox.ports import free_port
from incidentfox.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from config_service.app import create_app
    from incidentfox.db import upgrade

    home = tmp_path_factory.mktemp("onboard")
    url = f"sqlite:///{home / 'config.db'}"
    upgrade(url)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(settings_for(url, home)), host="127.0.0.1", port=port,
                                        log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:          # uvicorn offers no start event; poll its flag, bounded
        assert thread.is_alive() and time.monotonic() < deadline, "config service did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=20)


@pytest.fixture
def cli(server, monkeypatch, tmp_path):
    """``cli(*args, input=None)`` → Result, with the API URL and admin token from the environment
    (read through the settings object, as in production)."""
    monkeypatch.setenv("INCIDENTFOX_CONFIG_URL", server)
    monkeypatch.setenv("INCIDENTFOX_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("INCIDENTFOX_HOME", str(tmp_path))
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        result = runner.invoke(app, list(args), input=input)
        # The token a command sends is never printed, whatever happens.
        assert ADMIN_TOKEN not in result.output
        return result

    yield run
    get_settings.cache_clear()


def _api(server: str, token: str = ADMIN_TOKEN) -> httpx.Client:
    return httpx.Client(base_url=server, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_orgs_teams_tokens_routing_and_config_over_the_api(cli, server):
    assert _json(cli("orgs", "create", "acme", "--name", "Acme", "--json"))["org_id"] == "acme"
    assert "acme" in [o["org_id"] for o in _json(cli("orgs", "list", "--json"))["items"]]
    assert "Acme" in cli("orgs", "show", "acme").stdout                      # a rich table for humans

    assert _json(cli("teams", "create", "platform", "--org", "acme", "--kind", "unit", "--json"))["kind"] == "unit"
    assert _json(cli("teams", "create", "payments", "--org", "acme", "--json"))["parent_id"] == "acme"
    moved = _json(cli("teams", "move", "payments", "--org", "acme", "--parent", "platform", "--json"))
    assert moved["parent_id"] == "platform" and moved["path"] == ["acme", "platform", "payments"]
    assert _json(cli("teams", "rename", "payments", "--org", "acme", "--name", "Payments", "--json"))["name"] \
        == "Payments"
    assert {n["node_id"] for n in _json(cli("teams", "list", "--org", "acme", "--json"))["items"]} \
        == {"acme", "platform", "payments"}
    assert _json(cli("teams", "show", "platform", "--org", "acme", "--json"))["children"] == ["payments"]

    # Tokens: shown once on stdout (alone on its line), then they work; revoked, they are refused.
    issued = cli("tokens", "create", "--org", "acme", "--team", "payments", "--label", "ci")
    assert issued.exit_code == 0, issued.output
    team_token = issued.stdout.strip()
    assert team_token.startswith("acme.payments.")
    with _api(server, team_token) as c:
        assert c.get("/api/v1/auth/whoami").json()["team_node_id"] == "payments"
    who = _json(cli("tokens", "whoami", "--token", team_token, "--json"))
    token_id = who["token_id"]
    listed = _json(cli("tokens", "list", "--org", "acme", "--json"))["items"]
    assert [t["label"] for t in listed if t["token_id"] == token_id] == ["ci"]
    assert all("token" not in t for t in listed)
    assert _json(cli("tokens", "revoke", token_id, "--org", "acme", "--json"))["revoked_at"]
    with _api(server, team_token) as c:
        assert c.get("/api/v1/auth/whoami").json()["error"]["code"] == "token_revoked"

    # Routing: claims kept beside existing ones, found by lookup, removable.
    cli("routing", "claim", "--org", "acme", "--team", "payments", "--slack-channel", "C0PAY")
    shown = _json(cli("routing", "claim", "--org", "acme", "--team", "payments", "--slack-channel", "C0PAY2",
                      "--github-repo", "Acme/Checkout", "--json"))
    assert shown == {"slack_channel_ids": ["C0PAY", "C0PAY2"], "github_repos": ["acme/checkout"]}
    with _api(server) as c:
        found = c.post("/api/v1/routing/lookup", json={"identifiers": {"slack_channel_id": "C0PAY2"}}).json()
    assert (found["found"], found["org_id"], found["team_node_id"]) == (True, "acme", "payments")
    hit = _json(cli("routing", "lookup", "--github-repo", "acme/checkout", "--json"))
    assert hit["team_node_id"] == "payments" and hit["matched_by"] == "github_repo"
    assert any(r["value"] == "C0PAY" for r in _json(cli("routing", "table", "--json"))["claims"])
    assert _json(cli("routing", "unclaim", "--org", "acme", "--team", "payments", "--slack-channel", "C0PAY",
                     "--json"))["slack_channel_ids"] == ["C0PAY2"]
    miss = cli("routing", "lookup", "--slack-channel", "C0PAY", "--json")
    assert miss.exit_code == 1 and json.loads(miss.stdout)["found"] is False

    # Config: --set values parse as JSON, a file patch merges, a secret is prompted and masked.
    out = _json(cli("config", "patch", "--org", "acme", "--node", "payments", "--set", "investigation.max_turns=7",
                    "--set", "slack.default_channel=C0PAY2", "--secret", "integrations.slack.bot_token", "--json",
                    input="xoxb-not-a-real-token\n"))
    assert out["version"] >= 1
    with _api(server) as c:
        raw = c.get("/api/v1/orgs/acme/nodes/payments/config/raw").json()["config"]
    assert raw["investigation"]["max_turns"] == 7 and raw["slack"]["default_channel"] == "C0PAY2"
    assert raw["integrations"]["slack"]["bot_token"] == "***"
    got = _json(cli("config", "get", "--org", "acme", "--node", "payments", "--view", "explain", "--json"))
    assert got["sources"]["investigation.max_turns"] == "payments"
    assert "max_turns: 7" in cli("config", "get", "--org", "acme", "--node", "payments", "--view", "raw").stdout
    history = _json(cli("config", "history", "--org", "acme", "--node", "payments", "--json"))
    assert [i["action"] for i in history["items"]] == ["patch"] * history["version"] + ["create"]
    assert "investigation.max_turns" in cli("config", "history", "--org", "acme", "--node", "payments").stdout
    version = _json(cli("config", "rollback", "0", "--org", "acme", "--node", "payments", "--json"))
    with _api(server) as c:
        raw = c.get("/api/v1/orgs/acme/nodes/payments/config/raw").json()
    assert raw["version"] == version["version"] == history["version"] + 1 and raw["config"] == {}


def test_config_patch_from_a_yaml_file(cli, server, tmp_path):
    cli("orgs", "create", "filed")
    (tmp_path / "patch.yaml").write_text("quotas:\n  max_concurrent_runs: 3\n")
    assert cli("config", "patch", "--org", "filed", "--node", "filed", "-f", str(tmp_path / "patch.yaml")).exit_code \
        == 0
    eff = _json(cli("config", "get", "--org", "filed", "--node", "filed", "--json"))
    assert eff["config"]["quotas"]["max_concurrent_runs"] == 3


def test_api_errors_exit_1_with_status_and_code(cli):
    cli("orgs", "create", "dupe")
    again = cli("orgs", "create", "dupe")
    assert again.exit_code == 1
    assert "error: 409 org_exists" in again.stderr
    missing = cli("teams", "show", "nope", "--org", "dupe")
    assert missing.exit_code == 1 and "404 node_not_found" in missing.stderr
    locked = cli("config", "patch", "--org", "dupe", "--node", "dupe", "--set", "investigation.max_turns=0")
    assert locked.exit_code == 1 and "422 invalid_config" in locked.stderr and "investigation.max_turns" \
        in locked.stderr                                                  # details name the path
    refused = cli("orgs", "list", "--token", "not-a-token")
    assert refused.exit_code == 1 and "401 invalid_token" in refused.stderr
    unreachable = cli("orgs", "list", "--url", f"http://127.0.0.1:{free_port()}")
    assert unreachable.exit_code == 1 and "unreachable" in unreachable.stderr


@pytest.mark.parametrize("args", [
    ("config", "patch", "--org", "a", "--node", "a"),                       # nothing to patch
    ("config", "patch", "--org", "a", "--node", "a", "--set", "novalue"),
    ("config", "get", "--org", "a", "--node", "a", "--view", "sideways"),
    ("routing", "claim", "--org", "a", "--team", "t"),                      # no identifier
    ("teams", "create", "t", "--org", "a", "--kind", "squad"),
    ("init", "--yes", "--org", "a"),                                        # --yes without --team
    ("orgs", "create"),
])
def test_usage_errors_exit_2_before_any_call(cli, args):
    result = cli(*args)
    assert result.exit_code == 2, result.output


def test_init_yes_onboards_end_to_end_and_prints_a_valid_manifest(cli, server, tmp_path):
    (tmp_path / "bot").write_text("xoxb-init-test-token\n")
    result = cli("init", "--yes", "--org", "initco", "--team", "sre", "--slack-channel", "C0INIT",
                 "--slack-bot-token-file", str(tmp_path / "bot"), "--webhook-secrets",
                 "--public-url", "https://fox.example.com")
    assert result.exit_code == 0, result.output
    out = result.stdout
    manifest = yaml.safe_load(out[out.index(MANIFEST_BEGIN):out.index(MANIFEST_END)])
    base = "https://fox.example.com/webhooks/slack"
    assert manifest["settings"]["event_subscriptions"] == {"request_url": f"{base}/events/o/initco",
                                                           "bot_events": list(BOT_EVENTS)}
    assert manifest["settings"]["interactivity"]["request_url"] == f"{base}/interactions/o/initco"
    assert manifest["features"]["slash_commands"][0] == {**manifest["features"]["slash_commands"][0],
                                                        "command": "/incidentfox", "url": f"{base}/commands/o/initco"}
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == set(BOT_SCOPES)
    assert "https://fox.example.com/webhooks/github/o/initco" in out
    token = next(line for line in out.splitlines() if line.startswith("initco."))
    with _api(server, token) as c:
        assert c.get("/api/v1/auth/whoami").json()["auth_kind"] == "org_admin"
    github_secret = re.search(r"github webhook secret \(shown only now\): (\S+)", out).group(1)
    assert len(github_secret) >= 32
    with _api(server) as c:
        assert c.get("/api/v1/orgs/initco/nodes/sre").json()["kind"] == "team"
        assert c.post("/api/v1/routing/lookup", json={"identifiers": {"slack_channel_id": "C0INIT"}}).json()[
            "team_node_id"] == "sre"
        assert c.get("/api/v1/orgs/initco/nodes/initco/config/raw").json()["config"]["integrations"]["slack"] \
            == {"bot_token": "***"}
        sources = {s["source"] for s in c.get("/api/v1/orgs/initco/webhook-secrets").json()["items"]}
    assert sources == {"github", "alertmanager", "grafana"}                  # Slack's is pasted later
    assert "incidentfox webhooks secret slack --org initco --paste" in out

    # A rerun reuses the org and team; --json is one parseable document.
    again = _json(cli("init", "--yes", "--org", "initco", "--team", "sre", "--token-for", "none", "--json"))
    assert (again["org_created"], again["team_created"]) == (False, False) and "token" not in again
    assert again["slack_manifest"]["settings"]["event_subscriptions"]["request_url"] \
        == f"{server}/webhooks/slack/events/o/initco"


def test_init_interactive_prompts_for_what_flags_do_not_give(cli, server):
    # org id, org name, team id, team name (default), channel, bot token, no webhook secrets, Slack's
    answers = "promptco\nPrompt Co\nops\n\nC0ASK\nxoxb-prompted\nn\nslack-signing-secret-0123456789\n"
    result = cli("init", "--token-for", "team", input=answers)
    assert result.exit_code == 0, result.output
    assert "xoxb-prompted" not in result.output                              # hidden input
    with _api(server) as c:
        assert c.get("/api/v1/orgs/promptco").json()["name"] == "Prompt Co"
        assert c.post("/api/v1/routing/lookup", json={"identifiers": {"slack_channel_id": "C0ASK"}}).json()[
            "team_node_id"] == "ops"
        slack = [s for s in c.get("/api/v1/orgs/promptco/webhook-secrets").json()["items"] if s["source"] == "slack"]
    assert slack and slack[0]["version"] == 1


def test_webhooks_secret_generates_or_is_pasted_and_urls_match_the_gateway(cli, server):
    from serve_apps.gateway import ENDPOINTS

    cli("orgs", "create", "hooks")
    gen = cli("webhooks", "secret", "github", "--org", "hooks")
    assert gen.exit_code == 0 and len(gen.stdout.strip().splitlines()[-1]) >= 32
    need = cli("webhooks", "secret", "pagerduty", "--org", "hooks")
    assert need.exit_code == 1 and "422 secret_required" in need.stderr and "--paste" in need.stderr
    pasted = cli("webhooks", "secret", "pagerduty", "--org", "hooks", "--paste", "--json",
                 input="pd-signing-secret-0123456789\n")
    assert _json(pasted)["url_path"] == "/webhooks/pagerduty/o/hooks" and "secret" not in _json(pasted)
    assert {s["source"] for s in _json(cli("webhooks", "list", "--org", "hooks", "--json"))["items"]} \
        == {"github", "pagerduty"}
    urls = _json(cli("webhooks", "urls", "--org", "hooks", "--team", "t1", "--json"))
    assert urls == {e.strip("/"): f"{server}/webhooks{e}/o/hooks/t/t1" for e in ENDPOINTS}
    assert _json(cli("webhooks", "delete", "github", "--org", "hooks", "--json"))["deleted"] is True


def _doc_commands(text: str) -> list[list[str]]:
    """Every ``incidentfox …`` command in the doc's ```bash blocks (continuations joined)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("incidentfox "):
                commands.append(shlex.split(line)[1:])
    return commands


def test_every_cli_command_in_the_onboarding_doc_runs(cli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)                         # files the doc's commands write land here
    commands = _doc_commands((ROOT / "docs" / "onboarding.md").read_text())
    assert len(commands) >= 12
    for args in commands:
        if args[0] in ("up", "config-service"):
            continue                                    # the install itself: the server is already up
        if "tok_…" in args:
            continue                                    # needs an id printed by an earlier command
        result = cli(*args, input="slack-signing-secret-or-bot-token-0123\n")
        assert result.exit_code == 0, (args, result.output)
    assert yaml.safe_load((tmp_path / "slack-manifest.yaml").read_text())["settings"]["interactivity"][
        "request_url"] == "https://incidentfox.example.com/webhooks/slack/interactions/o/acme"


def test_every_cli_command_in_the_eks_guide_parses():
    """The deploy guide's `incidentfox …` lines name commands and options that exist (they are not
    run: they need an EKS install)."""
    import click
    import typer.main

    commands = _doc_commands((ROOT / "docs" / "deploy-eks.md").read_text())
    assert any(args[0] == "init" for args in commands)
    for args in commands:
        cmd, rest = typer.main.get_command(app), list(args)
        while isinstance(cmd, click.Group):
            cmd, rest = cmd.get_command(click.Context(cmd), rest[0]), rest[1:]
            assert cmd is not None, args
        cmd.make_context(args[0], rest)                  # raises on an unknown or missing option


def test_without_a_token_setting_the_local_admin_token_file_is_used(cli, monkeypatch, tmp_path):
    monkeypatch.delenv("INCIDENTFOX_TOKEN")
    monkeypatch.delenv("INCIDENTFOX_ADMIN_TOKEN", raising=False)
    get_settings.cache_clear()
    assert cli("orgs", "list").exit_code == 1                               # no token at all: 401
    (tmp_path / "admin_token").write_text(ADMIN_TOKEN + "\n")               # what `incidentfox up` writes
    assert _json(cli("tokens", "whoami", "--json"))["auth_kind"] == "global_admin"
