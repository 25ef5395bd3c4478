"""A multi-node Ray cluster on one machine shaped like the KubeRay one, for placement tests.

``LocalCluster`` starts (through ``ray.cluster_utils.Cluster``) a head that offers no CPU, shared
workers carrying ``shared`` and ``incidentfox.ai/pool=shared``, and dedicated nodes carrying a team's
resource, CPU 0 and the dedicated labels: the same resources and labels the manifests and the
provisioner give the real groups. The head listens on a free port, never Redis's 6379.

``python -m cluster.localsim probe`` runs the placement scenario in its own process (a test needing
its own cluster shape must not share the test session's Ray) and prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from cluster.placement import POOL_LABEL, SHARED_LABELS, UNITS_PER_NODE, dedicated_labels, team_resource
from incidentfox.ports import free_port


class LocalCluster:
    """Head + shared workers + per-team dedicated nodes, all on this host."""

    def __init__(self) -> None:
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(initialize_head=True, head_node_args={
            "gcs_server_port": free_port(), "num_cpus": 0, "include_dashboard": False,
            "labels": {POOL_LABEL: "head"}})
        self.nodes: dict[str, Any] = {}

    @property
    def address(self) -> str:
        return self.cluster.address

    def add_shared(self, name: str, *, num_cpus: int = 1) -> Any:
        node = self.cluster.add_node(num_cpus=num_cpus, resources={"shared": UNITS_PER_NODE},
                                     labels=dict(SHARED_LABELS))
        self.nodes[name] = node
        return node

    def add_dedicated(self, name: str, *, org: str, team: str) -> Any:
        node = self.cluster.add_node(num_cpus=0, resources={team_resource(org, team): UNITS_PER_NODE},
                                     labels=dedicated_labels(org, team))
        self.nodes[name] = node
        return node

    def remove(self, name: str) -> None:
        self.cluster.remove_node(self.nodes.pop(name))

    def node_id(self, name: str) -> str:
        return self.nodes[name].node_id

    def shutdown(self) -> None:
        self.cluster.shutdown()


def _wait_until(predicate: Any, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def probe() -> dict[str, Any]:
    """The placement scenario; returns where everything ran (node names) and what failed how."""
    import ray

    from actors.engine.placement import PlacementUnavailable, check_available, scheduling_options

    dedicated_cfg = {"deployment": {"mode": "dedicated"}}
    lc = LocalCluster()
    lc.add_shared("shared-1")
    lc.add_dedicated("team-a-1", org="acme", team="a")
    try:
        ray.init(address=lc.address, log_to_driver=False, configure_logging=False)
        names = {lc.node_id(n): n for n in lc.nodes}

        @ray.remote(num_cpus=0)
        class Where:
            def node(self) -> str:
                return ray.get_runtime_context().get_node_id()

        @ray.remote
        def where() -> str:
            return ray.get_runtime_context().get_node_id()

        team_a = scheduling_options(dedicated_cfg, org_id="acme", team_id="a")
        team_b = scheduling_options({}, org_id="acme", team_id="b")
        serve_like = {"num_cpus": 0, "label_selector": {POOL_LABEL: "!in(dedicated,head)"}}

        def place(options: dict[str, Any], n: int) -> tuple[list[Any], list[str]]:
            actors = [Where.options(**options).remote() for _ in range(n)]
            return actors, [names.get(x, x) for x in ray.get([a.node.remote() for a in actors], timeout=60)]

        a_actors, a_nodes = place(team_a, 6)
        result: dict[str, Any] = {
            "team_a_actors": a_nodes,
            "team_b_actors": place(team_b, 6)[1],
            "serve_replicas": place(serve_like, 4)[1],
            # Team work on a dedicated group is I/O work with num_cpus=0 (its nodes offer CPU 0).
            "team_a_tasks": [names.get(x, x) for x in ray.get(
                [where.options(num_cpus=0, **team_a).remote() for _ in range(6)], timeout=60)],
            "plain_cpu_tasks": [names.get(x, x) for x in ray.get(
                [where.options(num_cpus=1).remote() for _ in range(4)], timeout=60)],
        }
        # A team-A task that also asks for CPU fits nowhere: it waits instead of running on shared.
        ready, _ = ray.wait([where.options(num_cpus=1, **team_a).remote()], timeout=3)
        result["team_a_cpu_task"] = "placed" if ready else "waiting"

        # Team A's node goes away: its running actors die; new work waits rather than spilling.
        key = next(iter(team_a["resources"]))
        lc.remove("team-a-1")
        _wait_until(lambda: ray.cluster_resources().get(key, 0) == 0, timeout=60,
                    what="the removed node's resources to disappear")
        try:
            ray.get(a_actors[0].node.remote(), timeout=60)
            result["running_actor_after_removal"] = "answered"
        except ray.exceptions.RayActorError as exc:
            result["running_actor_after_removal"] = type(exc).__name__
        try:
            check_available(key, ray.cluster_resources())
            result["unavailable_reason"] = None
        except PlacementUnavailable as exc:
            result["unavailable_reason"] = str(exc)
        waiting = Where.options(**team_a).remote()
        pending_ref = waiting.node.remote()
        ready, _ = ray.wait([pending_ref], timeout=5)
        result["new_team_a_work_while_no_node"] = "placed" if ready else "waiting"

        # A replacement node of the team's group arrives (the autoscaler's job in KubeRay).
        lc.add_dedicated("team-a-2", org="acme", team="a")
        names[lc.node_id("team-a-2")] = "team-a-2"
        result["waiting_work_placed_on"] = names.get(ray.get(pending_ref, timeout=60))
        return result
    finally:
        ray.shutdown()
        lc.shutdown()


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] != ["probe"]:
        sys.exit("usage: python -m cluster.localsim probe")
    print(json.dumps(probe()))
