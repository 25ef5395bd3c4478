"""The web console's files under ``/ui``, with a strict Content-Security-Policy.

The console (``console/``, a Next.js static export) is built at install time into ``console/out``;
this module serves those files on the platform's one port, in front of the config service (the
``config`` application at ``/``), through :func:`with_console`: a pure ASGI dispatcher that answers
``/ui`` and ``/ui/...`` itself and hands every other request (and the lifespan) to the API app
unchanged. The console is public static content (no token needed to load it); every action it takes
is an API call with the signed-in user's bearer token, checked by the API like any other client.

Every response under ``/ui`` carries:

* ``Content-Security-Policy``: ``default-src 'self'``, ``script-src 'self'`` plus the sha256 hash of
  each inline script the export contains, ``style-src 'self'`` plus inline style hashes, no
  ``'unsafe-inline'`` or ``'unsafe-eval'``, ``frame-ancestors 'none'``, ``object-src 'none'``,
  ``base-uri 'none'``. The hashes come from ``console/out/csp.json``, written by the build's
  post-step (``console/scripts/csp-manifest.mjs``);
* ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``.

``GET /ui/`` answers the console's ``index.html`` with 200 (no redirect); ``/ui/runs/`` its
``runs/index.html``; ``_next/static`` files are cached as immutable (their names hold a content hash),
HTML is ``no-cache``. Text files (HTML, JS, CSS, JSON, SVG) over 1 KiB are sent gzip-compressed to
clients that accept it (compressed once per build and kept in memory). An unknown path answers the export's ``404.html`` with 404. When the console
is not built (no ``index.html`` or no ``csp.json``), every ``/ui`` path answers **503** with a plain page
saying how to build it. Only GET and HEAD are served (others: 405). Paths never leave the export
directory: ``..``, backslashes, NUL and dotfiles are refused (404) before the file system is touched,
and the resolved path must stay under the root.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from incidentfox.http_limits import route_path

MOUNT = "/ui"
DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "console" / "out"
MANIFEST = "csp.json"
MAX_CACHED_FILE = 4 * 1024 * 1024   # larger files are read per request (the export has none today)
GZIP_MIN_BYTES = 1024
GZIP_SUFFIXES = frozenset({".html", ".js", ".css", ".json", ".svg", ".txt", ".map"})

NOT_BUILT_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>IncidentFox console: not built</title></head>
<body><main><h1>The IncidentFox console is not built</h1>
<p>{reason}</p>
<p>The console is a static web app built with Node.js 20 or newer. Install Node.js and npm
(for example <code>apt-get install nodejs npm</code>, or from https://nodejs.org), then run
<code>make install</code> in the IncidentFox checkout, or build it by hand:
<code>cd console &amp;&amp; npm ci &amp;&amp; npm run build</code>. No restart is needed.</p>
<p>The HTTP API works without it: see <a href="/docs">/docs</a>.</p>
</main></body></html>
"""

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml",
          ".txt": "text/plain; charset=utf-8", ".woff2": "font/woff2", ".ico": "image/x-icon",
          ".map": "application/json", ".png": "image/png"}


def content_security_policy(script_hashes: list[str] | tuple[str, ...] = (),
                            style_hashes: list[str] | tuple[str, ...] = ()) -> str:
    """The console's CSP: same-origin only, inline code only by hash (never ``'unsafe-inline'``)."""
    scripts = " ".join(["'self'", *(f"'{h}'" for h in script_hashes)])
    styles = " ".join(["'self'", *(f"'{h}'" for h in style_hashes)])
    return ("default-src 'self'; "
            f"script-src {scripts}; style-src {styles}; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


NOT_BUILT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def security_headers(csp: str) -> list[tuple[bytes, bytes]]:
    return [(b"content-security-policy", csp.encode()), (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]


def _hash_list(manifest: dict[str, Any], key: str) -> list[str]:
    values = manifest.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) and v.startswith("sha256-")
                                               and "'" not in v and ";" not in v for v in values):
        raise ValueError(f"{MANIFEST}: {key} must be a list of 'sha256-…' strings")
    return values


def safe_relative(path: str) -> str | None:
    """The file path under the export for a request path relative to ``/ui`` (``""``, ``"runs/"``,
    ``"_next/static/x.js"``), or ``None`` when it could escape or names a hidden file. Pure."""
    if "\\" in path or "\x00" in path:
        return None
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") or p.startswith(".") for p in parts):
        return None
    rel = "/".join(parts)
    if not rel or path.endswith("/"):
        rel = f"{rel}/index.html" if rel else "index.html"
    return rel


@dataclass(frozen=True)
class _Build:
    stamp: float
    csp: str


