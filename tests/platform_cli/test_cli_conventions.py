"""The CLI's conventions (issue #15): ``--version``, shell completion, exit code 1 for runtime
failures (one line on stderr, no traceback) and 2 only for usage errors, quiet progress when not on
a terminal, and ``--runner``/``--kind`` choices taken from the registries they index."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cli.main import app
from cli.progress import progress
from incidentfox.ports import free_port
from incidentfox.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def run(monkeypatch, tmp_path):
    """``run(*args)`` → Result, isolated from the caller's INCIDENTFOX_* environment."""
    for key in [k for k in os.environ if k.startswith("INCIDENTFOX_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("INCIDENTFOX_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield lambda *args, **kw: CliRunner().invoke(app, list(args), prog_name="incidentfox", **kw)
    get_settings.cache_clear()


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_installed_package_version(run, flag):
    result = run(flag)
    assert result.exit_code == 0
    assert result.stdout.strip() == f"incidentfox {version('incidentfox')}"


def test_show_completion_prints_a_bash_script_for_the_console_script(run):
    result = run("--show-completion", "bash")
    assert result.exit_code == 0, result.output
    assert "_INCIDENTFOX_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F _incidentfox_completion incidentfox" in result.stdout


def _complete(run, words: str) -> list[str]:
    env = {"_INCIDENTFOX_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split(" ")) - 1)}
    result = run(env=env)
    assert result.exit_code == 0, result.output
    return result.stdout.split()


def test_completion_offers_commands_and_the_registries_names(run):
    from config_service import NODE_KINDS
    from serve_apps.runners import RUNNERS

    assert "teams" in _complete(run, "incidentfox te")
    assert set(_complete(run, "incidentfox up --runner ")) == set(RUNNERS)
    assert _complete(run, "incidentfox up --runner inv") == ["investigation"]
    assert set(_complete(run, "incidentfox teams create t --org a --kind ")) == set(NODE_KINDS)


def _valid_names_listed(result, names) -> bool:
    text = " ".join(result.output.split())           # the error panel wraps long lines
    listed = text.partition("is not one of:")[2]
    return all(name in listed for name in names)


@pytest.mark.parametrize("args", [
    ("up", "--runner", "bogus"),
    ("deliveries", "redrive", "--runner", "bogus"),
    ("report", "run-due", "--runner", "bogus"),
])
def test_an_unknown_runner_is_a_usage_error_listing_the_registry(run, args):
    from serve_apps.runners import RUNNERS

    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "'bogus' is not one of" in " ".join(result.output.split())
    assert _valid_names_listed(result, RUNNERS)


def test_an_unknown_kind_is_a_usage_error_listing_the_declared_kinds(run):
    from actors.scheduler.jobs import REPORT_KINDS
    from config_service import NODE_KINDS

    node = run("teams", "create", "t", "--org", "a", "--kind", "squad")
    assert node.exit_code == 2 and _valid_names_listed(node, NODE_KINDS), node.output
    report = run("report", "run", "--org", "a", "--team", "t", "--kind", "weekly")
    assert report.exit_code == 2 and _valid_names_listed(report, REPORT_KINDS), report.output


def _restricted_options():
    """(command path, option, parser) for every option restricted by cli.choices.one_of."""
    import typer.main

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))
        for param in getattr(command, "params", []):
            parser = getattr(getattr(getattr(param, "type_descriptor", None), "parameter_info", None), "parser", None)
            if hasattr(parser, "declared"):
                yield path, param, parser

    return list(walk(typer.main.get_command(app), ()))


def test_every_restricted_default_is_in_its_declaration():
    found = _restricted_options()
    assert {(" ".join(path), param.name) for path, param, _ in found} >= {
        ("up", "runner"), ("deliveries redrive", "runner"), ("report run-due", "runner"),
        ("report run", "kind"), ("teams create", "kind")}
    for path, param, parser in found:
        # None: no default value (the command picks one per case).
        assert parser.default == param.default, (path, param.name)
        assert param.default is None or param.default in parser.declared(), (path, param.name)


@pytest.mark.parametrize("args", [
    ("--no-such-option",),
    ("orgs", "create"),                                                        # missing argument
    ("gc", "--older-than-days", "-1"),
    ("eval", "--suite", "petshop", "--split", "validation"),
    ("cluster", "provision", "--org", "a", "--team", "t"),                     # no config source
    ("cluster", "render", "--overlay", "eks", "--out", "o", "--live", "l.yaml", "--from-cluster"),
])
def test_usage_errors_exit_2(run, args):
    result = run(*args)
    assert result.exit_code == 2, result.output


def test_runtime_failures_exit_1_with_one_line_on_stderr(run, tmp_path):
    empty = f"sqlite:///{tmp_path / 'empty.db'}"                 # exists once opened, never migrated
    cases = {
        ("tokens", "whoami", "--url", _dead_url()): "unreachable",
        ("cluster", "provision", "--org", "a", "--team", "t", "--config-url", _dead_url()):
            "config service unreachable",
        ("gc", "--database-url", empty): "no such table",
        ("report", "run", "--org", "a", "--team", "t", "--no-post", "--database-url", empty): "error:",
        ("db", "upgrade", "--database-url", "postgresql://postgres@127.0.0.1:1/none"): "OperationalError",
    }
    for args, needle in cases.items():
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stdout == "", args
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("error: ") and needle in line, (args, line)


def test_a_real_process_prints_no_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTFOX_")}
    env.update(PYTHONPATH=str(ROOT), INCIDENTFOX_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "cli.main", "orgs", "list", "--url", _dead_url()],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: unreachable")
    env["INCIDENTFOX_DEBUG"] = "1"                                  # the escape hatch keeps the traceback
    debug = subprocess.run([sys.executable, "-m", "cli.main", "gc", "--database-url",
                            f"sqlite:///{tmp_path / 'empty.db'}"], capture_output=True, text=True, env=env,
                           timeout=120, check=False)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_long_commands_keep_scripted_output_clean_off_a_terminal(run, sqlite_url):
    upgraded = run("db", "upgrade", "--database-url", sqlite_url)
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.stdout == "database upgraded to head\n" and upgraded.stderr == ""
    gc = run("gc", "--database-url", sqlite_url)
    assert gc.exit_code == 0, gc.output
    assert gc.stderr == ""
    (line,) = gc.stdout.splitlines()
    assert json.loads(line)["runs"] == 0


def test_progress_draws_on_a_terminal_unless_quiet():
    term = io.StringIO()
    with progress("first step", console=Console(file=term, force_terminal=True)) as step:
        step("applied 0001_config")
    assert "applied 0001_config" in term.getvalue()
    quiet = io.StringIO()
    with progress("first step", quiet=True, console=Console(file=quiet, force_terminal=True)) as step:
        step("applied 0001_config")
    assert quiet.getvalue() == ""
    piped = io.StringIO()
    with progress("first step", console=Console(file=piped)) as step:   # not a terminal
        step("applied 0001_config")
    assert piped.getvalue() == ""


def test_upgrade_and_purge_report_their_steps(tmp_path):
    import asyncio
    from datetime import timedelta

    from alembic.script import ScriptDirectory

    from incidentfox.db import alembic_config, make_async_engine, session_factory, upgrade
    from incidentfox.runs.gc import purge

    url = f"sqlite:///{tmp_path / 'steps.db'}"
    heard: list[str] = []
    upgrade(url, progress=heard.append)
    revisions = [s.revision for s in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()]
    assert heard == ["migrating to head", *(f"applied {r}" for r in reversed(revisions))]
    heard.clear()
    upgrade(url, progress=heard.append)                          # nothing left to apply
    assert heard == ["migrating to head"]

    async def gc() -> None:
        engine = make_async_engine(url)
        try:
            await purge(session_factory(engine), older_than=timedelta(days=1), progress=heard.append)
        finally:
            await engine.dispose()

    heard.clear()
    asyncio.run(gc())
    assert heard == ["clearing old webhook payloads"]


def test_library_messages_become_one_line():
    from pydantic import BaseModel, ValidationError
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    from cli.errors import CliFailure, describe

    class Two(BaseModel):
        a: int
        b: int

    with pytest.raises(ValidationError) as invalid:
        Two()
    line = describe(invalid.value)
    assert "\n" not in line and line.startswith("ValidationError: 2 validation errors for Two")
    assert "; a; Field required" in line and "; b; Field required" in line and "errors.pydantic.dev" not in line
    with pytest.raises(OperationalError) as db, create_engine("sqlite://").connect() as conn:
        conn.execute(text("SELECT x\nFROM missing"))
    assert describe(db.value) == "OperationalError: (sqlite3.OperationalError) no such table: missing"
    assert describe(CliFailure("no kube config")) == "no kube config"
