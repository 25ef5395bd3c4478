"""Regenerate the committed KubeRay schema subsets from the upstream CRDs.

    python -m cluster.crd_schemas.extract [CRD_DIR]   # default: ../shared/kuberay-crds

For RayService, RayCluster, RayJob and RayCronJob it takes the served ``ray.io/v1`` version's
``openAPIV3Schema`` and makes it small enough to commit:

- drops every ``description``;
- replaces each embedded PodTemplateSpec (group ``template``, ``submitterPodTemplate``) and Service
  (``headService``, ``serveService``) with an open object marked ``x-incidentfox-validate-as``;
  cluster/validate.py checks those parts against Kubernetes' own schemas (kubernetes-validate), which
  is what the CRD embeds anyway.

Everything else (field names, types, enums, required, patterns) is kept as upstream wrote it. The
provenance (upstream commit) is recorded in each file's ``x-incidentfox-source``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_CRDS = HERE.parents[2] / "shared" / "kuberay-crds"
KINDS = {"rayservices": "RayService", "rayclusters": "RayCluster", "rayjobs": "RayJob",
         "raycronjobs": "RayCronJob"}


def _embedded_kind(node: dict[str, Any]) -> str | None:
    props = node.get("properties")
    if not isinstance(props, dict):
        return None
    spec = (props.get("spec") or {}).get("properties") or {}
    if set(props) == {"metadata", "spec"} and "containers" in spec:
        return "PodTemplateSpec"
    if {"metadata", "spec"} <= set(props) and "ports" in spec and "selector" in spec:
        return "Service"
    return None


def reduce(node: Any) -> Any:
    """Return ``node`` without descriptions and with embedded core objects replaced by markers."""
    if isinstance(node, dict):
        kind = _embedded_kind(node)
        if kind is not None:
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                    "x-incidentfox-validate-as": kind}
        return {k: reduce(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [reduce(v) for v in node]
    return node


def extract(crd_dir: Path, out_dir: Path = HERE) -> list[Path]:
    provenance = (crd_dir / "PROVENANCE.md").read_text() if (crd_dir / "PROVENANCE.md").exists() else ""
    commit = next((w.strip(",.") for w in provenance.split() if len(w.strip(",.")) == 40), "unknown")
    written = []
    for plural, kind in KINDS.items():
        # The CRDs are megabytes of YAML: the C loader parses them in a fraction of the time.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        crd = yaml.load((crd_dir / f"ray.io_{plural}.yaml").read_text(), Loader=loader)
        (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        schema = reduce(version["schema"]["openAPIV3Schema"])
        schema["x-incidentfox-source"] = (f"ray-project/kuberay@{commit} ray-operator/config/crd/"
                                          f"bases/ray.io_{plural}.yaml, version v1 (Apache-2.0)")
        path = out_dir / f"{kind.lower()}.json"
        path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover
    for p in extract(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CRDS):
        print(p, p.stat().st_size)
