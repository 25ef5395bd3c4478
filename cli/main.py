"""The ``incidentfox`` console script. Each command group lives in its own module with a
``register(app)`` function; this file only assembles them, and adds ``--version``/``-V``, shell
completion (``--install-completion``, ``--show-completion``) and the exit-code contract of
:mod:`cli.errors` (1: runtime failure, one line on stderr; 2: usage error)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated

import typer

from cli import (
    cluster_cmds,
    config_cmds,
    deliveries_cmds,
    docs_cmds,
    eval_cmds,
    gc_cmds,
    init_cmds,
    kb_cmds,
    node_config_cmds,
    orgs_cmds,
    platform_cmds,
    report_cmds,
    routing_cmds,
    teams_cmds,
    tokens_cmds,
    webhooks_cmds,
)
from cli.errors import RootGroup

DIST = "incidentfox"

app = typer.Typer(cls=RootGroup, no_args_is_help=True, help="IncidentFox: an AI SRE platform on Ray.",
                  pretty_exceptions_show_locals=False, add_completion=True)

for _module in (config_cmds, platform_cmds, deliveries_cmds, gc_cmds, cluster_cmds, report_cmds,
                eval_cmds, docs_cmds, init_cmds, orgs_cmds, teams_cmds, tokens_cmds, routing_cmds,
                node_config_cmds, webhooks_cmds, kb_cmds):
    _module.register(app)


def installed_version() -> str:
    """The installed distribution's version (``unknown`` when run from a tree that is not installed)."""
    try:
        return package_version(DIST)
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"{DIST} {installed_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", "-V", callback=_print_version, is_eager=True,
                                          help="Print the installed version and exit.")] = False,
) -> None:
    """IncidentFox: an AI SRE platform on Ray."""


if __name__ == "__main__":  # pragma: no cover
    app()
