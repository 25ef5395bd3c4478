"""Option choices taken from the code's own declarations, loaded only when an option needs them.

``--runner`` accepts the names of the runner registry (``serve_apps.runners.RUNNERS``), ``teams
create --kind`` the config service's node kinds (``NODE_KINDS``), ``report run --kind`` the report
kinds the scheduler generates (``actors.scheduler.jobs.REPORT_KINDS``). Those modules cost seconds
to import, so the names are read when the option is parsed or completed, never at CLI start-up:
every command's ``--help`` and every TAB stays fast. A name outside the declaration is a usage error
(exit 2) that lists the valid ones; TAB completes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

RUNNER_HELP = "a name in the runner registry, serve_apps/runners.py (TAB completes them)"


def runner_names() -> tuple[str, ...]:
    from serve_apps.runners import RUNNERS

    return tuple(sorted(RUNNERS))


def node_kinds() -> tuple[str, ...]:
    from config_service import NODE_KINDS

    return tuple(NODE_KINDS)


def report_kinds() -> tuple[str, ...]:
    from actors.scheduler.jobs import REPORT_KINDS

    return tuple(REPORT_KINDS)


def one_of(names: Callable[[], Sequence[str]], *, default: str | None = None) -> dict[str, Any]:
    """``typer.Option`` keywords restricting a ``str`` option to ``names()``: a ``parser`` that refuses
    anything else (typer turns its ``BadParameter`` into exit 2) and an ``autocompletion``.

    typer parses the option's default too; give it as ``default`` and it passes without loading the
    declaration (tests/platform_cli checks every such default against its declaration)."""
    load = cache(names)

    def parse(value: str) -> str:
        if value == default:
            return value
        valid = load()
        if value not in valid:
            import typer

            raise typer.BadParameter(f"{value!r} is not one of: {', '.join(valid)}")
        return value

    def complete(incomplete: str) -> list[str]:
        return [name for name in load() if name.startswith(incomplete)]

    parse.declared, parse.default = load, default    # type: ignore[attr-defined]  # for the test
    return {"parser": parse, "autocompletion": complete}
