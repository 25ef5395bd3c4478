"""The built-in tools (``Read``, ``Write``, ``Edit``, ``Bash``, ``Grep``, ``Glob``): their schemas,
shaped like Claude Code's, and :class:`Toolbox`, which executes a ``tool_use`` for one session.

Every file path goes through :class:`Workspace` (confined, symlink-safe). File tools touch regular
files only: the target is ``lstat``-ed before it is opened (a FIFO, socket or device is refused
without opening it), every open carries ``O_NONBLOCK | O_NOFOLLOW`` (a swap in between can neither
block a thread on a FIFO nor follow a link) and the open fd is ``fstat``-ed again
(:func:`check_regular`). ``Write``/``Edit`` refuse what would take the workspace past its disk
quota. Tools never raise to the agent loop: a refused path, a missing file or a failed command comes back as an ``is_error`` result
the model can read and correct. Tools run one at a time per session and Bash leaves no process
behind, so nothing in the sandbox can race a file tool's path checks.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from actors.sandbox import search
from actors.sandbox.config import SandboxLimits
from actors.sandbox.errors import IsolationUnavailable, PathEscape
from actors.sandbox.isolation import IsolationStatus, run_command
from actors.sandbox.limits import SessionGuard
from actors.sandbox.workspace import VIRTUAL_ROOT, Workspace, check_regular

MAX_READ_BYTES = 10 * 1024 * 1024
MAX_LINE_CHARS = 2000
DEFAULT_READ_LINES = 2000

_PATH = {"type": "string", "description": f"Path of the file: absolute under {VIRTUAL_ROOT}, or relative to it."}

BUILTIN_TOOLS: list[dict[str, Any]] = [
    {"name": "Bash",
     "description": ("Run a bash command in the session workspace (/workspace) and return its output. "
                     "Commands run in an isolated sandbox as an unprivileged user (no network unless enabled), with CPU, "
                     "memory, process and file-size limits, and a timeout. Nothing persists between "
                     "commands except files in /workspace; background processes are stopped when the "
                     "command ends."),
     "input_schema": {"type": "object", "properties": {
         "command": {"type": "string", "description": "The command to execute."},
         "timeout": {"type": "number", "description": "Optional timeout in milliseconds (max 600000)."},
         "description": {"type": "string", "description": "5-10 words saying what the command does."}},
         "required": ["command"]}},
    {"name": "Read",
     "description": ("Read a file from the workspace. Returns lines numbered like `cat -n`. Use offset "
                     "and limit for long files; lines longer than 2000 characters are truncated."),
     "input_schema": {"type": "object", "properties": {
         "file_path": _PATH,
         "offset": {"type": "integer", "description": "Line number to start reading from (1-based)."},
         "limit": {"type": "integer", "description": "Number of lines to read (default 2000)."}},
         "required": ["file_path"]}},
    {"name": "Write",
     "description": "Write a file in the workspace, creating parent directories and replacing any existing file.",
     "input_schema": {"type": "object", "properties": {
         "file_path": _PATH, "content": {"type": "string", "description": "The content to write."}},
         "required": ["file_path", "content"]}},
    {"name": "Edit",
     "description": ("Replace exact text in a file. old_string must occur exactly once unless replace_all "
                     "is true; include surrounding context to make it unique."),
     "input_schema": {"type": "object", "properties": {
         "file_path": _PATH,
         "old_string": {"type": "string", "description": "The text to replace."},
         "new_string": {"type": "string", "description": "The replacement (must differ from old_string)."},
         "replace_all": {"type": "boolean", "description": "Replace every occurrence (default false)."}},
         "required": ["file_path", "old_string", "new_string"]}},
    {"name": "Grep",
     "description": ("Search file contents in the workspace with a regular expression (Python syntax). "
                     "output_mode: files_with_matches (default), content (matching lines; -n, -A, -B, -C) "
                     "or count."),
     "input_schema": {"type": "object", "properties": {
         "pattern": {"type": "string", "description": "The regular expression to search for."},
         "path": {"type": "string", "description": f"File or directory to search (default {VIRTUAL_ROOT})."},
         "glob": {"type": "string", "description": "Only search files matching this glob, e.g. *.py."},
         "output_mode": {"type": "string", "enum": ["content", "files_with_matches", "count"]},
         "-i": {"type": "boolean", "description": "Case-insensitive search."},
         "-n": {"type": "boolean", "description": "Show line numbers (content mode)."},
         "-A": {"type": "integer", "description": "Lines of context after each match."},
         "-B": {"type": "integer", "description": "Lines of context before each match."},
         "-C": {"type": "integer", "description": "Lines of context around each match."},
         "head_limit": {"type": "integer", "description": "Return at most this many lines/entries."},
         "multiline": {"type": "boolean", "description": "Let . match newlines and patterns span lines."}},
         "required": ["pattern"]}},
    {"name": "Glob",
     "description": "Find files in the workspace by glob pattern (e.g. **/*.log), newest first.",
     "input_schema": {"type": "object", "properties": {
         "pattern": {"type": "string", "description": "The glob pattern to match."},
         "path": {"type": "string", "description": f"Directory to search in (default {VIRTUAL_ROOT})."}},
         "required": ["pattern"]}},
]
BUILTIN_NAMES = frozenset(t["name"] for t in BUILTIN_TOOLS)


@dataclass(frozen=True)
class ToolOutcome:
    content: str
    is_error: bool = False


ExtraHandler = Callable[[dict[str, Any]], Awaitable[ToolOutcome]]


@dataclass
class Toolbox:
    """The tools of one session. ``extra`` adds tools (the session's MCP tools) by name."""

    workspace: Workspace
    limits: SandboxLimits
    isolation: IsolationStatus
    network: bool = False
    commands: Any = None    # the session's SessionCommands (actors/sandbox/backends); None: bwrap here
    extra_specs: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, ExtraHandler] = field(default_factory=dict)
    guard: SessionGuard | None = None      # whole-session limits (cgroup, disk quota, wall time)

    def specs(self) -> list[dict[str, Any]]:
        return [*BUILTIN_TOOLS, *self.extra_specs]

    async def execute(self, name: str, tool_input: Any) -> ToolOutcome:
        if not isinstance(tool_input, dict):
            return ToolOutcome("tool input must be a JSON object", True)
        if name in self.extra:
            return await self.extra[name](tool_input)
        spec = next((t for t in BUILTIN_TOOLS if t["name"] == name), None)
        if spec is None:
            return ToolOutcome(f"unknown tool {name!r}", True)
        missing = [k for k in spec["input_schema"]["required"] if k not in tool_input]
        if missing:
            return ToolOutcome(f"missing required parameter(s): {', '.join(missing)}", True)
        try:
            if name == "Bash":
                return await self._bash(tool_input)
            return await asyncio.to_thread(getattr(self, f"_{name.lower()}"), tool_input)
        except PathEscape as exc:
            return ToolOutcome(f"Refused: {exc.message}", True)
        except IsolationUnavailable as exc:
            return ToolOutcome(exc.message, True)
        except FileNotFoundError:
            return ToolOutcome(f"File does not exist: {tool_input.get('file_path') or tool_input.get('path')}", True)
        except IsADirectoryError:
            return ToolOutcome(f"{tool_input.get('file_path')} is a directory; use Glob or Bash `ls`", True)
        except (OSError, ValueError, TypeError) as exc:
            return ToolOutcome(f"{name} failed: {type(exc).__name__}: {exc}", True)

    # -- Bash ------------------------------------------------------------------------------------

    async def _bash(self, args: dict[str, Any]) -> ToolOutcome:
        command = args["command"]
        if not isinstance(command, str) or not command.strip():
            return ToolOutcome("command must be a non-empty string", True)
        timeout_s = self.limits.default_timeout_s
        if args.get("timeout") is not None:
            timeout_s = min(max(float(args["timeout"]) / 1000.0, 1.0), self.limits.max_timeout_s)
        remaining = self.guard.remaining_s() if self.guard is not None else None
        if remaining is not None and remaining <= 0:
            return ToolOutcome("the session reached its maximum lifetime; no more commands run in it", True)
        # The session's command backend (bubblewrap here, a pod in Kubernetes); ``guard`` carries the
        # whole-session limits (wall time, workspace quota, cgroup) to whichever runs the command.
        run = self.commands.run if self.commands is not None else run_command
        res = await run(command, workspace=self.workspace, limits=self.limits, status=self.isolation,
                        timeout_s=timeout_s, network=self.network, guard=self.guard)
        return ToolOutcome(res.for_model(), is_error=res.killed is not None or res.exit_code != 0)

    # -- file tools (blocking; run in a thread) ----------------------------------------------------

    def _read(self, args: dict[str, Any]) -> ToolOutcome:
        path = args["file_path"]
        offset = max(int(args.get("offset") or 1), 1)
        limit = max(int(args.get("limit") or DEFAULT_READ_LINES), 1)
        fd = self._open_regular(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as fh:
            st = check_regular(fh.fileno(), path)
            if st.st_size > MAX_READ_BYTES:
                return ToolOutcome(f"{path} is {st.st_size} bytes; read it in parts with Bash (head/sed)", True)
            data = fh.read(MAX_READ_BYTES)
        if not data:
            return ToolOutcome(f"{path} exists but is empty")
        if b"\x00" in data[:8192]:
            return ToolOutcome(f"{path} looks binary ({len(data)} bytes); inspect it with Bash (xxd, file)", True)
        lines = data.decode("utf-8", errors="replace").splitlines()
        window = lines[offset - 1: offset - 1 + limit]
        if not window:
            return ToolOutcome(f"{path} has {len(lines)} lines; offset {offset} is past the end", True)
        out = [f"{offset + i:>6}\t{line[:MAX_LINE_CHARS]}" for i, line in enumerate(window)]
        return ToolOutcome("\n".join(out))

    def _write(self, args: dict[str, Any]) -> ToolOutcome:
        path, content = args["file_path"], args["content"]
        if not isinstance(content, str):
            return ToolOutcome("content must be a string", True)
        data = content.encode()
        if len(data) > self.limits.fsize_bytes:
            return ToolOutcome(f"content is larger than the file size limit ({self.limits.fsize_bytes} bytes)", True)
        old = self._existing_size(path)
        if self.guard is not None and (why := self.guard.quota_refusal(adding=len(data) - old)):
            return ToolOutcome(f"Refused: {why}", True)
        fd = self._open_regular(path, os.O_WRONLY | os.O_CREAT, 0o644, create_parents=True)
        with os.fdopen(fd, "wb") as fh:
            check_regular(fh.fileno(), path)
            fh.truncate(0)
            fh.write(data)
        real = self.workspace.resolve(path)
        return ToolOutcome(f"Wrote {len(data)} bytes to {self.workspace.virtual(real)}")

    def _edit(self, args: dict[str, Any]) -> ToolOutcome:
        path, old, new = args["file_path"], args["old_string"], args["new_string"]
        if not all(isinstance(v, str) for v in (old, new)):
            return ToolOutcome("old_string and new_string must be strings", True)
        if old == new:
            return ToolOutcome("old_string and new_string are identical; nothing to change", True)
        if old == "":
            return ToolOutcome("old_string must not be empty (use Write to create a file)", True)
        fd = self._open_regular(path, os.O_RDWR)
        with os.fdopen(fd, "r+b") as fh:
            st = check_regular(fh.fileno(), path)
            if st.st_size > MAX_READ_BYTES:
                return ToolOutcome(f"{path} is too large to edit ({st.st_size} bytes)", True)
            text = fh.read().decode("utf-8", errors="strict")
            count = text.count(old)
            if count == 0:
                return ToolOutcome(f"old_string was not found in {path}", True)
            if count > 1 and not args.get("replace_all"):
                return ToolOutcome(f"old_string occurs {count} times in {path}; add surrounding context "
                                   "to make it unique or set replace_all", True)
            updated = text.replace(old, new) if args.get("replace_all") else text.replace(old, new, 1)
            grow = len(updated.encode()) - st.st_size
            if self.guard is not None and (why := self.guard.quota_refusal(adding=grow)):
                return ToolOutcome(f"Refused: {why}", True)
            fh.seek(0)
            fh.truncate(0)
            fh.write(updated.encode())
        n = count if args.get("replace_all") else 1
        return ToolOutcome(f"Edited {path}: replaced {n} occurrence{'s' if n != 1 else ''}")

    def _grep(self, args: dict[str, Any]) -> ToolOutcome:
        start = self.workspace.resolve(args.get("path") or VIRTUAL_ROOT)
        st = os.lstat(start)   # FileNotFoundError when absent
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise PathEscape(f"{args.get('path')} is {_kind(st.st_mode)}; Grep searches regular files only",
                             details={"path": args.get("path"), "reason": "not_regular"})
        try:
            return ToolOutcome(search.grep(self.workspace, args=args, start=start,
                                           time_limit_s=self.limits.search_time_limit_s))
        except search.SearchTimeout as exc:
            return ToolOutcome(str(exc), True)

    # -- regular files only -------------------------------------------------------------------------

    def _open_regular(self, path: str, flags: int, mode: int = 0o644, *, create_parents: bool = False) -> int:
        """Open ``path`` as a regular file, never blocking: refuse a FIFO, socket or device seen by
        ``lstat`` before opening it; open non-blocking (a FIFO swapped in after the check opens
        without waiting, or fails with ENXIO) and let the caller ``fstat`` the fd."""
        real = self.workspace.resolve(path)
        try:
            st = os.lstat(real)
        except FileNotFoundError:
            st = None
        if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            raise PathEscape(f"{path} is {_kind(st.st_mode)}; file tools read and write regular files only",
                             details={"path": path, "reason": "not_regular"})
        try:
            return self.workspace.open(path, flags | os.O_NONBLOCK, mode, create_parents=create_parents)
        except OSError as exc:
            if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):
                raise PathEscape(f"{path} is not a regular file", details={"path": path, "reason": "not_regular"}) \
                    from None
            raise

    def _existing_size(self, path: str) -> int:
        try:
            st = os.lstat(self.workspace.resolve(path))
        except FileNotFoundError:
            return 0
        return st.st_size if stat.S_ISREG(st.st_mode) else 0

    def _glob(self, args: dict[str, Any]) -> ToolOutcome:
        start = self.workspace.resolve(args.get("path") or VIRTUAL_ROOT)
        if not start.is_dir():
            return ToolOutcome(f"{args.get('path')} is not a directory", True)
        try:
            return ToolOutcome(search.glob(self.workspace, pattern=str(args["pattern"]), start=start,
                                           time_limit_s=self.limits.search_time_limit_s))
        except search.SearchTimeout as exc:
            return ToolOutcome(str(exc), True)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"
