"""serve_apps/console.py without a browser: /ui answers the export's files with the CSP and framing
headers, 503 with build instructions when the console is not built, and never leaves the export."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from serve_apps.console import (
    ConsoleApp,
    ConsoleFiles,
    content_security_policy,
    safe_relative,
    with_console,
)

HASH = "sha256-" + "A" * 43 + "="


def _export(root: Path, *, manifest: dict | None = None) -> Path:
    (root / "runs").mkdir(parents=True)
    (root / "_next" / "static" / "chunks").mkdir(parents=True)
    (root / "index.html").write_text("<!DOCTYPE html><title>console</title>")
    (root / "runs" / "index.html").write_text("<!DOCTYPE html><title>runs</title>")
    (root / "404.html").write_text("<!DOCTYPE html><title>missing</title>")
    (root / "_next" / "static" / "chunks" / "main-abc.js").write_text("console.log(1)")
    (root / "_next" / "static" / "chunks" / "big-abc.js").write_text("console.log('x');\n" * 400)
    (root / ".secret").write_text("hidden")
    if manifest is not False:
        (root / "csp.json").write_text(json.dumps(manifest or {"version": 1, "script_hashes": [HASH],
                                                               "style_hashes": []}))
    return root


def _client(root: Path) -> httpx.AsyncClient:
    api = FastAPI()

    @api.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    app = with_console(api, ConsoleApp(ConsoleFiles(root)))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def _assert_security_headers(r: httpx.Response) -> None:
    csp = r.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "default-src" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_ui_root_answers_index_directly_with_csp_hashes(tmp_path):
    async with _client(_export(tmp_path / "out")) as c:
        for path in ("/ui/", "/ui"):
            r = await c.get(path)
            assert r.status_code == 200, path
            assert "<title>console</title>" in r.text
            assert r.headers["content-type"].startswith("text/html")
            assert r.headers["cache-control"] == "no-cache"
            _assert_security_headers(r)
            assert f"script-src 'self' '{HASH}';" in r.headers["content-security-policy"]


async def test_pages_assets_and_404(tmp_path):
    async with _client(_export(tmp_path / "out")) as c:
        runs = await c.get("/ui/runs/")
        assert runs.status_code == 200 and "<title>runs</title>" in runs.text
        assert (await c.get("/ui/runs")).text == runs.text
        js = await c.get("/ui/_next/static/chunks/main-abc.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert "immutable" in js.headers["cache-control"]
        _assert_security_headers(js)
        missing = await c.get("/ui/nope/")
        assert missing.status_code == 404 and "<title>missing</title>" in missing.text
        _assert_security_headers(missing)
        head = await c.head("/ui/")
        assert head.status_code == 200 and head.content == b""
        post = await c.post("/ui/", content=b"x")
        assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"


async def test_other_paths_reach_the_api_untouched(tmp_path):
    async with _client(_export(tmp_path / "out")) as c:
        r = await c.get("/health")
        assert r.json() == {"status": "ok"} and "content-security-policy" not in r.headers
        assert (await c.get("/uix")).status_code == 404   # a sibling prefix is not the console


@pytest.mark.parametrize("path", ["/ui/../csp.json", "/ui/%2e%2e/etc/passwd", "/ui/..%2f..%2fetc/passwd",
                                  "/ui/.secret", "/ui/runs/..\\..\\x", "/ui/%00"])
async def test_traversal_and_hidden_files_are_404(tmp_path, path):
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    async with _client(_export(tmp_path / "out")) as c:
        r = await c.get(path)
        assert r.status_code in (404, 400), (path, r.status_code)
        assert "outside" not in r.text and "hidden" not in r.text


def test_safe_relative_is_pure_and_strict():
    assert safe_relative("/") == "index.html"
    assert safe_relative("") == "index.html"
    assert safe_relative("/runs/") == "runs/index.html"
    assert safe_relative("/_next/static/a.js") == "_next/static/a.js"
    for bad in ("/../x", "/a/../../x", "/.git/config", "/a\\b", "/a\x00"):
        assert safe_relative(bad) is None, bad


async def test_symlink_out_of_the_export_is_not_followed(tmp_path):
    root = _export(tmp_path / "out")
    (tmp_path / "secret.txt").write_text("outside")
    (root / "leak.txt").symlink_to(tmp_path / "secret.txt")
    async with _client(root) as c:
        r = await c.get("/ui/leak.txt")
        assert r.status_code == 404 and "outside" not in r.text


@pytest.mark.parametrize("manifest", [False, {"version": 1, "script_hashes": ["'unsafe-inline'"]}])
async def test_not_built_or_bad_manifest_is_503_with_instructions(tmp_path, manifest):
    async with _client(_export(tmp_path / "out", manifest=manifest)) as c:
        r = await c.get("/ui/runs/")
        assert r.status_code == 503
        assert "not built" in r.text and "npm ci" in r.text and "make install" in r.text
        _assert_security_headers(r)


async def test_no_build_at_all_is_503(tmp_path):
    async with _client(tmp_path / "absent") as c:
        r = await c.get("/ui/")
        assert r.status_code == 503 and "No console build" in r.text


async def test_a_rebuild_is_picked_up_without_restart(tmp_path):
    root = _export(tmp_path / "out")
    async with _client(root) as c:
        first = await c.get("/ui/")
        (root / "index.html").write_text("<!DOCTYPE html><title>v2</title>")
        new = {"version": 1, "script_hashes": [], "style_hashes": [HASH]}
        (root / "csp.json").write_text(json.dumps(new))
        import os
        os.utime(root / "csp.json", (1, 1))   # a different mtime: a new build
        second = await c.get("/ui/")
        assert "console" in first.text and "v2" in second.text
        assert f"style-src 'self' '{HASH}'" in second.headers["content-security-policy"]


def test_csp_has_no_unsafe_sources():
    csp = content_security_policy(["sha256-x"], [])
    assert csp.startswith("default-src 'self'; script-src 'self' 'sha256-x'; style-src 'self';")
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp


async def test_text_files_are_gzipped_for_clients_that_accept_it(tmp_path):
    import gzip

    root = _export(tmp_path / "out")
    big = (root / "_next" / "static" / "chunks" / "big-abc.js").read_bytes()
    async with _client(root) as c:
        r = await c.get("/ui/_next/static/chunks/big-abc.js", headers={"Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
        assert r.content == big   # httpx decodes it
        assert int(r.headers["content-length"]) == len(gzip.compress(big, compresslevel=6, mtime=0))
        _assert_security_headers(r)
        for refused in ("identity", "gzip;q=0", "br"):
            plain = await c.get("/ui/_next/static/chunks/big-abc.js", headers={"Accept-Encoding": refused})
            assert "content-encoding" not in plain.headers and plain.content == big, refused
        small = await c.get("/ui/_next/static/chunks/main-abc.js", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers   # under 1 KiB: not worth it
