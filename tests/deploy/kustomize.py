"""The part of kustomize that deploy/kubernetes uses, in Python, so the suite can check what
`kubectl apply -k` would send without a kustomize binary (none is installable offline).

Supported, and refused otherwise (a KeyError or ValueError names what is not): `resources`
(files and directories holding a kustomization.yaml), `namespace` (set on every object
but a Namespace), `images` (newName, newTag, digest; matched on the image's name without
tag or digest), `configMapGenerator` with `literals` (named with a content hash suffix,
and the Deployment's and Job's `configMapKeyRef`s renamed to match, as kustomize does) and
`patches` with an inline JSON 6902 patch (`add`, `replace`, `remove`) and a target by
kind and name. The hash differs from kustomize's own; only its presence matters here.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION = "kustomization.yaml"
SUPPORTED = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "configMapGenerator",
    "patches",
}


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Return the YAML documents of a manifest file (empty ones skipped)."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(directory: Path) -> list[dict[str, Any]]:
    """Return the objects the kustomization in `directory` produces."""
    spec = yaml.safe_load((directory / KUSTOMIZATION).read_text())
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise ValueError(f"{directory / KUSTOMIZATION}: not supported here: {sorted(unknown)}")
    objects: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        objects += render(target) if target.is_dir() else load_documents(target)
    objects = [copy.deepcopy(o) for o in objects]
    renamed: dict[str, str] = {}
    for generator in spec.get("configMapGenerator", []):
        data = dict(literal.split("=", 1) for literal in generator["literals"])
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]
        name = f"{generator['name']}-{digest}"
        renamed[generator["name"]] = name
        objects.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
        )
    for patch in spec.get("patches", []):
        target = patch["target"]
        matches = [
            o
            for o in objects
            if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"]
        ]
        if not matches:
            raise KeyError(f"patch target {target} matches nothing")
        for obj in matches:
            for operation in yaml.safe_load(patch["patch"]):
                _apply(obj, operation)
    for obj in objects:
        if "namespace" in spec and obj["kind"] != "Namespace":
            obj["metadata"]["namespace"] = spec["namespace"]
        for container in _containers(obj):
            container["image"] = _image(container["image"], spec.get("images", []))
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("configMapKeyRef")
                if ref is not None and ref["name"] in renamed:
                    ref["name"] = renamed[ref["name"]]
    return objects


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the containers of a Deployment's or Job's pod template (none otherwise)."""
    if obj["kind"] not in ("Deployment", "Job"):
        return []
    pod = obj["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def _image(image: str, rules: list[dict[str, str]]) -> str:
    """Return `image` as kustomize's `images` entries rewrite it."""
    name = image.split("@", 1)[0].rsplit(":", 1)[0] if "@" in image or ":" in image else image
    for rule in rules:
        if rule["name"] == name:
            new = rule.get("newName", name)
            if "digest" in rule:
                return f"{new}@{rule['digest']}"
            if "newTag" in rule:
                return f"{new}:{rule['newTag']}"
            return new + image[len(name) :]
    return image


def _apply(document: dict[str, Any], operation: dict[str, Any]) -> None:
    """Apply one JSON 6902 operation (add, replace, remove) to `document` in place."""
    *parents, last = [
        part.replace("~1", "/").replace("~0", "~")
        for part in operation["path"].lstrip("/").split("/")
    ]
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) and last != "-" else last
    op = operation["op"]
    if op == "replace":
        if isinstance(node, dict) and key not in node:
            raise KeyError(f"JSON patch replaces {operation['path']}, which is not there")
        node[key] = operation["value"]  # a list index out of range raises IndexError
    elif op == "add":
        if isinstance(node, list):
            node.insert(len(node) if key == "-" else key, operation["value"])
        else:
            node[key] = operation["value"]
    elif op == "remove":
        del node[key]
    else:
        raise ValueError(f"JSON patch op {op!r} is not supported here")
