"""Installing pinned Helm charts through the cluster's kubectl provider."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_eks_v2 as eks

from neuron_platform.k8s.pod_security import namespace as namespace_manifest
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


def install_chart_in_own_namespace(
    cluster: eks.Cluster,
    construct_id: str,
    pinned: HelmChartVersion,
    *,
    release: str,
    namespace: str,
    namespace_id: str,
    values: dict[str, Any] | None = None,
    wait: bool | None = None,
    timeout: Duration | None = None,
) -> tuple[eks.KubernetesManifest, eks.HelmChart]:
    """A chart whose controllers get a namespace of their own, created first (manifest
    ``namespace_id``, Pod Security ``baseline``) so Pod Security Admission applies from the
    chart's first pod. Returns the namespace manifest and the chart."""
    created = cluster.add_manifest(namespace_id, namespace_manifest(namespace, enforce="baseline"))
    chart = install_chart(
        cluster,
        construct_id,
        pinned,
        release=release,
        namespace=namespace,
        create_namespace=True,
        values=values,
        wait=wait,
        timeout=timeout,
    )
    chart.node.add_dependency(created)
    return created, chart
