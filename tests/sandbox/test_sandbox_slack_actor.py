"""The production hand-off on Ray: the gateway records a Slack sandbox command and its
RaySandboxRunner hands the delivery to the ``sandbox-slack`` actor (created on first use), which
claims it, reads the team's config from the database, posts in Slack through the Web API and records
the outcome on the delivery. The team has no ``llm`` section, so the open stops at the notice in the
thread: no sandbox host (nor bubblewrap) is needed."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from gateway_kit import (
    DEFAULT_ROUTES,
    StaticRoutes,
    client_for,
    make_core,
    seed_tenants,
    settings_for,
    signed,
)
from sqlalchemy import select

from actors.sandbox.slack_actor import SLACK_ACTOR_NAME, RaySandboxRunner, get_or_create_slack_actor
from cli.demo.slack_recorder import SlackRecorder
from incidentfox.runs.models import Delivery
from tests.sandbox_helpers import patch_team

pytestmark = pytest.mark.ray


def two_posts(calls: list) -> list | None:
    posts = [c for c in calls if c.method == "chat.postMessage"]
    return posts[:2] if len(posts) >= 2 else None


async def test_the_gateway_hands_a_sandbox_command_to_the_sandbox_slack_actor(
        ray_session: None, sqlite_url: str, tmp_path: Path) -> None:
    import ray

    recorder = SlackRecorder()
    await recorder.start()
    settings = settings_for(sqlite_url, tmp_path).model_copy(update={"slack_api_url": recorder.url})
    await seed_tenants(sqlite_url, settings)
    await patch_team(sqlite_url, settings, "acme", "payments", {"integrations": {"slack": {"bot_token": "xoxb-pay"}},
                                                              "access": {"sandbox_users": ["W111"]}})
    namespace = f"sbx-slack-{uuid.uuid4().hex[:8]}"
    # The actor is started first: on a loaded machine a new Ray worker can take longer to come up than
    # the hand-off's own call timeout (a slow start is the sweep's to repair, another test's subject).
    await asyncio.wait_for(get_or_create_slack_actor(settings, namespace=namespace).__ray_ready__.remote(), 300)
    core = make_core(sqlite_url, routes=StaticRoutes(DEFAULT_ROUTES), sandbox=RaySandboxRunner(settings,
                                                                                               namespace=namespace))
    try:
        body = urlencode({"token": "x", "team_id": "T111", "channel_id": "C111", "user_id": "W111",
                          "command": "/incidentfox", "text": "sandbox list files", "trigger_id": "9.9.ray",
                          "response_url": "https://hooks.slack.com/commands/T111/1/x"}).encode()
        async with client_for(core) as c:
            r = await c.post("/slack/commands", content=body, headers=signed("slack", body))
        assert r.status_code == 200 and r.json()["outcome"] == "sandbox_opened"
        await core.drain()   # handed off: the actor claimed the delivery before answering

        root, notice = await recorder.wait_for(two_posts)
        assert root.args["channel"] == "C111" and "list files" in root.args["text"] and root.token == "xoxb-pay"
        assert notice.args["thread_ts"] == root.response["ts"] and "`llm`" in notice.args["text"]
        async with asyncio.timeout(30):
            while True:   # the notice is posted before the delivery's row records it
                async with core.sessions() as s:
                    row = (await s.scalars(select(Delivery))).one()
                if row.dispatch_error:
                    break
                await asyncio.sleep(0.05)
        assert row.dispatched_at is not None and "llm" in row.dispatch_error
    finally:
        try:
            ray.kill(ray.get_actor(SLACK_ACTOR_NAME, namespace=namespace))
        except ValueError:
            pass
        await core.engine.dispose()
        await recorder.stop()
