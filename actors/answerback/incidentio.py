"""Answer on incident.io: the RCA as an incident update, on an incident of the run's team only.

incident.io API reference, "Incident Updates V2 · Create": ``POST /v2/incident_updates`` with
``{"incident_id", "message" (Markdown), "idempotency_key"}``, bearer API key; answers 201
``{"incident_update": {"id", …}}``. The idempotency key is ``incidentfox:<run id>``: "retrying with
the same key returns the update the first request created, rather than sharing a second one", so
this destination needs no lookup of its own.

Ownership: an API key may be shared by an org's teams, so before writing, the incident is read
("Incidents V2 · Show", ``GET /v2/incidents/{id}`` → ``{"incident": IncidentV2}``) and must be the
run's team's as the router would decide (:func:`incidentfox.incidentio_incident.owning_claim`): of
its Slack channel (``routing.slack_channel_ids``), Team field (``routing.incidentio_team_ids``) and
Service field (``routing.services``), in that order, the first one claimed by any team must be
claimed by this one (``foreign_claims`` says which are other teams'); otherwise ``bad_target`` and
nothing is written.
The read goes through the same retries as the write (a 429 waits out ``Retry-After``); an incident
that cannot be read is not written to either (the read's reason: ``not_found``, ``unauthorized`` …).

Config (``integrations.incidentio``, :class:`config_service.IncidentIoBlock`): ``answer_back``,
``api_key``, ``api_url``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

from actors.answerback.http import AnswerError, Outbound, json_of, send
from actors.answerback.markdown import clip
from actors.answerback.write import Write, nothing_found, require
from config_service import IncidentIoBlock
from incidentfox.contracts import AnswerTarget
from incidentfox.incidentio_incident import identifier_pairs, incident_identifiers, owning_claim

DEFAULT_API = "https://api.incident.io"
MESSAGE_MAX = 10_000
SERVICE = "incidentio"
CLAIM_KEYS = "routing.incidentio_team_ids, routing.services or routing.slack_channel_ids"


def idempotency_key(run_id: str) -> str:
    return f"incidentfox:{run_id}"


ForeignClaims = Callable[[set[tuple[str, str]]], Awaitable[set[tuple[str, str]]]]


def writes(target: AnswerTarget, block: IncidentIoBlock, *, out: Outbound, run_id: str, text: str,
           routing: Mapping[str, Any] | None = None, foreign_claims: ForeignClaims | None = None) -> list[Write]:
    """The incident update. ``routing``: the team's routing claims; when given (a run always gives
    them), the incident is read first and must be the team's (see the module docstring).
    ``foreign_claims``: which of some ``(kind, value)`` claims other teams hold (None: none)."""
    key = require(block.api_key, "integrations.incidentio.api_key", "an API key posts the incident update")
    incident = require(target.incident_id, "the delivery's incident id", "nothing to answer")
    api = (block.api_url or DEFAULT_API).rstrip("/")
    hdrs = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    checked: list[bool] = []

    async def own_incident() -> None:
        if routing is None or checked:
            return
        try:
            resp = await send(out, "GET", f"{api}/v2/incidents/{quote(incident, safe='')}", service=SERVICE,
                              headers=hdrs)
        except AnswerError as exc:   # the same reason (a 429 stays transient); the message says what for
            raise AnswerError(exc.reason, f"reading incident {incident} to check it is this team's: "
                                          f"{exc.message}; nothing is written there",
                              transient=exc.transient, retry_after=exc.retry_after) from None
        found = (json_of(resp, service=SERVICE) or {}).get("incident")
        if not isinstance(found, dict) or str(found.get("id") or "") != incident:
            raise AnswerError("upstream_error", f"incident.io answered no incident {incident}; nothing is written")
        ids = incident_identifiers(found)
        foreign = await foreign_claims(set(identifier_pairs(ids))) if foreign_claims is not None else set()
        if owning_claim(ids, routing, foreign=foreign) is None:
            raise AnswerError("bad_target", f"incident {incident} is not this team's: its Slack channel, Team or "
                                            f"Service is not claimed by it, or first by another team ({CLAIM_KEYS}); "
                                            "nothing is written there")
        checked.append(True)

    async def post() -> str:
        await own_incident()
        resp = await send(out, "POST", f"{api}/v2/incident_updates", service=SERVICE, headers=hdrs,
                          json_body={"incident_id": incident, "message": clip(text, MESSAGE_MAX),
                                     "idempotency_key": idempotency_key(run_id)})
        return str(((json_of(resp, service=SERVICE) or {}).get("incident_update") or {}).get("id", ""))

    return [Write("incidentio.update", post=post, find=nothing_found)]


__all__ = ["ForeignClaims", "idempotency_key", "writes"]
