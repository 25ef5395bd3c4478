"""Names, resources and labels of the placement contract (cluster/placement.py)."""

from __future__ import annotations

import pytest

from actors.engine.placement import scheduling_options
from cluster.placement import (
    MAX_BASE_LEN,
    DeploymentConfig,
    PlacementError,
    dedicated_labels,
    group_base_name,
    group_name,
    team_resource,
)

DEDICATED = {"mode": "dedicated", "resources": {"cpu": 2, "memory": "4Gi", "min_workers": 0,
                                                 "max_workers": 2}}


def test_names_and_resources() -> None:
    assert group_name("acme", "payments", 1) == "team-acme-payments"
    assert group_name("acme", "payments", 3) == "team-acme-payments-v3"
    assert team_resource("acme", "payments") == "team_acme_payments"
    assert dedicated_labels("acme", "payments") == {
        "incidentfox.ai/pool": "dedicated", "incidentfox.ai/org": "acme",
        "incidentfox.ai/team": "payments"}
    cfg = DeploymentConfig.from_effective({"deployment": DEDICATED})
    assert cfg.resources is not None and cfg.resources.cpu == "2"
    assert DeploymentConfig.from_effective({}).mode == "shared"


def test_resource_names_are_unambiguous_and_match_the_engine() -> None:
    assert team_resource("a-b", "c") != team_resource("a", "b-c")
    for org, team in [("acme", "payments"), ("acme-eu", "sre-core"), ("o1", "t-2")]:
        # The group carries exactly the resource the engine's actors request.
        engine = scheduling_options({"deployment": DEDICATED}, org_id=org, team_id=team)
        assert list(engine["resources"]) == [team_resource(org, team)]
    assert list(scheduling_options({}, org_id="acme", team_id="web")["resources"]) == ["shared"]


def test_long_names_are_cut_with_a_stable_distinct_hash() -> None:
    org, team = "o" * 63, "t" * 63
    name = group_base_name(org, team)
    assert len(name) == MAX_BASE_LEN and name == group_base_name(org, team)
    assert name[-9] == "-" and name != group_base_name(org, "t" * 62)
    assert not name.startswith("-") and len(group_name(org, team, 999)) <= 63


@pytest.mark.parametrize("bad", ["Acme", "ac_me", "-acme", "a.b", "", "x" * 64])
def test_ids_must_be_dns_labels(bad: str) -> None:
    with pytest.raises(PlacementError):
        team_resource(bad, "payments")
    with pytest.raises(PlacementError):
        group_name("acme", bad, 1)
