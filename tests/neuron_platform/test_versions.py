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


def test_ami_alias_is_a_dated_release() -> None:
    assert re.fullmatch(r"al2023@v\d{8}", versions.AMI_ALIAS)


def test_addon_builds_are_exact() -> None:
    for name, build in versions.EKS_ADDONS.items():
        assert re.fullmatch(r"v\d+\.\d+\.\d+-eksbuild\.\d+", build), name


def test_images_are_tagged() -> None:
    images = (
        versions.INF2_SERVING_IMAGE,
        versions.TRN2_SERVING_IMAGE,
        versions.TRAINING_IMAGE,
        versions.AWS_CLI_IMAGE,
        versions.sagemaker_vllm_image("us-east-1"),
    )
    for image in images:
        repository, _, tag = image.rpartition(":")
        assert repository
        assert tag not in {"", "latest"}


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


def test_pinned_compile_and_serving_sdks_agree() -> None:
    assert versions.check_artifact_compatibility() == []
    assert versions.image_sdk(versions.INF2_SERVING_IMAGE) == "2.31.1"
    assert versions.image_sdk(versions.TRN2_SERVING_IMAGE) == "2.32.0"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        (
            {"compile_sdks": {"inf2": "2.30.0", "trn1": "2.31.1", "trn2": "2.32.0"}},
            "inf2: serving image runs SDK 2.31.1 but compiles use SDK 2.30.0",
        ),
        (
            {"compile_sdks": {"inf2": "2.31.1", "trn1": "2.31.1"}},
            "trn2: no compile SDK pinned for its serving image (SDK 2.32.0)",
        ),
        ({"sagemaker_sdk": "2.31.1"}, "sagemaker: image tag runs SDK 2.26.1 but compiles use SDK 2.31.1"),
    ],
)
def test_artifacts_compiled_for_another_sdk_are_reported(kwargs: dict[str, object], problem: str) -> None:
    assert problem in versions.check_artifact_compatibility(**kwargs)  # type: ignore[arg-type]


def test_pinned_ami_carries_the_driver_every_pool_image_needs() -> None:
    assert versions.check_driver_compatibility() == []
    # The AMI installs the newest driver when built; v20260903 was built after SDK 2.32.0.
    assert versions.ami_neuron_driver(versions.AL2023_AMI_RELEASE) == "2.30.2.0"
    assert versions.required_neuron_driver("2.32.0") == "2.30.2.0"
    assert versions.required_neuron_driver("2.31.1") == "2.29.0.0"  # patch releases use their minor's driver
    assert versions.required_neuron_driver("2.26.1") is None  # older than the table: any listed driver


def test_ami_driver_counts_only_drivers_released_before_the_build() -> None:
    # SDK 2.32.0 (driver 2.30.2.0) shipped on 2026-08-17; an AMI dated two days later was
    # already being built.
    assert versions.ami_neuron_driver("v20260819") == "2.29.0.0"
    assert versions.ami_neuron_driver("v20260820") == "2.30.2.0"
    assert versions.ami_neuron_driver("v20260101") is None


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        (
            {"ami_release": "v20260801"},
            "serving trn2: Neuron SDK 2.32.0 needs Neuron driver 2.30.2.0 or newer; "
            "AMI al2023@v20260801 carries 2.29.0.0",
        ),
        (
            {"ami_release": "v20260301"},
            "serving inf2: Neuron SDK 2.31.1 needs Neuron driver 2.29.0.0 or newer; "
            "AMI al2023@v20260301 carries an older driver than any tabled",
        ),
        (
            {"images": {"serving trn2": "x:0.30.0-neuronx-py313-sdk2.34.0-ubuntu24.04"}},
            "serving trn2: Neuron SDK 2.34.0 is newer than NEURON_DRIVER_RELEASES; add its driver",
        ),
        (
            {"images": {"training": "x:2.8.0-neuronx-py311"}},
            "training: image x:2.8.0-neuronx-py311 names no Neuron SDK release in its tag",
        ),
    ],
)
def test_images_newer_than_the_ami_driver_are_reported(kwargs: dict[str, object], problem: str) -> None:
    assert problem in versions.check_driver_compatibility(**kwargs)  # type: ignore[arg-type]
