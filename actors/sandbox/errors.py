"""The sandbox package's typed errors. Each maps to one HTTP status through
:func:`incidentfox.errors.install_error_handlers`; tool-level failures (a refused path, a failed
command) are *not* errors here: they go back to the model as ``is_error`` tool results."""

from __future__ import annotations

from incidentfox.errors import Conflict, Forbidden, IncidentFoxError, NotFound


class SandboxError(IncidentFoxError):
    status, code = 400, "sandbox_error"


class PathEscape(SandboxError):
    """A tool path resolved outside the session workspace (``..``, absolute path, symlink)."""

    status, code = 400, "path_escape"


class IsolationUnavailable(SandboxError):
    """Bash cannot run: bubblewrap (or the opted-in rlimit-only mode) is not usable here."""

    status, code = 503, "isolation_unavailable"


class SessionNotFound(NotFound):
    code = "session_not_found"


class SessionExpired(SandboxError):
    status, code = 410, "session_expired"


class TurnInProgress(Conflict):
    code = "turn_in_progress"


class McpNotAllowed(Forbidden):
    code = "mcp_not_allowed"


class SessionLimitReached(SandboxError):
    """The team already has its ``sandbox.max_open_sessions`` open sessions."""

    status, code = 429, "sandbox_session_limit"


class HostUnavailable(SandboxError):
    status, code = 503, "sandbox_host_unavailable"


class WorkspaceUnavailable(SandboxError):
    """The session's saved workspace cannot be read from the object store right now."""

    status, code = 503, "workspace_unavailable"
