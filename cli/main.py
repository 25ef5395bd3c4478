"""The ``incidentfox`` console script. Each command group lives in its own module with a
``register(app)`` function; this file only assembles them."""

from __future__ import annotations

import typer

from cli import (
    cluster_cmds,
    config_cmds,
    deliveries_cmds,
    docs_cmds,
    eval_cmds,
    gc_cmds,
    init_cmds,
    node_config_cmds,
    orgs_cmds,
    platform_cmds,
    report_cmds,
    routing_cmds,
    teams_cmds,
    tokens_cmds,
    webhooks_cmds,
)

app = typer.Typer(no_args_is_help=True, help="IncidentFox: an AI SRE platform on Ray.",
                  pretty_exceptions_show_locals=False, add_completion=False)

for _module in (config_cmds, platform_cmds, deliveries_cmds, gc_cmds, cluster_cmds, report_cmds,
                eval_cmds, docs_cmds, init_cmds, orgs_cmds, teams_cmds, tokens_cmds, routing_cmds,
                node_config_cmds, webhooks_cmds):
    _module.register(app)


@app.callback()
def _root() -> None:
    """IncidentFox: an AI SRE platform on Ray."""


if __name__ == "__main__":  # pragma: no cover
    app()
