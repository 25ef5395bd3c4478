"""Offline validation of rendered manifests: no cluster, no network.

- Built-in kinds: ``kubernetes-validate`` (Kubernetes' own OpenAPI schemas, strict: unknown fields
  fail, as ``kubectl apply``'s default field validation would).
- KubeRay kinds: ``jsonschema`` against the committed CRD subsets in ``cluster/crd_schemas/``, made
  strict the way the API server is (a field not in the schema is an error), and every embedded pod
  template or Service checked with ``kubernetes-validate`` as a ``PodTemplate``/``Service``.
- The RayService's ``serveConfigV2`` must load in Ray Serve's own ``ServeDeploySchema``.
- Prometheus Operator kinds (``PodMonitor``, ``PrometheusRule``): ``jsonschema`` against the schemas
  written from the operator's API reference in ``cluster/crd_schemas/monitoring.py`` (strict too),
  because their CRDs are not vendored.

``validate_objects`` returns a list of human-readable problems (empty when all is well).
``kubernetes-validate`` and ``jsonschema`` are dev dependencies, imported here only.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SCHEMA_DIR = Path(__file__).resolve().parent / "crd_schemas"
KUBERNETES_VERSION = "1.32.0"
RAY_KINDS = {"RayService", "RayCluster", "RayJob", "RayCronJob"}
MONITORING_API = "monitoring.coreos.com/v1"
_MARK = "x-incidentfox-validate-as"


def _strict(node: Any) -> Any:
    """Copy of a structural schema where objects with ``properties`` reject unknown fields."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@cache
def crd_schema(kind: str) -> dict[str, Any]:
    """The committed, strict schema subset for a KubeRay kind."""
    return _strict(json.loads((SCHEMA_DIR / f"{kind.lower()}.json").read_text()))


def _embedded(schema: Any, instance: Any, path: str) -> list[tuple[str, str, Any]]:
    """(path, kind, value) of every part of ``instance`` the schema marks for core validation."""
    if not isinstance(schema, dict):
        return []
    if _MARK in schema:
        return [(path, schema[_MARK], instance)]
    found = []
    if isinstance(instance, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in instance:
                found.extend(_embedded(sub, instance[key], f"{path}.{key}"))
    elif isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            found.extend(_embedded(schema["items"], item, f"{path}[{i}]"))
    return found


def _validate_core(obj: dict[str, Any]) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        return [f"{exc.message} (at {where or '<root>'})"]
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
        return [f"no Kubernetes schema: {exc}"]
    return []


def _wrap(kind: str, value: Any) -> dict[str, Any]:
    if kind == "PodTemplateSpec":
        return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "embedded"},
                "template": value}
    body = copy.deepcopy(value)
    body.setdefault("metadata", {}).setdefault("name", "embedded")
    return {"apiVersion": "v1", "kind": kind, **body}


def validate_ray_object(obj: dict[str, Any]) -> list[str]:
    import jsonschema

    schema = crd_schema(obj["kind"])
    validator = jsonschema.Draft7Validator(schema)
    problems = [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
                for e in validator.iter_errors(obj)]
    for path, kind, value in _embedded(schema, obj, ""):
        problems.extend(f"{path.lstrip('.')}: {p}" for p in _validate_core(_wrap(kind, value)))
    return problems


def validate_monitoring_object(obj: dict[str, Any]) -> list[str]:
    """Problems of a Prometheus Operator object against its hand-written, strict schema."""
    import jsonschema

    from cluster.crd_schemas.monitoring import SCHEMAS

    if obj.get("kind") not in SCHEMAS:
        return [f"no schema for {MONITORING_API} kind {obj.get('kind')!r}"]
    validator = jsonschema.Draft7Validator(_strict(SCHEMAS[obj["kind"]]))
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            for e in validator.iter_errors(obj)]


def validate_serve_config(text: str) -> list[str]:
    """Problems loading ``text`` (a serveConfigV2) into ``ServeDeploySchema``."""
    from ray.serve.schema import ServeDeploySchema

    try:
        ServeDeploySchema.model_validate(yaml.safe_load(text))
    except (ValueError, TypeError, yaml.YAMLError) as exc:  # pydantic errors are ValueErrors
        return [f"serveConfigV2 refused by ServeDeploySchema: {exc}"]
    return []


def validate_objects(objects: list[dict[str, Any]]) -> list[str]:
    """All problems of a rendered manifest set, each prefixed with ``Kind/name``."""
    problems: list[str] = []
    for obj in objects:
        label = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
        if obj.get("kind") in RAY_KINDS:
            found = validate_ray_object(obj)
            if obj["kind"] == "RayService":
                text = obj.get("spec", {}).get("serveConfigV2")
                found += (validate_serve_config(text) if isinstance(text, str)
                          else ["serveConfigV2 is not rendered (not a string)"])
        elif obj.get("apiVersion") == MONITORING_API:
            found = validate_monitoring_object(obj)
        else:
            found = _validate_core(obj)
        problems.extend(f"{label}: {p}" for p in found)
    return problems
