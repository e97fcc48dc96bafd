from __future__ import annotations

import re
from dataclasses import fields

import pytest

from neuron_platform import versions


def _all_version_strings() -> list[str]:
    values: list[str] = []
    for name in dir(versions):
        value = getattr(versions, name)
        if isinstance(value, str) and name.isupper():
            values.append(value)
        elif isinstance(value, versions.HelmChartVersion):
            values.extend(getattr(value, f.name) for f in fields(value))
        elif isinstance(value, dict) and name.isupper():
            values.extend(str(v) for v in value.values())
    return values


def test_nothing_is_latest() -> None:
    for value in _all_version_strings():
        assert "latest" not in value.lower(), value


def test_every_chart_is_an_exact_version() -> None:
    for name in dir(versions):
        chart = getattr(versions, name)
        if isinstance(chart, versions.HelmChartVersion):
            assert re.fullmatch(r"\d+\.\d+\.\d+", chart.version), (name, chart.version)


def test_addon_builds_are_exact() -> None:
    for name, build in versions.EKS_ADDONS.items():
        assert re.fullmatch(r"v\d+\.\d+\.\d+-eksbuild\.\d+", build), name


def test_non_neuron_images_are_tagged() -> None:
    # Neuron images are not typed here: their tags come from the vendored data (test_neuron_stack).
    repository, _, tag = versions.AWS_CLI_IMAGE.rpartition(":")
    assert repository
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag)


def test_pinned_combination_is_compatible() -> None:
    assert versions.check_compatibility() == []


def test_kubectl_layer_package_matches_the_cluster_version() -> None:
    minor = versions.KUBERNETES_VERSION.split(".")[1]
    assert versions.KUBECTL_LAYER_PACKAGE.endswith(f"_v{minor}")
    assert versions.KUBECTL_LAYER_MINOR == versions.KUBERNETES_VERSION
    __import__(versions.KUBECTL_LAYER_PACKAGE)  # installed from requirements.txt


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"karpenter": "1.12.0"}, "Kubernetes 1.36 needs Karpenter >= 1.13.0, got 1.12.0"),
        (
            {
                "kubernetes": "1.35",
                "karpenter": "1.8.2",
                "kubectl_layer_minor": "1.35",
                "kube_proxy": "v1.35.0-eksbuild.2",
            },
            "Kubernetes 1.35 needs Karpenter >= 1.9.0, got 1.8.2",
        ),
        ({"kubectl_layer_minor": "1.35"}, "kubectl layer 1.35 does not match Kubernetes 1.36"),
        ({"kube_proxy": "v1.35.0-eksbuild.2"}, "kube-proxy v1.35.0-eksbuild.2 does not match Kubernetes 1.36"),
        (
            {"kubernetes": "1.37", "kubectl_layer_minor": "1.37", "kube_proxy": "v1.37.0-eksbuild.1"},
            "Kubernetes 1.37 has no known Karpenter compatibility entry",
        ),
    ],
)
def test_incompatible_combinations_are_reported(kwargs: dict[str, str], problem: str) -> None:
    assert problem in versions.check_compatibility(**kwargs)
