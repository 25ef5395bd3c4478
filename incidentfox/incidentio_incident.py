"""What an incident.io incident (the API's ``IncidentV2``) says about whose it is: its routing identifiers.

One reading for both places that need it: the gateway's incident.io parser (a webhook's incident
routes the delivery, ``serve_apps.webhooks.incidentio``) and the answer-back ownership check (the
incident read back with ``GET /v2/incidents/{id}`` must be the run's team's as the router would
decide, :func:`owning_claim`; ``actors.answerback.incidentio``). The webhook's ``incident`` object and the API's ``incident`` have
the same shape (``slack_channel_id``, ``custom_field_entries[].custom_field.name`` and
``.values[].value_catalog_entry`` / ``value_option`` / ``value_text``).

* ``slack_channel_id`` → ``slack_channel_id``;
* a custom field named ``Service``/``Services`` → ``service`` (the catalog entry's name, lowercased);
* one named ``Team``/``Teams``/``Affected Team(s)`` → ``incidentio_team_id`` (the catalog entry's id,
  else the option's value, else the text).

Pure: no I/O; anything of the wrong type reads as absent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
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


# The router's order over the kinds an incident carries (config_service's LOOKUP_PRIORITY:
# slack_channel_id > pagerduty_service_id > incidentio_team_id > ... > service): routing key, kind.
_ORDER = (("slack_channel_ids", "slack_channel_id"), ("incidentio_team_ids", "incidentio_team_id"),
          ("services", "service"))


def identifier_pairs(ids: IncidentIdentifiers) -> list[tuple[str, str]]:
    """The incident's identifiers as routing claims ``(kind, value)``, in the router's order."""
    values = {"slack_channel_id": (ids.slack_channel_id,) if ids.slack_channel_id else (),
              "incidentio_team_id": ids.teams, "service": ids.services}
    return [(kind, v) for _, kind in _ORDER for v in values[kind]]


def owning_claim(ids: IncidentIdentifiers, routing: Mapping[str, Any], *,
                 foreign: Collection[tuple[str, str]] = ()) -> str | None:
    """The ``routing.<key>`` through which a team with these ``routing`` claims owns the incident, or
    None. As the router decides: the identifiers are walked in its order (Slack channel, Team field,
    Service field) and the first kind with a claimed value decides, this team's (its key) or another
    team's (``foreign``: the ``(kind, value)`` claims other teams hold; None)."""
    pairs = identifier_pairs(ids)
    for key, kind in _ORDER:
        values = {v for k, v in pairs if k == kind}
        if values & _claims(routing, key, lower=kind == "service"):
            return key
        if any((kind, v) in foreign for v in values):
            return None
    return None


def _claims(routing: Mapping[str, Any], key: str, *, lower: bool) -> set[str]:
    values = routing.get(key)
    if not isinstance(values, list):
        return set()
    return {v.strip().lower() if lower else v.strip() for v in values if isinstance(v, str) and v.strip()}


__all__ = ["SERVICE_FIELDS", "TEAM_FIELDS", "IncidentIdentifiers", "field_values", "identifier_pairs",
           "incident_identifiers", "owning_claim"]
