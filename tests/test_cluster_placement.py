"""Names, resources and Ray options of the placement contract (cluster/placement.py)."""

from __future__ import annotations

import pytest

from cluster.placement import (
    MAX_BASE_LEN,
    DeploymentConfig,
    PlacementError,
    dedicated_labels,
    group_base_name,
    group_name,
    placement_options,
    team_resource,
)

DEDICATED = DeploymentConfig.model_validate({"mode": "dedicated", "resources": {
    "cpu": 2, "memory": "4Gi", "min_workers": 0, "max_workers": 2}})


def test_names_and_resources() -> None:
    assert group_name("acme", "payments", 1) == "team-acme-payments"
    assert group_name("acme", "payments", 3) == "team-acme-payments-v3"
    assert team_resource("acme", "payments") == "team_acme_payments"
    assert dedicated_labels("acme", "payments") == {
        "incidentfox.ai/pool": "dedicated", "incidentfox.ai/org": "acme",
        "incidentfox.ai/team": "payments"}
    assert DEDICATED.resources is not None and DEDICATED.resources.cpu == "2"


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


def test_placement_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INCIDENTFOX_PLACEMENT", raising=False)
    shared = DeploymentConfig.from_effective({})
    assert placement_options("acme", "web", shared) == {"resources": {"shared": 1}}
    assert placement_options("acme", "payments", DEDICATED) == {
        "num_cpus": 0, "resources": {"team_acme_payments": 1}}
    assert placement_options("acme", "payments", DEDICATED, override="shared") == {
        "resources": {"shared": 1}}
    monkeypatch.setenv("INCIDENTFOX_PLACEMENT", "shared")
    assert placement_options("acme", "payments", DEDICATED) == {"resources": {"shared": 1}}