class ConsoleFiles:
    """The built export at ``root``: resolves request paths to files and reads them (cached while the
    build's ``csp.json`` is unchanged, so a rebuild is picked up without a restart)."""

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)
        self._build: _Build | None = None
        self._cache: dict[Path, bytes] = {}
        self._gzipped: dict[Path, bytes] = {}

    def build(self) -> _Build | str:
        """The current build, or why there is none (a sentence for the not-built page)."""
        manifest = self.root / MANIFEST
        if not (self.root / "index.html").is_file():
            return f"No console build at {self.root}."
        try:
            stamp = manifest.stat().st_mtime
        except FileNotFoundError:
            return f"The build at {self.root} has no {MANIFEST} (the post-build step did not run)."
        if self._build is None or self._build.stamp != stamp:
            try:
                data = json.loads(manifest.read_text())
                csp = content_security_policy(_hash_list(data, "script_hashes"), _hash_list(data, "style_hashes"))
            except (OSError, ValueError) as exc:
                return f"The build's {MANIFEST} is unreadable: {exc}"
            self._cache.clear()
            self._gzipped.clear()
            self._build = _Build(stamp=stamp, csp=csp)
        return self._build

    def resolve(self, path: str) -> Path | None:
        """The file for a request path relative to ``/ui``, or ``None`` (no such file)."""
        rel = safe_relative(path)
        if rel is None:
            return None
        root = self.root.resolve()
        candidates = [rel]
        if not rel.endswith(".html") and "." not in rel.rsplit("/", 1)[-1]:
            candidates += [f"{rel}/index.html", f"{rel}.html"]   # /ui/runs → runs/index.html
        for candidate in candidates:
            target = (root / candidate).resolve()
            if target.is_relative_to(root) and target.is_file():
                return target
        return None

    def read(self, target: Path) -> bytes:
        data = self._cache.get(target)
        if data is None:
            data = target.read_bytes()
            if len(data) <= MAX_CACHED_FILE:
                self._cache[target] = data
        return data

    def read_gzipped(self, target: Path) -> bytes | None:
        """The file gzip-compressed, or ``None`` when it is not worth it (small or binary)."""
        if target.suffix not in GZIP_SUFFIXES:
            return None
        packed = self._gzipped.get(target)
        if packed is None:
            data = self.read(target)
            if len(data) < GZIP_MIN_BYTES or len(data) > MAX_CACHED_FILE:
                return None
            packed = self._gzipped[target] = gzip.compress(data, compresslevel=6, mtime=0)
        return packed


def accepts_gzip(scope: Scope) -> bool:
    """Whether the request's ``Accept-Encoding`` allows gzip (``gzip`` or ``*``, not with ``q=0``)."""
    for key, value in scope.get("headers") or ():
        if key.lower() != b"accept-encoding":
            continue
        for item in value.decode("latin-1").lower().split(","):
            coding, *params = (p.strip() for p in item.split(";"))
            q = next((p[2:] for p in params if p.startswith("q=")), "1")
            if coding in ("gzip", "*") and q.strip() not in ("0", "0.0", "0.00", "0.000"):
                return True
    return False


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], *, head: bool) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


class ConsoleApp:
    """ASGI app for everything under ``/ui`` (paths arrive with the ``/ui`` prefix)."""

    def __init__(self, files: ConsoleFiles | None = None) -> None:
        self.files = files or ConsoleFiles()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "GET")
        head = method == "HEAD"
        build = await asyncio.to_thread(self.files.build)
        if isinstance(build, str):
            body = NOT_BUILT_HTML.format(reason=build.replace("&", "&amp;").replace("<", "&lt;")).encode()
            await _send(send, 503, body, [(b"content-type", b"text/html; charset=utf-8"),
                                          (b"cache-control", b"no-store"), *security_headers(NOT_BUILT_CSP)],
                        head=head)
            return
        headers = security_headers(build.csp)
        if method not in ("GET", "HEAD"):
            await _send(send, 405, b"method not allowed\n", [(b"content-type", b"text/plain; charset=utf-8"),
                                                             (b"allow", b"GET, HEAD"), *headers], head=head)
            return
        rel = route_path(scope)[len(MOUNT):]
        target = await asyncio.to_thread(self.files.resolve, rel)
        status = 200
        if target is None:
            status, target = 404, await asyncio.to_thread(self.files.resolve, "404.html")
            if target is None:
                await _send(send, 404, b"not found\n", [(b"content-type", b"text/plain; charset=utf-8"), *headers],
                            head=head)
                return
        kind = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        cache = (b"public, max-age=31536000, immutable" if rel.startswith("/_next/static/") and status == 200
                 else b"no-cache")
        headers = [(b"content-type", kind.encode()), (b"cache-control", cache), *headers]
        body = await asyncio.to_thread(self.files.read_gzipped, target) if accepts_gzip(scope) else None
        if body is not None:
            headers += [(b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
        else:
            body = await asyncio.to_thread(self.files.read, target)
        await _send(send, status, body, headers, head=head)


def is_console_path(path: str) -> bool:
    return path == MOUNT or path.startswith(MOUNT + "/")


def with_console(api: ASGIApp, console: ConsoleApp | None = None) -> ASGIApp:
    """``api`` with the console answering ``/ui`` and ``/ui/...`` (HTTP only; everything else,
    websockets and the lifespan included, goes to ``api`` untouched)."""
    console = console or ConsoleApp()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_console_path(route_path(scope)):
            await console(scope, receive, send)
        else:
            await api(scope, receive, send)

    app.api = api   # type: ignore[attr-defined]   # for tests and introspection
    return app
