"""The cluster's part of the one Serve config: placement and autoscaling entries that KubeRay deploys.

Serve refuses a config whose ``deployments:`` entry names a deployment the application does not
have, so each entry is checked against what the builders really build. Every shared Serve replica
must carry the label selector that keeps it off dedicated team workers, and the autoscaling values
must be the ones docs/operations.md explains.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.serve import Application

from cluster.render import render
from serve_apps import builder

ROOT = Path(__file__).resolve().parents[2]
SHARED_SELECTOR = {"incidentfox.ai/pool": "!in(dedicated,head)"}


def deployment_names(app: Application) -> set[str]:
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Application):
            bound = node._bound_deployment
            names.add(bound.name)
            for arg in [*bound.init_args, *bound.init_kwargs.values()]:
                walk(arg)

    walk(app)
    return names


def rendered_serve_config() -> dict[str, Any]:
    (rs,) = [o for o in render(overlay="eks") if o["kind"] == "RayService"]
    return yaml.safe_load(rs["spec"]["serveConfigV2"])


def built_apps() -> list[tuple[dict[str, Any], set[str]]]:
    out = []
    for app in rendered_serve_config()["applications"]:
        try:
            out.append((app, deployment_names(builder.build_application(app))))
        except builder.AppUnavailable:
            continue
    return out


def test_deployment_entries_name_real_deployments() -> None:
    for app, names in built_apps():
        entries = [d["name"] for d in app.get("deployments", [])]
        assert set(entries) <= names, (app["name"], entries, names)


def test_every_shared_replica_stays_off_dedicated_workers() -> None:
    for app, names in built_apps():
        entries = {d["name"]: d for d in app.get("deployments", [])}
        for name in names:
            assert name in entries, (
                f"{app['name']}/{name}: add a deployments entry with "
                "`ray_actor_options: *shared_placement` (serve_apps/serve_config.yaml)")
            options = entries[name]["ray_actor_options"]
            assert options["label_selector"] == SHARED_SELECTOR
            assert options["num_cpus"] == 0


def _doc_rows() -> dict[str, list[str]]:
    text = (ROOT / "docs" / "operations.md").read_text()
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\|\s*`(Gateway|AgentAPI)`\s*\|(.+)\|\s*$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows


@pytest.mark.parametrize("deployment", ["Gateway", "AgentAPI"])
def test_autoscaling_values_are_the_documented_ones(deployment: str) -> None:
    (entry,) = [d for app in rendered_serve_config()["applications"]
                for d in app.get("deployments", []) if d["name"] == deployment]
    auto = entry["autoscaling_config"]
    row = _doc_rows()[deployment]
    documented = [int(c) for c in row[:5]]
    assert documented == [auto["min_replicas"], auto["max_replicas"], auto["target_ongoing_requests"],
                          auto["upscale_delay_s"], auto["downscale_delay_s"]]
    assert auto["min_replicas"] <= auto["max_replicas"]
