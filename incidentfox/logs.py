"""Structured JSON logs (structlog's stdlib formatter) with one secret-redaction filter.

Every process calls :func:`configure_logging`. Records carry ``run_id``, ``org_id``, ``team_id`` and
``trace`` when the code sets them (``log.info("…", extra=log_context(run_id=…))`` or the
``bind`` contextvar helpers). :class:`RedactingFilter` is the one place secrets are scrubbed: bearer
tokens, IncidentFox tokens, Slack tokens, AWS keys, ``key=value`` pairs whose key looks secret, and
any value registered with :func:`register_secret` (the process's own secrets: admin token, pepper,
keys, webhook secrets; :meth:`incidentfox.settings.Settings.process_secrets`).
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any


def _import_structlog() -> Any:
    """structlog, without the ``rich`` it loads for its developer console renderer and pretty
    tracebacks when rich is installed (about 3 MiB in every Ray worker, measured): these logs use
    only the stdlib formatter and ``JSONRenderer``. Where rich is already loaded (the CLI), nothing
    is hidden."""
    if "rich" in sys.modules:
        import structlog
        return structlog
    sys.modules["rich"] = None   # type: ignore[assignment] - `import rich` raises ImportError meanwhile
    try:
        import structlog
        import structlog.processors
        import structlog.stdlib
    finally:
        if sys.modules.get("rich", 0) is None:
            del sys.modules["rich"]
    return structlog


structlog = _import_structlog()

CONTEXT_FIELDS = ("run_id", "org_id", "team_id", "trace")
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("incidentfox_log_ctx",
                                                                           default=MappingProxyType({}))
_registered: set[str] = set()

MASK = "***"
# (pattern, keeps a prefix group): where True, group 1 (e.g. "Bearer ", "api_key=") is kept.
_PATTERNS: list[tuple[re.Pattern[str], bool]] = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), True),
    (re.compile(r"xox[abprs]-[A-Za-z0-9-]{8,}"), False),                # Slack tokens
    (re.compile(r"xapp-[A-Za-z0-9-]{8,}"), False),
    (re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}"), False),  # AWS access key ids
    (re.compile(r"sk-[A-Za-z0-9_-]{16,}"), False),                      # OpenAI/Anthropic-style keys
    (re.compile(r"whsec_[A-Za-z0-9+/=]{8,}"), False),
    (re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"), False),
    # IncidentFox tokens: "{org}.{random}" / "{org}.{team}.{random}", random part ≥ 40 urlsafe chars
    (re.compile(r"\b[a-z0-9][a-z0-9-]{0,30}(?:\.[a-z0-9][a-z0-9-]{0,30})?\.[A-Za-z0-9_-]{40,}"), False),
    (re.compile(r"(?i)((?:password|passwd|secret|token|api[_-]?key|signing[_-]?secret|authorization)"
                r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',}]{4,})"), True),
]


def register_secret(value: str | None) -> None:
    """Make an exact secret value (≥ 8 chars) always redacted from logs."""
    if value and len(value) >= 8:
        _registered.add(value)


def redact(text: str) -> str:
    for secret in _registered:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, keeps_prefix in _PATTERNS:
        text = pattern.sub((lambda m: m.group(1) + MASK) if keeps_prefix else MASK, text)
    return text


def _scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string must not drop the record
        message = str(record.msg)
    record.msg, record.args = redact(message), None
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None


class RedactingFilter(logging.Filter):
    """Scrubs secrets from the message, its args and the context fields of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub(record)
        return True


def _install_redacting_record_factory() -> None:
    """Scrub every record when it is created, whichever handler later writes it: Ray and Serve
    install their own handlers (``ray.serve`` replica logs, worker log files) that our handler's
    filter never sees. Idempotent."""
    current = logging.getLogRecordFactory()
    if getattr(current, "_incidentfox_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        _scrub(record)
        return record

    factory._incidentfox_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def redacting_logging_installed() -> bool:
    """Whether this process scrubs every log record (:func:`configure_process_logging` ran)."""
    return bool(getattr(logging.getLogRecordFactory(), "_incidentfox_redacting", False))


def bind(**fields: str | None) -> contextvars.Token:
    """Attach context fields (run_id, org_id, team_id, trace) to every log record in this task."""
    current = dict(_context.get())
    current.update({k: v for k, v in fields.items() if v is not None})
    return _context.set(current)


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


def _line_fields(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: a stdlib record (already scrubbed by :class:`RedactingFilter` or the record
    factory) → the keys of one log line, in order: ts, level, logger, msg, the context fields, exc.
    It runs in the foreign (stdlib) pre-chain, which sees the record before the formatter clears its
    ``exc_text``."""
    record: logging.LogRecord = event["_record"]
    out: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": event["event"],
    }
    ctx = _context.get()
    for f in CONTEXT_FIELDS:
        value = getattr(record, f, None) or ctx.get(f)
        if value:
            out[f] = redact(str(value))
    if record.exc_text:
        out["exc"] = record.exc_text
    return out


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """One JSON object per line (structlog's stdlib integration and ``JSONRenderer``)."""

    def __init__(self) -> None:
        super().__init__(foreign_pre_chain=[_line_fields],
                         processors=[structlog.processors.JSONRenderer(ensure_ascii=False)])


def configure_logging(level: str = "INFO", stream=None) -> None:
    """Route the root logger through the redaction filter to JSON lines on ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_incidentfox", False):
            root.removeHandler(h)
    handler._incidentfox = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def configure_process_logging(level: str = "INFO") -> None:
    """:func:`configure_logging`, a redacting record factory (every record of the process is scrubbed,
    whichever handler writes it), and the process's own secrets (admin token, pepper, Fernet keys)
    registered for redaction.

    The one setup function of every process that handles tenant data: ``incidentfox up``, every Ray
    actor's ``__init__`` (or :func:`with_process_logging` for ``ray.remote(Core)``), every Ray task
    that touches tenant data and every Serve replica. ``tests/security/test_security_logs.py`` lists
    them all from the source and fails on one that does not call it. The secrets are read from the
    environment as it is now (a fresh :class:`~incidentfox.settings.Settings`, not the cached one:
    ``incidentfox up`` sets them just before calling this)."""
    from incidentfox.settings import Settings

    configure_logging(level)
    _install_redacting_record_factory()
    for value in Settings().process_secrets():
        register_secret(value)
    # One INFO line per HTTP request from the SDK clients is noise, not context.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def with_process_logging(cls: type) -> type:
    """``ray.remote(…)(with_process_logging(Core))``: the actor class ``Core`` whose ``__init__`` first
    calls :func:`configure_process_logging` (``Core`` itself, used in-process, is left as it is)."""
    base_init = cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        configure_process_logging()
        base_init(self, *args, **kwargs)

    return type(cls.__name__, (cls,), {"__init__": __init__, "__doc__": cls.__doc__,
                                       "__module__": cls.__module__})
