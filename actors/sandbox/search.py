"""Grep and Glob over a workspace, in Python (no ripgrep on the host, and the walk must stay
confined: :meth:`Workspace.walk_files` never descends through symlinks and skips links that point
out). Blocking; the toolbox runs these in a thread.

Patterns come from the model, so matching uses the ``regex`` module (Python syntax, maintained,
a drop-in for ``re``) rather than ``re``: ``re`` holds the interpreter lock for a whole match, so a
catastrophic pattern (``(a+)+$`` on a long line) would freeze every session of the host with no
way to interrupt it. ``regex`` releases the lock while matching a ``str`` and takes a ``timeout``:
one Grep or Glob call gets ``time_limit_s`` for all its matching, then ends with
:class:`SearchTimeout`, which the model reads as a tool error."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any

import regex

from actors.sandbox.workspace import Workspace

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_GLOB_RESULTS = 100
DEFAULT_HEAD_LIMIT = 250
DEFAULT_TIME_LIMIT_S = 10.0

class SearchTimeout(Exception):
    """A Grep/Glob pattern used up its matching time (almost always catastrophic backtracking)."""

class _Budget:
    """The time left for one call's matching, handed to each ``regex`` call as its timeout."""

    def __init__(self, limit_s: float, what: str) -> None:
        self.limit_s, self.what = limit_s, what
        self.deadline = time.monotonic() + limit_s

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.exceeded()
        return left

    def exceeded(self) -> SearchTimeout:
        return SearchTimeout(f"{self.what} stopped: matching took longer than {self.limit_s:g}s. The pattern "
                             "probably backtracks catastrophically (nested quantifiers such as (a+)+ or "
                             "(.*)*); simplify it or search a narrower path.")

def glob_to_regex(pattern: str) -> regex.Pattern[str]:
    """Translate a glob with ``**``, ``*``, ``?``, ``[...]`` and ``{a,b}`` into an anchored regex
    over ``/``-separated relative paths. A pattern without ``/`` matches at any depth."""
    if "/" not in pattern and not pattern.startswith("**"):
        pattern = "**/" + pattern
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(regex.escape(c))
            else:
                body = pattern[i + 1:end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        elif c == "{":
            end = pattern.find("}", i + 1)
            if end == -1:
                out.append(regex.escape(c))
            else:
                alts = pattern[i + 1:end].split(",")
                out.append("(?:" + "|".join(glob_to_regex_fragment(a) for a in alts) + ")")
                i = end
        else:
            out.append(regex.escape(c))
        i += 1
    return regex.compile("^" + "".join(out) + "$")

def glob_to_regex_fragment(part: str) -> str:
    return "".join("[^/]*" if ch == "*" else "[^/]" if ch == "?" else regex.escape(ch) for ch in part)

def glob(ws: Workspace, *, pattern: str, start: Path, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> str:
    """Files under ``start`` matching ``pattern``, newest first (as Claude Code's Glob)."""
    rx = glob_to_regex(pattern)
    budget = _Budget(time_limit_s, "Glob")
    hits: list[tuple[float, str]] = []
    for path in ws.walk_files(start):
        rel = os.path.relpath(path, start)
        if _match(rx.match, rel, budget):
            try:
                mtime = os.lstat(path).st_mtime
            except OSError:
                continue
            hits.append((mtime, ws.virtual(path)))
    if not hits:
        return "No files found"
    hits.sort(key=lambda h: (-h[0], h[1]))
    lines = [h[1] for h in hits[:MAX_GLOB_RESULTS]]
    if len(hits) > MAX_GLOB_RESULTS:
        lines.append(f"(results truncated: {len(hits)} files matched, showing {MAX_GLOB_RESULTS})")
    return "\n".join(lines)

def _read_text(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES or st.st_nlink > 1:
            return None
        data = fh.read(MAX_FILE_BYTES + 1)
    if b"\x00" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", errors="replace")

def _match(fn: Any, text: str, budget: _Budget) -> Any:
    try:
        return fn(text, timeout=budget.left(), concurrent=True)
    except TimeoutError:
        raise budget.exceeded() from None

def grep(ws: Workspace, *, args: dict[str, Any], start: Path, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> str:
    """Search file contents with a Python-syntax regex. Modes as Claude Code's Grep:
    ``files_with_matches`` (default), ``content`` (with ``-n``/``-A``/``-B``/``-C``), ``count``.
    Raises :class:`SearchTimeout` when matching takes longer than ``time_limit_s`` in total."""
    flags = regex.IGNORECASE if args.get("-i") else 0
    if args.get("multiline"):
        flags |= regex.MULTILINE | regex.DOTALL
    try:
        rx = regex.compile(str(args["pattern"]), flags)
    except regex.error as exc:
        raise ValueError(f"invalid regex: {exc}") from None
    budget = _Budget(time_limit_s, "Grep")
    mode = args.get("output_mode") or "files_with_matches"
    file_rx = glob_to_regex(args["glob"]) if args.get("glob") else None
    ctx = int(args.get("-C") or 0)
    before, after = int(args.get("-B") or ctx), int(args.get("-A") or ctx)
    numbers = args.get("-n", True)
    head_limit = int(args.get("head_limit") or DEFAULT_HEAD_LIMIT)
    out: list[str] = []
    for path in ws.walk_files(start):
        if file_rx is not None and not _match(file_rx.match, os.path.relpath(path, start), budget):
            continue
        text = _read_text(path)
        if text is None:
            continue
        vpath = ws.virtual(path)
        if mode == "files_with_matches":
            if _match(rx.search, text, budget):
                out.append(vpath)
        elif mode == "count":
            n = len(_match(rx.findall, text, budget))
            if n:
                out.append(f"{vpath}:{n}")
        else:
            out.extend(_content_lines(rx, text, vpath, before=before, after=after, numbers=bool(numbers),
                                      budget=budget))
        if len(out) >= head_limit:
            break
    if not out:
        return "No matches found"
    more = len(out) > head_limit
    out = out[:head_limit]
    if more:
        out.append(f"(output limited to {head_limit} lines)")
    return "\n".join(out)

def _content_lines(rx: regex.Pattern[str], text: str, vpath: str, *, before: int, after: int,
                   numbers: bool, budget: _Budget) -> list[str]:
    lines = text.splitlines()
    keep: dict[int, bool] = {}
    for i, line in enumerate(lines):
        if _match(rx.search, line, budget):
            for j in range(max(0, i - before), min(len(lines), i + after + 1)):
                keep[j] = keep.get(j, False) or j == i
    out = []
    for j in sorted(keep):
        sep = ":" if keep[j] else "-"
        out.append(f"{vpath}{sep}{j + 1}{sep}{lines[j]}" if numbers else f"{vpath}{sep}{lines[j]}")
    return out
