"""The CLI's exit-code contract, enforced in one place.

* 0: success.
* 1: a runtime failure: the API answered an error or was unreachable, the database or the Kubernetes
  API failed, a file or remote document held something unusable. Printed to stderr as one line,
  ``error: <message>``, without a traceback.
* 2: a usage error: unknown option, missing argument, invalid choice, options that contradict each
  other. typer/click print the usage and exit 2 (raise :class:`typer.BadParameter` for those).

Commands raise :class:`CliFailure` (through :func:`fail`) for failures they anticipate; the root
group (:class:`RootGroup`) turns that, and any other exception a command lets escape, into the
one-line message and exit 1. ``INCIDENTFOX_DEBUG=1`` re-raises instead, for the traceback.
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

DEBUG_ENV = "INCIDENTFOX_DEBUG"


def _debug() -> bool:
    """``INCIDENTFOX_DEBUG``, read through Settings; a settings error (often the very failure being
    reported) counts as off, so the one-line message still shows."""
    from incidentfox.settings import Settings

    try:
        return Settings().debug
    except Exception:   # noqa: BLE001 - the settings may be what failed
        return False


class CliFailure(Exception):
    """A runtime failure a command reports as ``error: <message>`` and exit code 1."""


def fail(message: str) -> NoReturn:
    """Stop the command with a runtime failure (exit 1)."""
    raise CliFailure(message)


# What libraries append that says nothing about the failure: SQLAlchemy's statement, parameters and
# link (everything from the first of those on), pydantic's link (one line per error).
_TAILS = ("\n[SQL:", "\n[parameters:", "\n(Background on this error")
_NOISE = "For further information visit"


def one_line(text: str) -> str:
    """A multi-line message (pydantic's, SQLAlchemy's) as one line, its lines joined by ``; ``."""
    for tail in _TAILS:
        text = text.split(tail, 1)[0]
    lines = (line.strip() for line in text.splitlines())
    return "; ".join(line for line in lines if line and not line.startswith(_NOISE))


def describe(exc: BaseException) -> str:
    """One line naming the failure: a :class:`CliFailure`'s message; ``Type: message`` otherwise."""
    text = one_line(str(exc))
    if isinstance(exc, CliFailure):
        return text or "failed"
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


class RootGroup(TyperGroup):
    """The root command: a command's escaping exception becomes ``error: …`` on stderr and exit 1.
    typer's own exits, aborts and usage errors pass through unchanged."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException, BrokenPipeError):
            raise                   # typer's exits and usage errors; a closed pipe (`| head`) exits quietly
        except Exception as exc:
            if _debug():
                raise
            typer.echo(f"error: {describe(exc)}", err=True)
            raise typer.Exit(1) from None
