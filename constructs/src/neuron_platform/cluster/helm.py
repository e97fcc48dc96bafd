"""Installing pinned Helm charts through the cluster's kubectl provider."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_eks_v2 as eks

from neuron_platform.versions import HelmChartVersion


def install_chart(
    cluster: eks.Cluster,
    construct_id: str,
    pinned: HelmChartVersion,
    *,
    release: str,
    namespace: str = "kube-system",
    create_namespace: bool | None = None,
    values: dict[str, Any] | None = None,
    skip_crds: bool | None = None,
    wait: bool | None = None,
    timeout: Duration | None = None,
) -> eks.HelmChart:
    """``cluster.add_helm_chart`` with the chart, repository and version from :mod:`versions`."""
    return cluster.add_helm_chart(
        construct_id,
        chart=pinned.chart,
        repository=pinned.repository,
        version=pinned.version,
        namespace=namespace,
        create_namespace=create_namespace,
        release=release,
        values=values,
        skip_crds=skip_crds,
        wait=wait,
        timeout=timeout,
    )
