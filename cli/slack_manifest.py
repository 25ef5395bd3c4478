"""The Slack app manifest and the per-org webhook URLs of an install (pure functions; no I/O).

The bot scopes are exactly what the code calls (keep in step when a Slack call is added):

* ``chat:write``: ``chat.postMessage`` / ``chat.update`` (actors/slack, the report jobs, tool
  executor, a run's answers in its thread) and ``chat.postEphemeral`` (approvals, sandbox dispatch,
  thread replies from non-responders);
* ``files:write``: ``files.upload`` v2 (the health report's chart, actors/scheduler/jobs.py);
* ``usergroups:read``: ``usergroups.users.list`` (approver, responder and sandbox-user groups);
* ``channels:history``: ``conversations.replies`` (the Slack history tool) and the
  ``message.channels`` event (replies in an investigation's thread, docs/slack.md);
* ``app_mentions:read``: the ``app_mention`` event; ``commands``: the ``/incidentfox`` command.
"""

from __future__ import annotations

from typing import Any

BOT_SCOPES = ("app_mentions:read", "channels:history", "chat:write", "commands", "files:write", "usergroups:read")
BOT_EVENTS = ("app_mention", "message.channels")
SLASH_COMMAND = "/incidentfox"


def webhook_urls(public_url: str, org: str, team: str | None = None) -> dict[str, str]:
    """``{endpoint: URL}`` for every gateway endpoint (``slack/events``, ``github``, …), scoped to
    ``org`` (and ``team``): the URLs that verify with that org's (team's) own secrets."""
    from serve_apps.gateway import ENDPOINTS

    suffix = f"/o/{org}" + (f"/t/{team}" if team else "")
    base = public_url.rstrip("/")
    return {endpoint.strip("/"): f"{base}/webhooks{endpoint}{suffix}" for endpoint in ENDPOINTS}


def slack_manifest(public_url: str, org: str, *, app_name: str = "IncidentFox") -> dict[str, Any]:
    """A Slack app manifest whose request URLs are ``org``'s per-org Slack URLs on this install."""
    urls = webhook_urls(public_url, org)
    return {
        "display_information": {"name": app_name, "description": "AI SRE: investigates incidents and alerts"},
        "features": {
            "bot_user": {"display_name": app_name, "always_online": True},
            "slash_commands": [{
                "command": SLASH_COMMAND, "url": urls["slack/commands"], "should_escape": False,
                "description": "Investigate an incident", "usage_hint": "<question> | sandbox <question>",
            }],
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": {"request_url": urls["slack/events"], "bot_events": list(BOT_EVENTS)},
            "interactivity": {"is_enabled": True, "request_url": urls["slack/interactions"]},
            "org_deploy_enabled": False,
            "socket_mode_enabled": False,
            "token_rotation_enabled": False,
        },
    }
