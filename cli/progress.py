"""Progress for long commands (``db upgrade``, ``gc``, ``cluster provision``): a spinner on stderr
naming the current step.

Shown only when stderr is a terminal and the command was not given ``--quiet``; otherwise nothing
is drawn, so stdout (JSON lines, one summary) and stderr stay exactly what a script parses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display on stderr.")]

Step = Callable[[str], None]


def _no_step(_message: str) -> None:
    return None


@contextmanager
def progress(first: str, *, quiet: bool = False, console: Console | None = None) -> Iterator[Step]:
    """Show ``first`` beside a spinner until the block ends; the yielded ``step(message)`` replaces it.
    Transient: the spinner leaves no line behind. A no-op unless the console is a terminal."""
    out = console or Console(stderr=True)
    if quiet or not out.is_terminal:
        yield _no_step
        return
    with out.status(first) as status:
        yield lambda message: status.update(message)
