"""An incident.io incident's routing identifiers and whose it is (incidentfox/incidentio_incident.py):
the router's order decides, hostile shapes read as absent and never raise."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from incidentfox.incidentio_incident import identifier_pairs, incident_identifiers, owning_claim


def incident(*, channel: str = "", teams: tuple[str, ...] = (), services: tuple[str, ...] = ()) -> dict:
    entries = []
    if teams:
        entries.append({"custom_field": {"name": "Affected Team"},
                        "values": [{"value_catalog_entry": {"id": t, "name": "x"}} for t in teams]})
    if services:
        entries.append({"custom_field": {"name": "Services"},
                        "values": [{"value_catalog_entry": {"id": "01S", "name": s}} for s in services]})
    return {"id": "01I", "slack_channel_id": channel, "custom_field_entries": entries}


def test_identifiers_in_the_routers_order() -> None:
    ids = incident_identifiers(incident(channel="CINC", teams=("01T",), services=("Checkout", "Cart")))
    assert identifier_pairs(ids) == [("slack_channel_id", "CINC"), ("incidentio_team_id", "01T"),
                                     ("service", "checkout"), ("service", "cart")]


def test_the_first_kind_claimed_by_anyone_decides() -> None:
    ids = incident_identifiers(incident(channel="CINC", teams=("01B",), services=("checkout",)))
    mine = {"services": ["Checkout"], "incidentio_team_ids": ["01A"]}
    assert owning_claim(ids, mine) == "services"                                      # nothing above is claimed
    assert owning_claim(ids, mine, foreign={("incidentio_team_id", "01B")}) is None   # the Team field is theirs
    assert owning_claim(ids, {**mine, "incidentio_team_ids": ["01B"]},
                        foreign={("slack_channel_id", "CINC")}) is None               # the channel is theirs
    assert owning_claim(ids, {"slack_channel_ids": ["CINC"]}, foreign={("incidentio_team_id", "01B")}) \
        == "slack_channel_ids"
    assert owning_claim(ids, {}) is None and owning_claim(incident_identifiers({}), mine) is None


json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)


@given(st.dictionaries(st.sampled_from(["slack_channel_id", "custom_field_entries", "id"]), json),
       st.dictionaries(st.sampled_from(["slack_channel_ids", "incidentio_team_ids", "services"]), json))
def test_hostile_shapes_never_raise(raw: dict, routing: dict) -> None:
    ids = incident_identifiers(raw)
    assert owning_claim(ids, routing) in (None, "slack_channel_ids", "incidentio_team_ids", "services")
