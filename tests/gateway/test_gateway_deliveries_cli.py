"""`incidentfox deliveries list|redrive` against a database holding a failed dispatch."""

from __future__ import annotations

import asyncio
import json

from gateway_kit import RecordingRunner, make_core, slack_event
from typer.testing import CliRunner

from cli.main import app
from serve_apps import deliveries
from serve_apps.webhooks import slack


def test_list_failed_then_redrive(sqlite_url, fixtures_dir):
    async def seed():
        core = make_core(sqlite_url)
        trigger = slack.parse(headers={}, body=slack_event(fixtures_dir, event_id="EvCLI"), now=0).trigger
        res = await deliveries.intake(core.sessions, trigger=trigger,
                                      route=deliveries.Route(True, "acme", "payments"), payload="")
        await deliveries.dispatch(core.sessions, RecordingRunner(fail=True), delivery_pk=res.delivery_pk,
                                  plan=res.dispatch)
        await core.engine.dispose()
        return res

    res = asyncio.run(seed())
    cli = CliRunner()
    out = cli.invoke(app, ["deliveries", "list", "--failed", "--json", "--database-url", sqlite_url])
    assert out.exit_code == 0, out.output
    (row,) = [json.loads(line) for line in out.output.splitlines()]
    assert row["run_id"] == res.run_id and "executor unavailable" in row["dispatch_error"]
    out = cli.invoke(app, ["deliveries", "redrive", "--runner", "complete", "--database-url", sqlite_url])
    assert out.exit_code == 0 and f"re-drove 1 deliveries: {res.delivery_pk}" in out.output
    out = cli.invoke(app, ["deliveries", "list", "--failed", "--database-url", sqlite_url])
    assert "no deliveries match" in out.output
    assert cli.invoke(app, ["deliveries", "--help"]).exit_code == 0
    assert cli.invoke(app, ["up", "--help"]).exit_code == 0
