"""Answer on incident.io: the RCA as an incident update.

incident.io API reference, "Incident Updates V2 · Create": ``POST /v2/incident_updates`` with
``{"incident_id", "message" (Markdown), "idempotency_key"}``, bearer API key; answers 201
``{"incident_update": {"id", …}}``. The idempotency key is ``incidentfox:<run id>``: "retrying with
the same key returns the update the first request created, rather than sharing a second one", so
this destination needs no lookup of its own.

Config (``integrations.incidentio``, :class:`config_service.IncidentIoBlock`): ``answer_back``,
``api_key``, ``api_url``.
"""

from __future__ import annotations

from actors.answerback.http import Outbound, json_of, send
from actors.answerback.markdown import clip
from actors.answerback.write import Write, nothing_found, require
from config_service import IncidentIoBlock
from incidentfox.contracts import AnswerTarget

DEFAULT_API = "https://api.incident.io"
MESSAGE_MAX = 10_000
SERVICE = "incidentio"


def idempotency_key(run_id: str) -> str:
    return f"incidentfox:{run_id}"


def writes(target: AnswerTarget, block: IncidentIoBlock, *, out: Outbound, run_id: str, text: str) -> list[Write]:
    key = require(block.api_key, "integrations.incidentio.api_key", "an API key posts the incident update")
    incident = require(target.incident_id, "the delivery's incident id", "nothing to answer")
    api = (block.api_url or DEFAULT_API).rstrip("/")

    async def post() -> str:
        resp = await send(out, "POST", f"{api}/v2/incident_updates", service=SERVICE,
                          headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
                          json_body={"incident_id": incident, "message": clip(text, MESSAGE_MAX),
                                     "idempotency_key": idempotency_key(run_id)})
        return str(((json_of(resp, service=SERVICE) or {}).get("incident_update") or {}).get("id", ""))

    return [Write("incidentio.update", post=post, find=nothing_found)]


__all__ = ["idempotency_key", "writes"]
