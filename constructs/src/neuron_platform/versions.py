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
- Kueue 0.19.2, chart 0.19.2 (kubernetes-sigs/kueue v0.19.2; CRDs and chart vendored in tests/).
- KEDA 2.20.2, chart 2.20.2 (kedacore/charts v2.20.2; 2.21 has no citable source yet).
- AWS Load Balancer Controller v3.2.2, chart 3.2.2 (the newest pairing aws-cdk-lib 2.275
  ships, with its IAM policy, vendored in cluster/policies/).
- The Neuron stack (AMI releases, Neuron SDK releases, container image tags, the rules
  between them) is not typed here: it comes from the upstream files in data/neuron/
  (neuron_data.py) and is resolved per pool (neuron_stack.py).
"""

from __future__ import annotations

from dataclasses import dataclass

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
# The Neuron scheduler extension's kube-scheduler ("my-scheduler"), built for the cluster's
# minor: the chart's default is v1.31.12, five minors from the control plane, where
# Kubernetes supports one. v1.36.3 is the Kubernetes release of the kubectl in the pinned
# kubectl layer (a test reads the layer's kubectl version).
NEURON_CUSTOM_SCHEDULER_IMAGE = "registry.k8s.io/kube-scheduler:v1.36.3"
EFA_DEVICE_PLUGIN_CHART = HelmChartVersion(
    chart="aws-efa-k8s-device-plugin", repository="https://aws.github.io/eks-charts", version="0.5.30"
)
LOAD_BALANCER_CONTROLLER_VERSION = "v3.2.2"
LOAD_BALANCER_CONTROLLER_CHART = HelmChartVersion(
    chart="aws-load-balancer-controller", repository="https://aws.github.io/eks-charts", version="3.2.2"
)
# KEDA scales EKS endpoints on vLLM metrics read from the Prometheus workspace (its
# prometheus scaler signs AMP queries with SigV4). Chart versions track the app version.
# KEDA 2.21.0 is not in any source this repository can cite (the
# kedacore/charts and kedacore/keda snapshots end at v2.20.2, 2026-07-31), so the chart is
# 2.20.2 (vendored in tests/charts/keda-2.20.2 with its SOURCE.txt). KEDA tests 2.20 on
# Kubernetes 1.33-1.35 and 2.21 on 1.34-1.36 (keda.sh "Cluster" docs): move to 2.21 once
# its chart can be vendored.
KEDA_CHART = HelmChartVersion(chart="keda", repository="https://kedacore.github.io/charts", version="2.20.2")

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


# Neuron container images: only their repositories are named here. Which tag a pool runs
# (serving, training, compile) follows from its Neuron SDK release and the vendored upstream
# data (neuron_data.py, data/neuron/SOURCE.txt); see neuron_stack.py.
NEURON_IMAGE_REGISTRY = "public.ecr.aws/neuron"
# vLLM on Neuron: NxD Inference based (vllm-neuronx) up to SDK 2.31, the vllm-neuron plugin after.
SERVING_IMAGE_REPOSITORY = "pytorch-inference-vllm-neuronx"
# The PyTorch training DLC: NxD Training, EFA/libfabric, torchrun, the Neuron tools.
TRAINING_IMAGE_REPOSITORY = "pytorch-training-neuronx"
# SageMaker serving: the Hugging Face vLLM Neuron DLC (optimum-neuron), hosted by AWS in
# account 763104351884 in most commercial regions.
SAGEMAKER_SERVING_IMAGE_REPOSITORY = "huggingface-vllm-inference-neuronx"
DLC_ACCOUNT = "763104351884"

# Distributed training: Kubeflow Trainer v2 (TrainJob / ClusterTrainingRuntime). The chart
# installs JobSet as a dependency (Trainer v2.3.0 builds against JobSet v0.12.0).
# Source: kubeflow/trainer v2.3.0 release, chart oci://ghcr.io/kubeflow/charts/kubeflow-trainer.
KUBEFLOW_TRAINER_CHART = HelmChartVersion(
    chart="kubeflow-trainer", repository="oci://ghcr.io/kubeflow/charts/kubeflow-trainer", version="2.3.0"
)
JOBSET_VERSION = "0.12.0"
# The image the JobSet 0.12.0 release publishes (its packaging step writes it into the chart).
JOBSET_IMAGE = f"registry.k8s.io/jobset/jobset:v{JOBSET_VERSION}"

# Gang admission for TrainJobs: Kueue admits a whole job (every pod's quota) or none of it,
# and places EFA jobs by network topology. v0.19.2 (kubernetes-sigs/kueue tag v0.19.2, built
# against Kubernetes 1.36 APIs); the published chart's packaging step
# (hack/helm-chart-package.sh) names the release image, which the values pin explicitly.
KUEUE_VERSION = "0.19.2"
KUEUE_CHART = HelmChartVersion(
    chart="kueue", repository="oci://registry.k8s.io/kueue/charts/kueue", version=KUEUE_VERSION
)
KUEUE_IMAGE_REPOSITORY = "registry.k8s.io/kueue/kueue"
KUEUE_IMAGE = f"{KUEUE_IMAGE_REPOSITORY}:v{KUEUE_VERSION}"

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

# Fetches precompiled artifacts from S3 in the EKS serving pods' init container.
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.32.9"
