"""The alerts' inputs are recorded where the behaviour happens: a failed first hand-off and the
sweep's retry count in ``dispatch_attempts_total``, and the sweep sets the intake backlog gauge
(cluster/monitoring/prometheusrule.yaml alerts on both)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from gateway_kit import RecordingRunner, make_core, slack_event

from incidentfox import metrics
from incidentfox.db import utcnow
from serve_apps import deliveries
from serve_apps.webhooks import slack


def test_dispatch_attempts_and_backlog_are_recorded(sqlite_url: str, fixtures_dir: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    recorded: list[tuple[str, float, dict[str, Any]]] = []
    monkeypatch.setattr(metrics.DISPATCH_ATTEMPTS_TOTAL, "inc",
                        lambda value=1.0, **tags: recorded.append(("attempts", value, tags)))
    monkeypatch.setattr(metrics.DELIVERIES_UNDISPATCHED, "set",
                        lambda value, **tags: recorded.append(("undispatched", value, tags)))

    async def scenario() -> None:
        core = make_core(sqlite_url)
        trigger = slack.parse(headers={}, body=slack_event(fixtures_dir, event_id="EvAlert"), now=0).trigger
        res = await deliveries.intake(core.sessions, trigger=trigger,
                                      route=deliveries.Route(True, "acme", "payments"), payload="")
        await deliveries.dispatch(core.sessions, RecordingRunner(fail=True), delivery_pk=res.delivery_pk,
                                  plan=res.dispatch)
        done = await deliveries.sweep(core.sessions, RecordingRunner(), now=utcnow() + timedelta(hours=1))
        assert done == [res.delivery_pk]
        await deliveries.sweep(core.sessions, RecordingRunner(), now=utcnow() + timedelta(hours=1))
        await core.engine.dispose()

    asyncio.run(scenario())
    assert recorded == [
        ("attempts", 1.0, {"kind": "first", "result": "error"}),
        ("undispatched", 1, {}),
        ("attempts", 1.0, {"kind": "retry", "result": "ok"}),
        ("undispatched", 0, {}),
    ]
