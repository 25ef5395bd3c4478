"""A small, strict subset of kustomize, so rendering needs no `kustomize` binary.

``build(path)`` reads ``path/kustomization.yaml`` and returns the resulting objects, the way
``kubectl kustomize path`` does for the fields this repository uses:

- ``resources`` (files and directories holding a kustomization);
- ``patches`` with ``path`` or ``patch``, and an optional ``target`` by ``kind``/``name``. A patch
  whose YAML is a list is an RFC 6902 JSON patch; otherwise it is a strategic-merge patch, applied
  here as an RFC 7396 merge patch. The two agree for custom resources and for maps; they differ for
  lists of built-in kinds (kustomize merges containers by name), so such a patch is refused: write a
  JSON patch for list edits;
- ``namespace``, ``labels`` (``includeSelectors: false``, metadata only), ``images``;
- ``configMapGenerator`` with ``envs``/``literals`` and ``options.disableNameSuffixHash: true`` (no
  name hashing here), and ``replacements`` (``source`` and ``targets`` by ``kind``/``name``, field
  paths with ``[key=value]`` list selectors and ``[dotted.key]`` map keys, ``options.create``,
  ``options.delimiter``/``index`` to replace one part of a string), run
  last, as kustomize does. Objects annotated ``config.kubernetes.io/local-config: "true"`` (an
  overlay's values ConfigMap) are dropped from the final output, as kustomize drops them.

Any other kustomization field raises :class:`KustomizeError` rather than being silently ignored.
A test builds every overlay with ``kubectl kustomize`` too, where available, and compares.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonpatch
import jsonpointer
import yaml

# The one RFC 7396 implementation (config layering uses it too): re-exported for this module's callers.
from config_service import merge_patch

Obj = dict[str, Any]

_KNOWN_FIELDS = {"apiVersion", "kind", "resources", "patches", "namespace", "labels", "images",
                 "configMapGenerator", "replacements"}
LOCAL_CONFIG = "config.kubernetes.io/local-config"
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                   "PersistentVolume", "StorageClass", "IngressClass", "PriorityClass", "RuntimeClass"}
_BUILTIN_GROUPS = {"v1", "apps/v1", "batch/v1", "networking.k8s.io/v1", "policy/v1",
                   "rbac.authorization.k8s.io/v1", "autoscaling/v2", "node.k8s.io/v1"}


class KustomizeError(ValueError):
    """The kustomization uses something this subset does not implement, or a patch does not apply."""


def load_yaml_documents(path: Path) -> list[Obj]:
    """All non-empty YAML documents of ``path``."""
    with path.open() as fh:
        return [d for d in yaml.safe_load_all(fh) if d]


def build(path: Path) -> list[Obj]:
    """Build the kustomization in directory ``path`` into a list of objects (in resource order),
    without the local-config objects (values sources for replacements)."""
    return [o for o in _build(Path(path)) if not _is_local_config(o)]


def _is_local_config(obj: Obj) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(LOCAL_CONFIG, "")).lower() == "true"


def _build(path: Path) -> list[Obj]:
    kfile = path / "kustomization.yaml"
    if not kfile.is_file():
        raise KustomizeError(f"{path}: no kustomization.yaml")
    (kust,) = load_yaml_documents(kfile)
    unknown = set(kust) - _KNOWN_FIELDS
    if unknown:
        raise KustomizeError(f"{kfile}: unsupported kustomization fields {sorted(unknown)}")

    objects: list[Obj] = []
    for entry in kust.get("resources", []):
        target = path / entry
        if target.is_dir():
            objects.extend(_build(target))
        elif target.is_file():
            objects.extend(load_yaml_documents(target))
        else:
            raise KustomizeError(f"{kfile}: resource {entry!r} not found")
    for generator in kust.get("configMapGenerator", []):
        objects.append(_generate_config_map(generator, path))

    for patch in kust.get("patches", []):
        _apply_patch_entry(objects, patch, path)
    if "namespace" in kust:
        for obj in objects:
            if obj.get("kind") not in _CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = kust["namespace"]
    for label in kust.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise KustomizeError(f"{kfile}: labels with includeSelectors/includeTemplates unsupported")
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(label.get("pairs", {}))
    for image in kust.get("images", []):
        for obj in objects:
            _set_images(obj, image)
    for replacement in kust.get("replacements", []):
        _replace(objects, replacement)
    return objects


def _generate_config_map(entry: Obj, base: Path) -> Obj:
    """A ``configMapGenerator`` entry as a ConfigMap (env files: ``KEY=value`` lines, ``#`` comments)."""
    options = entry.get("options") or {}
    if not options.get("disableNameSuffixHash"):
        raise KustomizeError(f"configMapGenerator {entry.get('name')}: set options.disableNameSuffixHash: "
                             "true (this subset does not compute name hashes)")
    if set(entry) - {"name", "envs", "literals", "options"} or set(options) - {
            "disableNameSuffixHash", "annotations", "labels"}:
        raise KustomizeError(f"configMapGenerator {entry.get('name')}: unsupported fields")
    lines = [ln for env in entry.get("envs", []) for ln in (base / env).read_text().splitlines()]
    data: dict[str, str] = {}
    for line in [*lines, *entry.get("literals", [])]:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            raise KustomizeError(f"configMapGenerator {entry['name']}: {line!r} is not KEY=value")
        if value[:1] in ("'", '"'):
            raise KustomizeError(f"configMapGenerator {entry['name']}: {key}: write values unquoted")
        data[key.strip()] = value
    meta: Obj = {"name": entry["name"]}
    if options.get("labels"):
        meta["labels"] = dict(options["labels"])
    if options.get("annotations"):
        meta["annotations"] = {k: str(v) for k, v in options["annotations"].items()}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def _field_path(path: str) -> list[str]:
    """``a.b.[name=x].[dotted.key].0`` → ``["a", "b", "[name=x]", "dotted.key", "0"]``."""
    parts = re.findall(r"\[[^\]]*\]|[^.\[\]]+", path)
    return [p[1:-1] if p.startswith("[") and "=" not in p else p for p in parts]


def _step(node: Any, part: str, *, create: bool, last: bool) -> Any:
    if isinstance(node, list):
        if part.startswith("[") and "=" in part:
            key, _, value = part[1:-1].partition("=")
            found = [item for item in node if isinstance(item, dict) and str(item.get(key)) == value]
            return found[0] if found else None
        try:
            return node[int(part)]
        except (ValueError, IndexError):
            return None
    if isinstance(node, dict):
        if part not in node and create and not last:
            node[part] = {}
        return node.get(part)
    return None


def _get_field(obj: Obj, path: str) -> Any:
    node: Any = obj
    for part in _field_path(path):
        node = _step(node, part, create=False, last=False)
        if node is None:
            return None
    return node


def _set_field(obj: Obj, path: str, value: Any, *, create: bool, delimiter: str = "",
               index: int = 0) -> bool:
    parts = _field_path(path)
    node: Any = obj
    for part in parts[:-1]:
        node = _step(node, part, create=create, last=False)
        if node is None:
            return False
    if not isinstance(node, dict) or (parts[-1] not in node and not create):
        return False
    if delimiter:
        # kustomize: split the target on the delimiter, replace one piece (prepend when the index
        # is negative, append past the end), join again.
        pieces = str(node.get(parts[-1], "")).split(delimiter)
        if index < 0:
            pieces.insert(0, str(value))
        elif index >= len(pieces):
            pieces.append(str(value))
        else:
            pieces[index] = str(value)
        value = delimiter.join(pieces)
    node[parts[-1]] = copy.deepcopy(value)
    return True


def _select(objects: list[Obj], selector: Obj) -> list[Obj]:
    if set(selector) - {"kind", "name"}:
        raise KustomizeError(f"replacement selector {selector}: only kind and name are supported")
    return [o for o in objects if o.get("kind") == selector.get("kind")
            and ("name" not in selector or o.get("metadata", {}).get("name") == selector["name"])]


def _replace(objects: list[Obj], replacement: Obj) -> None:
    """One ``replacements`` entry: copy the source field into every target field path."""
    source = replacement.get("source") or {}
    sources = _select(objects, {k: source[k] for k in ("kind", "name") if k in source})
    if len(sources) != 1:
        raise KustomizeError(f"replacement source {source}: matches {len(sources)} objects, not one")
    value = _get_field(sources[0], source.get("fieldPath", "metadata.name"))
    if value is None:
        raise KustomizeError(f"replacement source {source}: field not found")
    for target in replacement.get("targets", []):
        if set(target) - {"select", "fieldPaths", "options"} or \
                set(target.get("options") or {}) - {"create", "delimiter", "index"}:
            raise KustomizeError(f"replacement target {target}: unsupported fields")
        matched = _select(objects, target["select"])
        if not matched:
            raise KustomizeError(f"replacement target {target['select']} matches no resource")
        options = target.get("options") or {}
        for obj in matched:
            for field in target["fieldPaths"]:
                if not _set_field(obj, field, value, create=bool(options.get("create")),
                                  delimiter=options.get("delimiter", ""), index=int(options.get("index", 0))):
                    raise KustomizeError(f"replacement target {target['select']}: {field} not found")


def _apply_patch_entry(objects: list[Obj], entry: Obj, base: Path) -> None:
    if "path" in entry:
        docs = load_yaml_documents(base / entry["path"])
        if len(docs) != 1:
            raise KustomizeError(f"{entry['path']}: a patch file holds exactly one patch")
        patch = docs[0]
    elif "patch" in entry:
        patch = yaml.safe_load(entry["patch"])
    else:
        raise KustomizeError(f"patch entry {entry} has neither path nor patch")
    target = entry.get("target")
    if target is None:
        if not isinstance(patch, dict):
            raise KustomizeError("a JSON patch needs a target")
        target = {"kind": patch.get("kind"), "name": patch.get("metadata", {}).get("name")}
    if set(target) - {"kind", "name"}:
        raise KustomizeError(f"patch target {target}: only kind and name are supported")
    matched = [i for i, o in enumerate(objects) if o.get("kind") == target.get("kind")
               and ("name" not in target or o.get("metadata", {}).get("name") == target["name"])]
    if not matched:
        raise KustomizeError(f"patch target {target} matches no resource")
    for i in matched:
        obj = objects[i]
        if isinstance(patch, list):
            objects[i] = apply_json_patch(obj, patch)
        else:
            if obj.get("apiVersion") in _BUILTIN_GROUPS and _has_list(patch):
                raise KustomizeError(
                    f"strategic-merge patch on built-in {obj['kind']} contains a list; "
                    "use a JSON patch so kustomize and this renderer agree")
            objects[i] = merge_patch(obj, patch)


def _has_list(value: Any) -> bool:
    if isinstance(value, list):
        return True
    if isinstance(value, dict):
        return any(_has_list(v) for v in value.values())
    return False


def apply_json_patch(doc: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902 JSON patch (the ``jsonpatch`` library); returns a new document.

    Raises :class:`KustomizeError` naming the patch that does not apply.
    """
    try:
        return jsonpatch.apply_patch(doc, ops)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError,
            IndexError, ValueError) as exc:   # a malformed operation reaches past the library's checks
        raise KustomizeError(f"JSON patch does not apply: {exc} ({ops})") from exc


def _set_images(value: Any, image: Obj) -> None:
    """Rewrite ``image`` fields of every containers/initContainers list, anywhere in the object
    (kustomize does the same, custom resources included)."""
    if isinstance(value, dict):
        for key, sub in value.items():
            if key in ("containers", "initContainers") and isinstance(sub, list):
                for container in sub:
                    if isinstance(container, dict) and "image" in container:
                        container["image"] = _rewrite_image(container["image"], image)
            _set_images(sub, image)
    elif isinstance(value, list):
        for item in value:
            _set_images(item, image)


def _rewrite_image(ref: str, image: Obj) -> str:
    name, sep, suffix = ref, "", ""
    if "@" in ref:
        name, suffix = ref.split("@", 1)
        sep = "@"
    elif ":" in ref.rsplit("/", 1)[-1]:
        name, suffix = ref.rsplit(":", 1)
        sep = ":"
    if name != image["name"]:
        return ref
    name = image.get("newName", name)
    if "digest" in image:
        return f"{name}@{image['digest']}"
    if "newTag" in image:
        return f"{name}:{image['newTag']}"
    return f"{name}{sep}{suffix}"
