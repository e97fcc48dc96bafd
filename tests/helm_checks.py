"""Checks on the objects a Helm release renders (used by tests/gates/test_helm_releases.py).

Each function returns one line per problem, naming the release and the object; an empty
list means the release passes. They take rendered objects, so tests can also feed them
objects that must fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml

from neuron_platform.validation import UniqueKeyLoader
from tests.helm_render import BUILTIN_NAMESPACES, Release

# Core kinds that live outside namespaces (custom kinds: their CRD's spec.scope).
CLUSTER_SCOPED_CORE = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "StorageClass",
        "CSIDriver",
        "CSINode",
        "VolumeAttachment",
        "IngressClass",
        "RuntimeClass",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "APIService",
        "DeviceClass",
        "ResourceSlice",
    }
)
# Images built for one Kubernetes minor: supported within one minor of the control plane.
KUBERNETES_COMPONENTS = frozenset(
    {"kube-scheduler", "kube-controller-manager", "kube-apiserver", "kube-proxy", "cloud-controller-manager"}
)
FLOATING_TAGS = frozenset({"", "latest", "main", "master", "stable", "edge", "nightly"})


def name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def crd_scopes(objects: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """kind -> Namespaced | Cluster, from the CustomResourceDefinitions among ``objects``."""
    return {
        o["spec"]["names"]["kind"]: o["spec"]["scope"] for o in objects if o.get("kind") == "CustomResourceDefinition"
    }


def namespace_problems(release: Release, objects: list[dict[str, Any]], scopes: Mapping[str, str]) -> list[str]:
    """Every namespaced object must land in a namespace that exists when Helm applies it."""
    existing = set(BUILTIN_NAMESPACES) | set(release.namespaces_before)
    existing |= {o["metadata"]["name"] for o in objects if o.get("kind") == "Namespace"}
    if release.create_namespace:
        existing.add(release.namespace)
    problems = []
    for obj in objects:
        kind = str(obj.get("kind"))
        if kind in CLUSTER_SCOPED_CORE or scopes.get(kind) == "Cluster":
            continue
        namespace = (obj.get("metadata") or {}).get("namespace") or release.namespace
        if namespace not in existing:
            problems.append(
                f"{release.name}: {name(obj)} lands in namespace {namespace!r}, which nothing creates before "
                f"the release (created: {', '.join(sorted(existing))})"
            )
    return problems


def pod_specs(obj: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        yield spec
    elif obj.get("kind") == "CronJob":
        yield ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    elif isinstance(spec.get("template"), dict) and "spec" in spec["template"]:
        yield spec["template"]["spec"]


def images(obj: Mapping[str, Any]) -> Iterator[str]:
    for pod in pod_specs(obj):
        for key in ("initContainers", "containers", "ephemeralContainers"):
            for container in pod.get(key) or []:
                yield str(container.get("image", ""))


def _tag(image: str) -> str | None:
    reference = image.split("@", 1)[0]
    last = reference.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def image_problems(release: Release, objects: list[dict[str, Any]]) -> list[str]:
    """Every container image is pinned: a digest, or a tag that does not move."""
    problems = []
    for obj in objects:
        for image in images(obj):
            tag = _tag(image)
            if "@sha256:" not in image and (tag is None or tag.lower() in FLOATING_TAGS):
                problems.append(f"{release.name}: {name(obj)} runs {image!r}, not pinned to a version")
    return problems


def skew_problems(release: Release, objects: list[dict[str, Any]], kubernetes: str) -> list[str]:
    """Images of Kubernetes' own components must be within one minor of the control plane."""
    major, minor = (int(p) for p in kubernetes.split(".")[:2])
    problems = []
    for obj in objects:
        for image in images(obj):
            repository = image.split("@", 1)[0].rsplit(":", 1)[0] if _tag(image) else image
            if repository.rsplit("/", 1)[-1] not in KUBERNETES_COMPONENTS:
                continue
            match = re.match(r"v?(\d+)\.(\d+)", _tag(image) or "")
            if not match or int(match.group(1)) != major or abs(int(match.group(2)) - minor) > 1:
                problems.append(
                    f"{release.name}: {name(obj)} runs {image}, built for another Kubernetes than {kubernetes} "
                    "(one minor of skew at most)"
                )
    return problems


def duplicate_key_problems(release: Release, text: str) -> list[str]:
    problems = []
    for document in text.split("\n---"):
        try:
            yaml.load(document, Loader=UniqueKeyLoader)
        except yaml.constructor.ConstructorError as err:
            source = re.search(r"# Source: (\S+)", document)
            problems.append(f"{release.name}: {source.group(1) if source else 'a document'}: {err.problem}")
    return problems
