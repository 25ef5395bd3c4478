"""Render the KubeRay manifests for one overlay: ``incidentfox cluster render``.

``render(overlay=...)`` builds ``cluster/overlays/<overlay>`` (cluster/kustomize.py; the same
objects ``kubectl kustomize`` builds, the sandbox namespace's included), then:

1. sets the RayService's ``serveConfigV2`` to the YAML text of ``serve_apps/serve_config.yaml``, the
   same file ``incidentfox up`` deploys (nothing is maintained twice). The base carries the same text
   committed in ``cluster/base/serve-config.generated.yaml`` (:func:`write_serve_config_patch`,
   ``make manifests``), so ``kubectl apply -k`` of an overlay works too. The config must hold no
   environment-specific secrets: credentials reach the pods as env vars from Secrets. A value that
   looks like one (a URL with a password, a non-empty ``*_secret``/``*_token``/``*_password``/
   ``database_url`` key) stops the render;
2. when given the live RayService (``live=``), keeps the cluster's worker groups in their live order,
   with the provisioner's ``team-*`` groups and their ``groups.incidentfox.ai/*`` annotations carried
   over unchanged, and base groups new to the cluster appended at the end; KubeRay then updates the
   running cluster in place. It also copies ``metadata.resourceVersion``, so a server-side apply of the
   result fails with 409 if the provisioner wrote in between;
3. with ``compact=True`` (planned upgrades only: it rolls out a new Ray cluster) drops retired groups
   and groups no longer in the base;

The overlays list ``cluster/sandbox`` (the sandbox namespace, the session pods' token-less service
account, the sandbox actors' Role and RoleBinding, the default-deny NetworkPolicy) beside the base;
neither the overlays nor the sandbox set a ``namespace:`` that would move the other's objects.

``write(objects, out)`` writes one file per object plus a ``kustomization.yaml`` listing them, so
``kubectl apply --server-side --field-manager=incidentfox-render -k OUT`` applies the result.
"""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path
from typing import Any

import yaml

from cluster.groups import ANNOTATION_PREFIX, provisioned_groups, worker_groups
from cluster.kustomize import Obj, build

log = logging.getLogger(__name__)

CLUSTER_DIR = Path(__file__).resolve().parent
REPO_ROOT = CLUSTER_DIR.parent
OVERLAYS = ("eks", "local-kind")
SANDBOX_DIR = CLUSTER_DIR / "sandbox"
DEFAULT_SERVE_CONFIG = REPO_ROOT / "serve_apps" / "serve_config.yaml"
SERVE_CONFIG_PATCH = CLUSTER_DIR / "base" / "serve-config.generated.yaml"
RAYSERVICE_NAME = "incidentfox"
RENDER_FIELD_MANAGER = "incidentfox-render"

_CREDENTIAL_URL = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)
_SECRET_KEY = re.compile(r"(^|_)(secret|token|password|api_key)$|^database_url$", re.IGNORECASE)


class RenderError(ValueError):
    """The overlay, the Serve config or the live object cannot be rendered."""


