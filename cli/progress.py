"""Progress for long commands, always on stderr (stdout stays the JSON a script parses):

* :func:`progress`: a spinner naming the current step (``db upgrade``, ``gc``, ``cluster
  provision``); shown only when stderr is a terminal and the command was not given ``--quiet``;
* :func:`stage_bars`: determinate bars for work that counts (``kb ingest``: files parsed; ``kb
  rebuild``: chunks embedded, each level's clusters summarised, levels built), drawn from the typed
  events the work reports; plain lines when stderr is not a terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    import rich.progress as rp

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


def _stage_label(event: Any) -> str:
    if event.stage == "files":
        return "files parsed"
    if event.stage == "embed":
        return "chunks embedded"
    return f"level {event.level}: clusters summarised"


class _PlainStages:
    """Not a terminal: one plain line (no bar, no ANSI) per finished stage and level built."""

    def __init__(self, write: Callable[[str], Any]) -> None:
        self._write = write
        self._last: dict[tuple[str, int], tuple[int, int]] = {}

    def __call__(self, event: Any) -> None:
        if event.stage == "level":
            total = self._last.get(("summarise", event.level), (0, 0))[1]
            self._write(f"level {event.level} built ({total} clusters)\n")
            return
        self._last[(event.stage, event.level)] = (event.done, event.total)
        if event.done >= event.total:
            self._write(f"{_stage_label(event)}: {event.done}/{event.total}\n")


class _BarStages:
    """A terminal: one determinate bar per stage (files, chunks, each level's clusters)."""

    def __init__(self, bar: rp.Progress) -> None:
        self._bar = bar
        self._tasks: dict[tuple[str, int], rp.TaskID] = {}

    def __call__(self, event: Any) -> None:
        if event.stage == "level":
            task = self._tasks.get(("summarise", event.level))
            if task is not None:
                self._bar.update(task, description=f"level {event.level} built")
            return
        key = (event.stage, event.level)
        if key not in self._tasks:
            self._tasks[key] = self._bar.add_task(_stage_label(event), total=max(event.total, 1))
        self._bar.update(self._tasks[key], completed=event.done, total=max(event.total, 1))


@contextmanager
def stage_bars(title: str, *, quiet: bool = False, console: Console | None = None) -> Iterator[Callable[[Any], None]]:
    """Draw the knowledge package's typed progress events (:class:`incidentfox.knowledge.Progress`:
    ``stage``, ``done``, ``total``, ``level``) on stderr while the block runs: determinate bars on a
    terminal; otherwise ``title`` and one plain line per finished stage (no bar, no ANSI). Nothing
    with ``--quiet``. Never writes to stdout, which stays what a script parses."""
    out = console or Console(stderr=True)
    if quiet:
        yield lambda _event: None
        return
    if not out.is_terminal:
        write = out.file.write
        write(f"{title}\n")
        yield _PlainStages(write)
        return
    import rich.progress as rp

    columns = (rp.TextColumn("{task.description}"), rp.BarColumn(), rp.MofNCompleteColumn(), rp.TimeElapsedColumn())
    out.print(title, markup=False, highlight=False)
    with rp.Progress(*columns, console=out, transient=False) as bar:
        yield _BarStages(bar)
