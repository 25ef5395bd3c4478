"""A run with no thread (an alert) posts its first message in the team's ``slack.default_channel``
only while no other team claims that channel (the rule of ``config_service.team_has_channel``): a
default channel is any org admin's free text, a routing claim is exclusive. Otherwise the run posts
nothing and records a ``channel_not_claimed`` note. No Ray: ``_post_first`` on a real database and
the local Slack recorder."""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import SimpleNamespace
from typing import Any

from actors.engine.investigation import _post_first
from actors.engine.run_state import LiveRun
from cli.demo.slack_recorder import SlackRecorder
from config_service import TeamConfig
from config_service.services import config as config_svc
from config_service.services import nodes, orgs
from incidentfox.contracts import Trigger
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs import store
from incidentfox.settings import Settings


class Notes:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def event(self, run_id: str, kind: str, data: dict[str, Any]) -> None:
        self.events.append((run_id, kind, data))


async def test_an_alert_run_posts_in_its_default_channel_only_while_no_other_team_claims_it(sqlite_url, tmp_path):
    import base64
    import os
    import secrets

    settings = Settings(database_url=sqlite_url, home=tmp_path, token_pepper=secrets.token_hex(32),
                        secret_key=base64.urlsafe_b64encode(os.urandom(32)).decode())
    engine = make_async_engine(sqlite_url)
    sessions = session_factory(engine)
    async with sessions() as s:
        await orgs.create_org(s, org_id="acme", name="Acme", actor="t")
        for team in ("payments", "search"):
            await nodes.create_node(s, org_id="acme", node_id=team, parent_id=None, kind="team", name=team, actor="t")
        await config_svc.patch_config(s, settings=settings, org_id="acme", node_id="payments", actor="t", patch={
            "slack": {"default_channel": "C0SHARED"}, "integrations": {"slack": {"bot_token": "xoxb-payments"}}})
        await s.commit()
    recorder = SlackRecorder()
    await recorder.start()
    try:
        notes = Notes()
        ctx = SimpleNamespace(sessions=sessions, writer=notes, slack_api_url=recorder.url, http_session=None,
                              public_url="")

        async def post_alert_run() -> Any:
            alert = Trigger(source="pagerduty", delivery_id=secrets.token_hex(4), event_kind="incident.triggered",
                            title="checkout 500s", is_alert=True)
            async with sessions() as s:
                run = await store.create_run(s, org_id="acme", team_id="payments", trigger=alert)
                doc = await config_svc.get_effective_config(s, org_id="acme", node_id="payments",
                                                            reveal_secrets=True, settings=settings)
                await s.commit()
            async with AsyncExitStack() as scope:
                return await _post_first(ctx, run, TeamConfig(doc, org_id="acme", team_id="payments"),
                                         LiveRun(run.id), scope)

        assert await post_alert_run() is not None                   # nobody claims it: the team's default
        assert [c.args["channel"] for c in recorder.calls_to("chat.postMessage")] == ["C0SHARED"]
        async with sessions() as s:                                  # a sibling team claims the channel
            await config_svc.patch_config(s, settings=settings, org_id="acme", node_id="search", actor="t",
                                          patch={"routing": {"slack_channel_ids": ["C0SHARED"]}})
            await s.commit()
        assert await post_alert_run() is None
        assert len(recorder.calls_to("chat.postMessage")) == 1       # nothing more posted there
        assert notes.events[-1][1:] == ("note", {"slack": "skipped", "reason": "channel_not_claimed"})
    finally:
        await recorder.stop()
        await engine.dispose()
