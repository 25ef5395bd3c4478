"""Answer on PagerDuty: the RCA as an incident note, then the incident's status where the team
allows it.

PagerDuty REST API v2 (``Authorization: Token token=<key>``, ``Accept:
application/vnd.pagerduty+json;version=2``): ``POST /incidents/{id}/notes`` with ``{"note":
{"content": …}}`` and ``PUT /incidents/{id}`` with ``{"incident": {"type": "incident_reference",
"status": …}}`` both require a ``From`` header, the email of a valid PagerDuty user
(``integrations.pagerduty.from_email``). An earlier note is found with ``GET /incidents/{id}/notes``
by the run's marker line; the status change is skipped when the incident already has that status
(or is resolved).

Config (``integrations.pagerduty``, :class:`config_service.PagerDutyBlock`): ``answer_back``,
``token``, ``from_email``, ``set_status`` (``acknowledged`` | ``resolved``; unset: leave it),
``api_url``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import quote

from actors.answerback.http import AnswerError, Outbound, json_of, send
from actors.answerback.markdown import clip, marker
from actors.answerback.write import Write, require
from config_service import PagerDutyBlock
from incidentfox.contracts import AnswerTarget

DEFAULT_API = "https://api.pagerduty.com"
NOTE_MAX = 24_000      # well below PagerDuty's note size limit
SERVICE = "pagerduty"


def writes(target: AnswerTarget, block: PagerDutyBlock, *, out: Outbound, run_id: str, text: str,
           claimed: Collection[str] | None = None) -> list[Write]:
    """The note, and the status change when ``set_status`` is set (in that order).

    ``claimed``: the team's ``routing.pagerduty_service_ids``. When given, the incident is read first
    and must belong to one of them (``bad_target`` otherwise, nothing written): a REST key shared by
    an org's teams answers a team only on its own services' incidents, whatever a delivery signed
    with that team's secret names."""
    token = require(block.token, "integrations.pagerduty.token", "a REST API key writes the note")
    sender = require(block.from_email, "integrations.pagerduty.from_email",
                     "PagerDuty requires a From user's email to write notes")
    incident = quote(require(target.incident_id, "the delivery's incident id", "nothing to answer"), safe="")
    api = (block.api_url or DEFAULT_API).rstrip("/")
    hdrs = {"Authorization": f"Token token={token}", "Accept": "application/vnd.pagerduty+json;version=2",
            "From": sender}

    async def call(method: str, path: str, body: Any = None) -> Any:
        resp = await send(out, method, f"{api}{path}", service=SERVICE, headers=hdrs, json_body=body)
        return json_of(resp, service=SERVICE)

    checked: list[bool] = []

    async def own_incident() -> None:
        if claimed is None or checked:
            return
        found = ((await call("GET", f"/incidents/{incident}")) or {}).get("incident") or {}
        service = str((found.get("service") or {}).get("id") or "") if isinstance(found, dict) else ""
        if not service or service not in {str(s) for s in claimed}:
            raise AnswerError("bad_target", f"incident {target.incident_id} is not on a service this team claims "
                                            "(routing.pagerduty_service_ids); nothing is written there")
        checked.append(True)

    async def post_note() -> str:
        await own_incident()
        body = await call("POST", f"/incidents/{incident}/notes", {"note": {"content": clip(text, NOTE_MAX)}})
        return str(((body or {}).get("note") or {}).get("id", ""))

    async def find_note() -> str | None:
        await own_incident()
        for note in ((await call("GET", f"/incidents/{incident}/notes")) or {}).get("notes") or []:
            if isinstance(note, dict) and marker(run_id) in str(note.get("content") or ""):
                return str(note.get("id", ""))
        return None

    out_writes = [Write("pagerduty.note", post=post_note, find=find_note)]
    status = block.set_status
    if status is not None:
        async def post_status() -> str:
            await call("PUT", f"/incidents/{incident}",
                       {"incident": {"type": "incident_reference", "status": status}})
            return f"status:{status}"

        async def find_status() -> str | None:
            current = (((await call("GET", f"/incidents/{incident}")) or {}).get("incident") or {}).get("status")
            return f"status:{current}" if current in (status, "resolved") else None

        out_writes.append(Write("pagerduty.status", post=post_status, find=find_status, always_find=True))
    return out_writes


__all__ = ["writes"]
