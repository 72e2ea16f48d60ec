"""Render a kustomization the way `kubectl kustomize` does, for the features deploy/ uses.

Resources (files and kustomization folders), components, a ConfigMap generator from env
files (with `behavior: merge` in overlays and kustomize's content-hash name suffix),
strategic-merge patches (with `key: null` and `$patch: delete` of a whole object), namespace
and image transformers. Anything else in a kustomization is refused, so a new feature in
deploy/kubernetes/ cannot be rendered wrongly in silence. The tests compare this with
`kubectl kustomize` wherever kubectl is installed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KNOWN_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "configMapGenerator",
    "patches",
    "namespace",
    "images",
}
# List items of these fields merge by the named key in a strategic merge patch.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}


def render(folder: Path) -> list[Resource]:
    """Return the resources the kustomization in `folder` produces, hash suffixes applied."""
    resources = _accumulate(folder)
    _apply_name_hashes(resources)
    for resource in resources:
        resource.pop("_generated", None)
    return resources


def _load_kustomization(folder: Path) -> dict[str, Any]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN_FIELDS
    if unknown:
        raise NotImplementedError(f"{folder}: kustomization fields not rendered: {unknown}")
    return kustomization


def _load_documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _accumulate(folder: Path) -> list[Resource]:
    kustomization = _load_kustomization(folder)
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = folder / entry
        resources += _accumulate(path) if path.is_dir() else _load_documents(path)
    for entry in kustomization.get("components", []):
        component = folder / entry
        if _load_kustomization(component)["kind"] != "Component":
            raise ValueError(f"{component} is not a Component")
        resources = _accumulate_onto(component, resources)
    return _transform(folder, kustomization, resources)


def _accumulate_onto(component: Path, resources: list[Resource]) -> list[Resource]:
    kustomization = _load_kustomization(component)
    for entry in kustomization.get("resources", []):
        resources = resources + _load_documents(component / entry)
    return _transform(component, kustomization, resources)


def _transform(
    folder: Path, kustomization: dict[str, Any], resources: list[Resource]
) -> list[Resource]:
    for generator in kustomization.get("configMapGenerator", []):
        data: dict[str, str] = {}
        for env_file in generator.get("envs", []):
            data.update(_read_env_file(folder / env_file))
        name = generator["name"]
        if generator.get("behavior") == "merge":
            target = _find(resources, "ConfigMap", name)
            target["data"] = {**target.get("data", {}), **data}
        else:
            resources.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name},
                    "data": data,
                    "_generated": True,
                }
            )
    for patch_entry in kustomization.get("patches", []):
        for patch in _load_documents(folder / patch_entry["path"]):
            target = _find(resources, patch["kind"], patch["metadata"]["name"])
            if patch.get("$patch") == "delete":
                resources = [r for r in resources if r is not target]
                continue
            merged = strategic_merge(target, patch)
            target.clear()
            target.update(merged)
    namespace = kustomization.get("namespace")
    if namespace:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = namespace
    for image in kustomization.get("images", []):
        _set_image(resources, image)
    return resources


def _read_env_file(path: Path) -> dict[str, str]:
    data: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        data[key] = value
    return data


def _find(resources: list[Resource], kind: str, name: str) -> Resource:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    if len(matches) != 1:
        raise LookupError(f"{len(matches)} resources {kind}/{name}")
    return matches[0]


def strategic_merge(target: Any, patch: Any, field: str = "") -> Any:
    """Merge `patch` into a copy of `target`: maps by key, known lists by their merge key."""
    if isinstance(target, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(target)
        for key, value in patch.items():
            if value is None:  # `key: null` removes the key
                merged.pop(key, None)
            else:
                merged[key] = strategic_merge(target[key], value, key) if key in target else value
        return merged
    if isinstance(target, list) and isinstance(patch, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        merged_list = copy.deepcopy(target)
        for item in patch:
            index = next((i for i, old in enumerate(target) if old[key] == item[key]), None)
            if index is None:
                merged_list.append(item)
            else:
                merged_list[index] = strategic_merge(target[index], item, field)
        return merged_list
    return copy.deepcopy(patch)


def pod_spec(resource: Resource) -> dict[str, Any] | None:
    """Return the pod spec of a workload (Deployment, Job, ...) or None."""
    template = resource.get("spec", {}).get("template")
    return template["spec"] if template else None


def _set_image(resources: list[Resource], image: dict[str, str]) -> None:
    for resource in resources:
        spec = pod_spec(resource)
        if spec is None:
            continue
        for container in spec.get("initContainers", []) + spec["containers"]:
            name = container["image"].split("@")[0].rsplit(":", 1)[0]
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image['newTag']}"


def configmap_hash(data: dict[str, str]) -> str:
    """Return kustomize's name suffix for a ConfigMap's content (api/hasher in kustomize 5)."""
    # kustomize 5 hashes the data with an empty name; Go's encoder escapes <, > and &.
    encoded = json.dumps(
        {"data": data, "kind": "ConfigMap", "name": ""},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        encoded = encoded.replace(char, escaped)
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _apply_name_hashes(resources: list[Resource]) -> None:
    renamed: dict[str, str] = {}
    for resource in resources:
        if resource.get("_generated"):
            old = resource["metadata"]["name"]
            new = f"{old}-{configmap_hash(resource['data'])}"
            resource["metadata"]["name"] = renamed[old] = new
    for resource in resources:
        spec = pod_spec(resource)
        if spec is None:
            continue
        for container in spec.get("initContainers", []) + spec["containers"]:
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef")
                if ref and ref["name"] in renamed:
                    ref["name"] = renamed[ref["name"]]
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("configMapKeyRef")
                if ref and ref["name"] in renamed:
                    ref["name"] = renamed[ref["name"]]
        for volume in spec.get("volumes", []):
            ref = volume.get("configMap")
            if ref and ref["name"] in renamed:
                ref["name"] = renamed[ref["name"]]