def _find_secrets(value: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _SECRET_KEY.search(str(key)) and isinstance(sub, str) and sub:
                found.append(where)
            found.extend(_find_secrets(sub, where))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            found.extend(_find_secrets(sub, f"{path}[{i}]"))
    elif isinstance(value, str) and _CREDENTIAL_URL.match(value):
        found.append(path)
    return found


def serve_config_v2(serve_config: Path = DEFAULT_SERVE_CONFIG) -> str:
    """The ``serveConfigV2`` text: the Serve config loaded and dumped as YAML (comments dropped)."""
    try:
        config = yaml.safe_load(Path(serve_config).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RenderError(f"cannot read Serve config {serve_config}: {exc}") from exc
    if not isinstance(config, dict) or not config.get("applications"):
        raise RenderError(f"{serve_config}: not a Serve config with applications")
    leaks = _find_secrets(config)
    if leaks:
        raise RenderError(f"{serve_config}: secret-looking values at {leaks}; pass them as env "
                          "vars from Secrets instead")
    return yaml.dump(config, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False)


class _NoAliasDumper(yaml.SafeDumper):
    """Writes shared values (the config's ``&shared_placement``) out in full: each deployment's
    options read on their own in the RayService, with no ``&id001`` anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def serve_config_patch(serve_config: Path = DEFAULT_SERVE_CONFIG) -> str:
    """The text of ``cluster/base/serve-config.generated.yaml``: a merge patch setting the
    RayService's ``serveConfigV2`` to :func:`serve_config_v2` of ``serve_config``."""
    patch = {"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": RAYSERVICE_NAME},
             "spec": {"serveConfigV2": serve_config_v2(serve_config)}}
    return ("# Generated from serve_apps/serve_config.yaml by `make manifests` "
            "(python -m cluster.render); do not edit.\n"
            "# tests/kuberay/test_cluster_manifests.py fails when this copy is stale.\n" + dump(patch))


def write_serve_config_patch(serve_config: Path = DEFAULT_SERVE_CONFIG,
                             out: Path = SERVE_CONFIG_PATCH) -> bool:
    """Rewrite the committed serveConfigV2 patch; True when its content changed."""
    text = serve_config_patch(serve_config)
    if out.is_file() and out.read_text() == text:
        return False
    out.write_text(text)
    return True


def _rayservice(objects: list[Obj]) -> Obj:
    found = [o for o in objects if o.get("kind") == "RayService"]
    if len(found) != 1:
        raise RenderError(f"expected exactly one RayService, found {len(found)}")
    return found[0]


def carry_live_groups(rendered: Obj, live: Obj, *, compact: bool = False) -> Obj:
    """Return ``rendered`` with the live cluster's worker groups kept (see the module docstring).

    Groups in both: the rendered (base) definition. Provisioned groups: the live definition,
    unchanged. Live groups that are neither (removed from the base): kept with a warning, so the
    cluster is not rolled by accident; ``compact`` drops them and retired provisioned groups.
    """
    out = copy.deepcopy(rendered)
    base = {g["groupName"]: g for g in worker_groups(rendered)}
    records = provisioned_groups(live)
    merged: list[Obj] = []
    dropped: set[str] = set()
    for group in worker_groups(live):
        name = group["groupName"]
        if name in base:
            merged.append(base.pop(name))
        elif name in records:
            if compact and records[name].state == "retired":
                dropped.add(name)
            else:
                merged.append(copy.deepcopy(group))
        elif compact:
            dropped.add(name)
        else:
            log.warning("live worker group %s is in neither the base nor the provisioner's records; "
                        "kept (render with --compact at a planned upgrade to drop it)", name)
            merged.append(copy.deepcopy(group))
    merged.extend(base.values())
    out["spec"]["rayClusterConfig"]["workerGroupSpecs"] = merged

    annotations = out.setdefault("metadata", {}).setdefault("annotations", {})
    live_meta = live.get("metadata") or {}
    for key, value in (live_meta.get("annotations") or {}).items():
        if key.startswith(ANNOTATION_PREFIX) and key[len(ANNOTATION_PREFIX):] not in dropped:
            annotations[key] = value
    if not annotations:
        del out["metadata"]["annotations"]
    if live_meta.get("resourceVersion"):
        out["metadata"]["resourceVersion"] = live_meta["resourceVersion"]
    return out


def render(*, overlay: str, serve_config: Path = DEFAULT_SERVE_CONFIG, live: Obj | None = None,
           compact: bool = False) -> list[Obj]:
    """Build the overlay's objects with ``serveConfigV2`` filled (and live groups kept if given)."""
    if overlay not in OVERLAYS:
        raise RenderError(f"unknown overlay {overlay!r}; choose one of {', '.join(OVERLAYS)}")
    if compact and live is None:
        raise RenderError("compact needs the live RayService")
    objects = build(CLUSTER_DIR / "overlays" / overlay)
    rayservice = _rayservice(objects)
    rayservice["spec"]["serveConfigV2"] = serve_config_v2(serve_config)
    if live is not None:
        if live.get("kind") != "RayService" or live.get("metadata", {}).get("name") != \
                rayservice["metadata"]["name"]:
            raise RenderError("the live object is not this overlay's RayService")
        objects[objects.index(rayservice)] = carry_live_groups(rayservice, live, compact=compact)
    return objects


class _BlockDumper(yaml.SafeDumper):
    """Dumps multi-line strings (serveConfigV2) as literal blocks, readable in a diff."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_BlockDumper.add_representer(str, _str_presenter)


def dump(obj: Obj) -> str:
    return yaml.dump(obj, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False)


def file_name(obj: Obj) -> str:
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def write(objects: list[Obj], out: Path) -> list[Path]:
    """Write one YAML file per object and a ``kustomization.yaml`` listing them; return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for obj in objects:
        path = out / file_name(obj)
        if path in paths:
            raise RenderError(f"two objects render to {path.name}")
        path.write_text(dump(obj))
        paths.append(path)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": [p.name for p in paths]}
    kpath = out / "kustomization.yaml"
    kpath.write_text("# Rendered by `incidentfox cluster render`; do not edit, re-render.\n"
                     + yaml.safe_dump(kustomization, sort_keys=False))
    return [*paths, kpath]


if __name__ == "__main__":  # `make manifests`
    changed = write_serve_config_patch()
    print(f"{SERVE_CONFIG_PATCH.relative_to(REPO_ROOT)}: {'updated' if changed else 'up to date'}")
