"""Every version the platform deploys, in one place. Pinned; never ``latest``.

Plain Python (no CDK import) so tests and the docs can read it. Upgrading: change a
value here, run ``make test`` (the compatibility tests below guard the combinations),
review the snapshot diff, deploy the CRD chart before the controller before the pools.

Sources (checked 2026-11):
- Kubernetes 1.36: newest EKS standard-support version with a CDK kubectl layer
  (``aws-cdk.lambda-layer-kubectl-v36``) and a Karpenter release that supports it
  (Karpenter docs v1.14 "Getting started": KARPENTER_VERSION=1.14.1, K8S_VERSION=1.36).
- EKS add-on builds: the versions a Kubernetes 1.36 cluster resolves to
  (``aws eks describe-addon-versions --kubernetes-version 1.36``), as recorded in
  public 1.36 cluster configurations in 2026-10/11.
- Karpenter controller/CRD charts: public.ecr.aws/karpenter (v1.14.1 release).
- Neuron Helm chart 1.9.0 (images 2.31.0.0): public.ecr.aws/neuron/neuron-helm-chart.
- EFA device plugin: eks-charts ``aws-efa-k8s-device-plugin`` chart 0.5.30 (image v0.5.20).
- KEDA 2.21.0, chart 2.21.0 (kedacore/charts).
- AWS Load Balancer Controller v3.2.2, chart 3.2.2 (the newest pairing aws-cdk-lib 2.275
  ships, with its IAM policy, vendored in cluster/policies/).
- AL2023 EKS AMI release v20260903 (awslabs/amazon-eks-ami); Karpenter's ``al2023@``
  alias picks the Neuron variant of that release for inf/trn instance types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

KUBERNETES_VERSION = "1.36"
# Python package of the kubectl/helm Lambda layer; must match KUBERNETES_VERSION's minor.
KUBECTL_LAYER_PACKAGE = "aws_cdk.lambda_layer_kubectl_v36"
KUBECTL_LAYER_MINOR = "1.36"


@dataclass(frozen=True)
class HelmChartVersion:
    """A Helm chart: where it lives and the exact version."""

    chart: str
    repository: str
    version: str


KARPENTER_VERSION = "1.14.1"
KARPENTER_CRD_CHART = HelmChartVersion(
    chart="karpenter-crd", repository="oci://public.ecr.aws/karpenter/karpenter-crd", version=KARPENTER_VERSION
)
KARPENTER_CHART = HelmChartVersion(
    chart="karpenter", repository="oci://public.ecr.aws/karpenter/karpenter", version=KARPENTER_VERSION
)
NEURON_CHART = HelmChartVersion(
    chart="neuron-helm-chart", repository="oci://public.ecr.aws/neuron/neuron-helm-chart", version="1.9.0"
)
NEURON_SDK_IMAGES = "2.31.0.0"
EFA_DEVICE_PLUGIN_CHART = HelmChartVersion(
    chart="aws-efa-k8s-device-plugin", repository="https://aws.github.io/eks-charts", version="0.5.30"
)
LOAD_BALANCER_CONTROLLER_VERSION = "v3.2.2"
LOAD_BALANCER_CONTROLLER_CHART = HelmChartVersion(
    chart="aws-load-balancer-controller", repository="https://aws.github.io/eks-charts", version="3.2.2"
)
# KEDA scales EKS endpoints on vLLM metrics read from the Prometheus workspace (its
# prometheus scaler signs AMP queries with SigV4). Chart versions track the app version.
# Source: kedacore/keda v2.21.0 release (images ghcr.io/kedacore/keda:2.21.0), chart 2.21.0
# from kedacore/charts; the 2.21 line is the first whose tested window reaches Kubernetes
# 1.36 (v2.20 was tested on 1.33-1.35).
KEDA_CHART = HelmChartVersion(chart="keda", repository="https://kedacore.github.io/charts", version="2.21.0")

# The AL2023 release every Karpenter EC2NodeClass uses. Pinned: a floating alias would roll
# every Neuron node whenever AWS ships an AMI.
AL2023_AMI_RELEASE = "v20260903"
AMI_ALIAS = f"al2023@{AL2023_AMI_RELEASE}"

# EKS managed add-ons for Kubernetes 1.36.
EKS_ADDONS: dict[str, str] = {
    "vpc-cni": "v1.22.4-eksbuild.3",
    "kube-proxy": "v1.36.0-eksbuild.25",
    "coredns": "v1.14.3-eksbuild.23",
    "eks-pod-identity-agent": "v1.3.10-eksbuild.3",
    "aws-ebs-csi-driver": "v1.66.0-eksbuild.1",
    "eks-node-monitoring-agent": "v1.7.2-eksbuild.1",
    "metrics-server": "v0.9.0-eksbuild.11",
}

# Oldest Karpenter release that supports each Kubernetes minor (Karpenter
# compatibility matrix, docs "Upgrading > Compatibility"); a minor missing here is
# reported as unknown rather than assumed compatible.
KARPENTER_MIN_FOR_KUBERNETES: dict[str, str] = {
    "1.35": "1.9.0",
    "1.36": "1.13.0",
}


def _semver(value: str) -> tuple[int, ...]:
    return tuple(int(part) for part in value.lstrip("v").split("-")[0].split("."))


def check_compatibility(
    *,
    kubernetes: str = KUBERNETES_VERSION,
    karpenter: str = KARPENTER_VERSION,
    kubectl_layer_minor: str = KUBECTL_LAYER_MINOR,
    kube_proxy: str = EKS_ADDONS["kube-proxy"],
) -> list[str]:
    """Problems with a version combination; empty when it is consistent."""
    problems: list[str] = []
    minimum = KARPENTER_MIN_FOR_KUBERNETES.get(kubernetes)
    if minimum is None:
        problems.append(f"Kubernetes {kubernetes} has no known Karpenter compatibility entry")
    elif _semver(karpenter) < _semver(minimum):
        problems.append(f"Kubernetes {kubernetes} needs Karpenter >= {minimum}, got {karpenter}")
    if kubectl_layer_minor != kubernetes:
        problems.append(f"kubectl layer {kubectl_layer_minor} does not match Kubernetes {kubernetes}")
    if ".".join(map(str, _semver(kube_proxy)[:2])) != kubernetes:
        problems.append(f"kube-proxy {kube_proxy} does not match Kubernetes {kubernetes}")
    return problems


# Container images used by the first-run manifests (and later by serving/training).
# inf2: the last vLLM Neuron image that still supports inf2 (SDK 2.31.1).
INF2_SERVING_IMAGE = "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.16.0-neuronx-py312-sdk2.31.1-ubuntu24.04"
# trn1/trn2 training: Neuron PyTorch training DLC (ships EFA/libfabric and neuron tools).
TRAINING_IMAGE = "public.ecr.aws/neuron/pytorch-training-neuronx:2.8.0-neuronx-py311-sdk2.26.1-ubuntu22.04"

# Distributed training: Kubeflow Trainer v2 (TrainJob / ClusterTrainingRuntime). The chart
# installs JobSet as a dependency (Trainer v2.3.0 builds against JobSet v0.12.0).
# Source: kubeflow/trainer v2.3.0 release, chart oci://ghcr.io/kubeflow/charts/kubeflow-trainer.
KUBEFLOW_TRAINER_CHART = HelmChartVersion(
    chart="kubeflow-trainer", repository="oci://ghcr.io/kubeflow/charts/kubeflow-trainer", version="2.3.0"
)
JOBSET_VERSION = "0.12.0"

# FSx for Lustre CSI driver (kubernetes-sigs/aws-fsx-csi-driver). Chart 1.11.0 ships driver
# v1.4.0: the chart CHANGELOG pairs chart 1.(7+n) with driver 1.n.0, and a published
# chart index lists 1.11.0 / 1.4.0. Static provisioning only (we create the file system in
# CloudFormation), so the driver needs no AWS permissions.
FSX_CSI_DRIVER_CHART = HelmChartVersion(
    chart="aws-fsx-csi-driver", repository="https://kubernetes-sigs.github.io/aws-fsx-csi-driver", version="1.11.0"
)
# Lustre server version of the training file system (PERSISTENT_2 supports 2.12 and 2.15;
# the AL2023 EKS AMIs' Lustre client is 2.15).
LUSTRE_VERSION = "2.15"

# NxD Training's launcher scripts (examples/ of aws-neuron/neuronx-distributed-training are
# not in the wheel the training image installs) for the Llama SFT worked example, pinned to
# a commit. It must match the neuronx_distributed_training release inside TRAINING_IMAGE
# (`pip show neuronx_distributed_training` in the image) when either changes.
NXDT_EXAMPLES_REPOSITORY = "https://github.com/aws-neuron/neuronx-distributed-training.git"
NXDT_EXAMPLES_REF = "9fbb7665548065d2d4cb37069ea95ef0aaa4bb80"

# Compile images: FROM the serving image of each target (compiled artifacts must match the
# runtime that loads them) plus optimum-neuron (PyPI 0.4.5, 2026-02; `optimum-cli export
# neuron`, FIELD-NOTES "Images and compilation"). trn2 serving images come with the serving work.
OPTIMUM_NEURON_VERSION = "0.4.5"
# trn2: the current vLLM Neuron image (vLLM 0.24 with the vllm-neuron plugin, SDK 2.32.0);
# trn1 shares NeuronCore-v2 with inf2 and is served by the same last inf2-capable image.
TRN2_SERVING_IMAGE = (
    "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.24.0.1.1.0-neuronx-py313-sdk2.32.0-ubuntu24.04"
)
SERVING_IMAGES: dict[str, str] = {"inf2": INF2_SERVING_IMAGE, "trn1": INF2_SERVING_IMAGE, "trn2": TRN2_SERVING_IMAGE}
COMPILE_BASE_IMAGES: dict[str, str] = dict(SERVING_IMAGES)
COMPILE_SDK_VERSIONS: dict[str, str] = {"inf2": "2.31.1", "trn1": "2.31.1", "trn2": "2.32.0"}

# SageMaker serving: the Hugging Face vLLM Neuron DLC (optimum-neuron 0.4.5, SDK 2.26.1);
# its SM_ON_* settings must equal the compile settings. Account 763104351884 hosts the DLCs
# in most commercial regions.
SAGEMAKER_VLLM_IMAGE_REPOSITORY = "huggingface-vllm-inference-neuronx"
SAGEMAKER_VLLM_IMAGE_TAG = "0.11.0-optimum0.4.5-neuronx-py310-sdk2.26.1-ubuntu22.04"
SAGEMAKER_VLLM_SDK = "2.26.1"
DLC_ACCOUNT = "763104351884"


def sagemaker_vllm_image(region: str) -> str:
    return f"{DLC_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{SAGEMAKER_VLLM_IMAGE_REPOSITORY}:{SAGEMAKER_VLLM_IMAGE_TAG}"


# Fetches precompiled artifacts from S3 in the EKS serving pods' init container.
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.32.9"


def image_sdk(image: str) -> str | None:
    """The Neuron SDK release in a Neuron image tag (``...-sdk2.31.1-...``), if it names one."""
    match = re.search(r"sdk(\d+\.\d+\.\d+)", image.rpartition(":")[2])
    return match.group(1) if match else None


def check_artifact_compatibility(
    *,
    serving_images: Mapping[str, str] = SERVING_IMAGES,
    compile_sdks: Mapping[str, str] = COMPILE_SDK_VERSIONS,
    sagemaker_tag: str = SAGEMAKER_VLLM_IMAGE_TAG,
    sagemaker_sdk: str = SAGEMAKER_VLLM_SDK,
) -> list[str]:
    """Compiled artifacts load only under the SDK that compiled them: the compile SDK of each
    target must be the SDK of the image that serves it."""
    problems: list[str] = []
    for target, image in sorted(serving_images.items()):
        served, compiled = image_sdk(image), compile_sdks.get(target)
        if compiled is None:
            problems.append(f"{target}: no compile SDK pinned for its serving image (SDK {served})")
        elif served != compiled:
            problems.append(f"{target}: serving image runs SDK {served} but compiles use SDK {compiled}")
    tagged = image_sdk(f"x:{sagemaker_tag}")
    if tagged != sagemaker_sdk:
        problems.append(f"sagemaker: image tag runs SDK {tagged} but compiles use SDK {sagemaker_sdk}")
    return problems


@dataclass(frozen=True)
class NeuronDriverRelease:
    """The Neuron driver (aws-neuronx-dkms) a Neuron SDK release shipped, and when."""

    sdk: str
    driver: str
    released: date


# From the Neuron SDK release notes ("Neuron Component Release Notes" and the release date
# of each version; SDKs older than the first row run on any driver listed). A
# runtime needs the driver of its own SDK release or newer; newer drivers serve older
# runtimes. Add a row with every SDK release the platform moves to.
NEURON_DRIVER_RELEASES: tuple[NeuronDriverRelease, ...] = (
    NeuronDriverRelease("2.30.0", "2.28.0.0", date(2026, 5, 21)),
    NeuronDriverRelease("2.31.0", "2.29.0.0", date(2026, 7, 7)),
    NeuronDriverRelease("2.32.0", "2.30.2.0", date(2026, 8, 17)),
    NeuronDriverRelease("2.33.0", "2.31.7.0", date(2026, 10, 19)),
)
# The EKS AL2023 Neuron AMI installs the newest aws-neuronx-dkms from the Neuron repository
# when it is built (amazon-eks-ami install-neuron-driver.sh, no version pin); builds start a
# few days before the release date in the alias, so a driver counts only once it is older
# than that margin.
AMI_BUILD_LEAD = timedelta(days=3)


def ami_release_date(release: str) -> date:
    """``v20260903`` -> 2026-09-03."""
    return datetime.strptime(release.removeprefix("v"), "%Y%m%d").replace(tzinfo=UTC).date()


def ami_neuron_driver(release: str, table: Sequence[NeuronDriverRelease] = NEURON_DRIVER_RELEASES) -> str | None:
    """The Neuron driver an AL2023 AMI release carries at least (None: older than the table)."""
    built_by = ami_release_date(release) - AMI_BUILD_LEAD
    shipped = [r for r in table if r.released <= built_by]
    return max(shipped, key=lambda r: _semver(r.driver)).driver if shipped else None


def required_neuron_driver(sdk: str, table: Sequence[NeuronDriverRelease] = NEURON_DRIVER_RELEASES) -> str | None:
    """The oldest driver a runtime of ``sdk`` may run on (None: older than every tabled driver)."""
    minor = _semver(sdk)[:2]
    own = [r for r in table if _semver(r.sdk)[:2] <= minor]
    return max(own, key=lambda r: _semver(r.sdk)).driver if own else None


def check_driver_compatibility(
    *,
    ami_release: str = AL2023_AMI_RELEASE,
    images: Mapping[str, str] | None = None,
    table: Sequence[NeuronDriverRelease] = NEURON_DRIVER_RELEASES,
) -> list[str]:
    """Every Neuron image that runs on the pools needs a driver the pinned AMI has."""
    if images is None:
        images = {**{f"serving {t}": i for t, i in SERVING_IMAGES.items()}, "training": TRAINING_IMAGE}
    problems: list[str] = []
    available = ami_neuron_driver(ami_release, table)
    for name, image in sorted(images.items()):
        sdk = image_sdk(image)
        if sdk is None:
            problems.append(f"{name}: image {image} names no Neuron SDK release in its tag")
            continue
        if _semver(sdk)[:2] > _semver(table[-1].sdk)[:2]:
            problems.append(f"{name}: Neuron SDK {sdk} is newer than NEURON_DRIVER_RELEASES; add its driver")
            continue
        needed = required_neuron_driver(sdk, table)
        if needed is None:
            continue
        if available is None or _semver(available) < _semver(needed):
            problems.append(
                f"{name}: Neuron SDK {sdk} needs Neuron driver {needed} or newer; AMI al2023@{ami_release} "
                f"carries {available or 'an older driver than any tabled'}"
            )
    return problems
