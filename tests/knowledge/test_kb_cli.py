"""``incidentfox kb ingest|search|rebuild`` through typer's CliRunner: a throwaway SQLite database
holding an org and a team (read through the settings, as in production), the object store under
INCIDENTFOX_HOME, the real offline embedder, and a small folder of Markdown, HTML and text inside a
Git checkout. No platform runs."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from incidentfox.settings import get_settings

pytestmark = pytest.mark.slow


async def _seed(url: str) -> None:
    from config_service.services.nodes import create_node
    from config_service.services.orgs import create_org
    from incidentfox.db import make_async_engine, session_factory

    engine = make_async_engine(url)
    try:
        async with session_factory(engine)() as s:
            await create_org(s, org_id="acme", name="Acme", actor="test")
        async with session_factory(engine)() as s:
            await create_node(s, org_id="acme", node_id="sre", parent_id=None, kind="team", name="SRE", actor="test")
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    from incidentfox.db import upgrade

    home = tmp_path_factory.mktemp("kbcli")
    url = f"sqlite+aiosqlite:///{home / 'kb.db'}"
    upgrade(url)
    asyncio.run(_seed(url))
    repo = home / "repo"
    docs = repo / "ops" / "runbooks"
    (repo / ".git").mkdir(parents=True)
    (docs / "db").mkdir(parents=True)
    (docs / "db" / "postgres-replication.md").write_text(
        "# Postgres replication lag\n\n## Meaning\n\nThe replica falls behind the primary; WAL piles up.\n\n"
        "## Mitigation\n\nCheck the replica's disk and network, then restart the WAL receiver.\n")
    (docs / "cache.html").write_text("<html><head><title>Redis eviction</title></head><body><h1>Redis</h1>"
                                     "<h2>Mitigation</h2><p>Raise maxmemory or fix the key TTLs.</p></body></html>")
    (docs / "notes.txt").write_text("Certificates on the ingress expire every 90 days; renew them with cert-manager.")
    (docs / "image.png").write_bytes(b"\x89PNG")            # not a document: skipped silently
    (docs / ".hidden.md").write_text("# secret\n\nnot ingested")
    return {"INCIDENTFOX_DATABASE_URL": url, "INCIDENTFOX_HOME": str(home / "state"), "DOCS": str(docs)}


@pytest.fixture
def cli(env, monkeypatch):
    for k, v in env.items():
        if k.startswith("INCIDENTFOX_"):
            monkeypatch.setenv(k, v)
    # Set here so the CLI's local-secrets step finds them (and this test session's env is restored).
    monkeypatch.setenv("INCIDENTFOX_SECRET_KEY", "PJ9sW0m3Yy2fM1oJ6QwJkq7x0rH2m5d8Vb4nT1cLzAs=")
    monkeypatch.setenv("INCIDENTFOX_TOKEN_PEPPER", "pepper-for-kb-cli-tests")
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args))
    get_settings.cache_clear()


def test_ingest_then_search_json_and_rebuild(cli, env) -> None:
    res = cli("kb", "ingest", env["DOCS"], "--org", "acme")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)            # stdout: exactly one JSON object; progress went to stderr
    assert out["ingested"] == 3 and out["index"]["documents"] == 3 and out["index"]["scope"] == "acme"
    assert "files parsed: 3/3" in res.stderr and "chunks embedded: " in res.stderr
    assert "\x1b" not in res.stderr            # stderr is not a terminal here: plain lines, no ANSI

    res = cli("kb", "search", "replica is lagging behind the primary", "--org", "acme", "--top", "3", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["index"] == {"degraded_reason": None, "lexical_scopes": []}
    results = json.loads(res.stdout)["results"]
    assert 1 <= len(results) <= 3
    best = results[0]
    assert best["source"] == "db/postgres-replication.md" and best["section"] in ("Meaning", "Mitigation")
    assert {"source", "section", "score", "text"} <= set(best) and isinstance(best["score"], float)
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)

    res = cli("kb", "search", "redis memory eviction", "--org", "acme")
    assert res.exit_code == 0 and "cache.html" in res.output

    res = cli("kb", "rebuild", "--org", "acme")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["documents"] == 3 and "chunks embedded: " in res.stderr
    res = cli("kb", "rebuild", "--org", "acme", "--quiet")
    assert res.exit_code == 0 and res.stderr == "" and json.loads(res.stdout)["documents"] == 3


def test_team_scope_is_separate_and_sees_nothing_before_ingest(cli, env) -> None:
    res = cli("kb", "search", "replica lag", "--org", "acme", "--team", "sre", "--json")
    assert res.exit_code == 1 and "no index" in res.output
    res = cli("kb", "ingest", env["DOCS"], "--org", "acme", "--team", "sre")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["index"]["scope"] == "acme/sre"


@pytest.mark.parametrize("args,message", [
    (("--org", "nope"), "org 'nope' not found"),
    (("--org", "acme", "--team", "ghost"), "not found"),
    (("--org", "acme/t=x"), "invalid scope"),
])
def test_unknown_or_forged_org_fails_clearly(cli, env, args, message) -> None:
    res = cli("kb", "rebuild", *args)
    assert res.exit_code == 1 and message in res.output


def test_reingest_reports_and_deletes_a_removed_file(cli, env, tmp_path) -> None:
    folder = tmp_path / "mirror"
    folder.mkdir()
    for name in ("keep.md", "gone.md"):
        (folder / name).write_text(f"# {name}\n\nDisk pressure on the {name} nodes: clean /var/log.\n")
    res = cli("kb", "ingest", str(folder), "--org", "acme", "--team", "sre")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["removed"] == []
    (folder / "gone.md").unlink()
    res = cli("kb", "ingest", str(folder), "--org", "acme", "--team", "sre")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["removed"] == ["gone.md"] and out["ingested"] == 1
    res = cli("kb", "search", "disk pressure var log", "--org", "acme", "--team", "sre", "--json")
    assert "gone.md" not in {r["source"] for r in json.loads(res.stdout)["results"]}


def test_ingest_from_a_git_repository_links_citations_and_mirrors_it(cli, env, tmp_path) -> None:
    """`kb ingest <address> --ref R --git-path P`: a real shallow clone (a local repository over
    file://); sources are relative to P, each document names the commit, and a second ingest from a
    new clone (a new temporary folder) still mirrors the same repository path."""
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "runbooks"
    (repo / "ops").mkdir(parents=True)
    (repo / "ops" / "kafka-lag.md").write_text("# Kafka consumer lag\n\n## Mitigation\nScale the consumers.\n")
    (repo / "ops" / "old.md").write_text("# Old page\n\nZookeeper session expiry: restart the broker.\n")

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo,
                              check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "release")
    git("add", "-A")
    git("commit", "-q", "-m", "runbooks")
    address = f"file://{repo}"
    res = cli("kb", "ingest", address, "--ref", "release", "--git-path", "ops", "--org", "acme", "--team", "sre")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ingested"] == 2 and out["removed"] == []

    git("rm", "-q", "ops/old.md")
    git("commit", "-q", "-m", "drop the old page")
    res = cli("kb", "ingest", address, "--ref", "release", "--git-path", "ops", "--org", "acme", "--team", "sre")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["removed"] == ["old.md"]

    from incidentfox.knowledge import Scope, knowledge_base_from_settings

    docs = asyncio.run(knowledge_base_from_settings(get_settings()).kb.documents(Scope(org="acme", team="sre")))
    lag = next(d for d in docs if d.source == "kafka-lag.md")
    assert lag.metadata == {"git_remote": address, "git_commit": git("rev-parse", "HEAD"), "git_path": "ops/kafka-lag.md"}
    assert lag.origin == f"git:{address}//ops"

    res = cli("kb", "ingest", address, "--ref", "nope", "--org", "acme", "--team", "sre")
    assert res.exit_code == 1 and "failed" in res.output
    res = cli("kb", "ingest", env["DOCS"], "--ref", "main", "--org", "acme")
    assert res.exit_code == 1 and "apply to a repository address" in res.output


def test_a_team_with_its_own_embeddings_endpoint_is_built_and_searched_with_it(cli, env, monkeypatch) -> None:
    """The CLI builds a team's index with the embedder its config names, as the platform's sweep does
    (not the offline one, which would leave the team's searches lexical until the sweep rebuilt it);
    the endpoint is a scripted OpenAI-compatible server on loopback, allowed by the egress policy."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    asked: list[dict] = []

    class Embeddings(BaseHTTPRequestHandler):
        def log_message(self, *_args) -> None:
            return None

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            asked.append({"path": self.path, "model": body["model"], "n": len(body["input"])})
            words = ("replica", "redis", "certificate", "disk")
            data = [{"index": i, "embedding": [float(w in t.lower()) for w in words] + [0.1]}
                    for i, t in enumerate(body["input"])]
            payload = json.dumps({"data": data, "model": body["model"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Embeddings)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    monkeypatch.setenv("INCIDENTFOX_EGRESS_ALLOW", "127.0.0.1")
    get_settings.cache_clear()

    async def team_with_endpoint() -> None:
        from config_service.services.config import patch_config
        from config_service.services.nodes import create_node
        from incidentfox.db import make_async_engine, session_factory

        engine = make_async_engine(env["INCIDENTFOX_DATABASE_URL"])
        try:
            async with session_factory(engine)() as s:
                await create_node(s, org_id="acme", node_id="data", parent_id=None, kind="team", name="Data",
                                  actor="test")
            async with session_factory(engine)() as s:
                await patch_config(s, settings=get_settings(), org_id="acme", node_id="data", actor="test",
                                                  patch={"knowledge": {"embeddings": {
                                                      "base_url": f"http://127.0.0.1:{srv.server_address[1]}/v1",
                                                      "model": "team-embed-1"}}})
        finally:
            await engine.dispose()
    try:
        asyncio.run(team_with_endpoint())
        res = cli("kb", "ingest", env["DOCS"], "--org", "acme", "--team", "data", "--quiet")
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["index"]["embedder"] == "openai:team-embed-1"
        built = len(asked)
        assert built >= 1 and all(a["path"] == "/v1/embeddings" and a["model"] == "team-embed-1" for a in asked)
        res = cli("kb", "search", "redis keys evicted", "--org", "acme", "--team", "data", "--json")
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert out["index"]["degraded_reason"] is None and out["results"][0]["source"] == "cache.html"
        assert len(asked) == built + 1           # the query was embedded by the team's endpoint too
        res = cli("kb", "rebuild", "--org", "acme", "--team", "data", "--quiet")
        assert res.exit_code == 0 and json.loads(res.stdout)["embedder"] == "openai:team-embed-1"
    finally:
        srv.shutdown()
