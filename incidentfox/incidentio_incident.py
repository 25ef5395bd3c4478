"""What an incident.io incident (the API's ``IncidentV2``) says about whose it is: its routing identifiers.

One reading for both places that need it: the gateway's incident.io parser (a webhook's incident
routes the delivery, ``serve_apps.webhooks.incidentio``) and the answer-back ownership check (the
incident read back with ``GET /v2/incidents/{id}`` must carry an identifier the run's team claims,
``actors.answerback.incidentio``). The webhook's ``incident`` object and the API's ``incident`` have
the same shape (``slack_channel_id``, ``custom_field_entries[].custom_field.name`` and
``.values[].value_catalog_entry`` / ``value_option`` / ``value_text``).

* ``slack_channel_id`` → ``slack_channel_id``;
* a custom field named ``Service``/``Services`` → ``service`` (the catalog entry's name, lowercased);
* one named ``Team``/``Teams``/``Affected Team(s)`` → ``incidentio_team_id`` (the catalog entry's id,
  else the option's value, else the text).

Pure: no I/O; anything of the wrong type reads as absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SERVICE_FIELDS = frozenset({"service", "services"})
TEAM_FIELDS = frozenset({"team", "teams", "affected team", "affected teams"})


def _obj(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, dict) else {}


def _arr(data: Any, key: str) -> list[Any]:
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, list) else []


def _s(data: Any, key: str) -> str:
    value = data.get(key) if isinstance(data, Mapping) else None
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def field_values(incident: Mapping[str, Any], names: frozenset[str], *, catalog: str) -> list[str]:
    """Values of the first custom field whose name is in ``names`` (case-insensitive); a catalog
    entry contributes its ``catalog`` attribute (``"name"`` or ``"id"``)."""
    for entry in _arr(incident, "custom_field_entries"):
        if _s(_obj(entry, "custom_field"), "name").lower() not in names:
            continue
        values: list[str] = []
        for value in _arr(entry, "values"):
            picked = (_s(_obj(value, "value_catalog_entry"), catalog) or _s(_obj(value, "value_option"), "value")
                      or _s(value, "value_text"))
            if picked:
                values.append(picked)
        return values
    return []


@dataclass(frozen=True)
class IncidentIdentifiers:
    """An incident's routing identifiers (each possibly empty)."""

    slack_channel_id: str
    services: tuple[str, ...]     # lowercased, as routing claims of kind ``service`` are stored
    teams: tuple[str, ...]        # as given (incident.io ids are case-sensitive)


def incident_identifiers(incident: Mapping[str, Any]) -> IncidentIdentifiers:
    return IncidentIdentifiers(
        slack_channel_id=_s(incident, "slack_channel_id"),
        services=tuple(v.lower() for v in field_values(incident, SERVICE_FIELDS, catalog="name")),
        teams=tuple(field_values(incident, TEAM_FIELDS, catalog="id")),
    )


def claimed_by(ids: IncidentIdentifiers, routing: Mapping[str, Any]) -> str | None:
    """The ``routing.<key>`` through which a team with these ``routing`` claims owns the incident
    (``incidentio_team_ids``, ``services`` or ``slack_channel_ids``), or None when it claims none of
    the incident's identifiers."""
    def claims(key: str, *, lower: bool = False) -> set[str]:
        values = routing.get(key)
        if not isinstance(values, list):
            return set()
        return {v.strip().lower() if lower else v.strip() for v in values if isinstance(v, str) and v.strip()}

    if set(ids.teams) & claims("incidentio_team_ids"):
        return "incidentio_team_ids"
    if set(ids.services) & claims("services", lower=True):
        return "services"
    if ids.slack_channel_id and ids.slack_channel_id in claims("slack_channel_ids"):
        return "slack_channel_ids"
    return None


__all__ = ["SERVICE_FIELDS", "TEAM_FIELDS", "IncidentIdentifiers", "claimed_by", "field_values",
           "incident_identifiers"]
