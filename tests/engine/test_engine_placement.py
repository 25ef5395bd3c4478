"""Placement: every actor running a team's work carries the team's scheduling constraint."""

from __future__ import annotations

import pytest

from actors.engine.placement import (
    RESOURCE_AMOUNT,
    PlacementUnavailable,
    check_available,
    placement_key,
    scheduling_options,
    team_resource,
)
from config_service import InvalidTeamConfig, TeamConfig


def test_shared_and_dedicated_teams_request_different_resources() -> None:
    assert scheduling_options({}) == {"resources": {"shared": RESOURCE_AMOUNT}}
    assert scheduling_options({"deployment": {"mode": "shared"}}, org_id="a", team_id="b") == \
        {"resources": {"shared": RESOURCE_AMOUNT}}
    dedicated = TeamConfig({"deployment": {"mode": "dedicated"}}, org_id="acme", team_id="pay-ments")
    assert placement_key(dedicated) == "team_acme_pay-ments" == team_resource("acme", "pay-ments")
    assert scheduling_options(dedicated) == {"resources": {"team_acme_pay-ments": RESOURCE_AMOUNT}}
    # An unknown mode is refused when written; a document that has one anyway is the reader's typed
    # error (the pool fails the run with it), never a guess at where the team's work may run.
    with pytest.raises(InvalidTeamConfig):
        placement_key({"deployment": {"mode": "weird"}})


def test_missing_resource_is_reported_not_left_pending() -> None:
    check_available("shared", {"CPU": 2.0, "shared": 1000.0})
    with pytest.raises(PlacementUnavailable, match="team_acme_x"):
        check_available("team_acme_x", {"CPU": 2.0, "shared": 1000.0})
