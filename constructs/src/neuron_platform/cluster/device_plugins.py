"""Device plugins for Neuron devices and EFA interfaces."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_eks_v2 as eks

from constructs import Construct, IDependable
from neuron_platform import facts, versions
from neuron_platform.cluster.helm import install_chart
from neuron_platform.cluster.neuron_cluster import NeuronCluster, eks_cluster
from neuron_platform.k8s.helm_values import efa_device_plugin_values, neuron_chart_values
from neuron_platform.k8s.neuron_monitor import (
    healthcheck_namespace,
    healthcheck_network_policies,
    neuron_monitor_daemonset,
    neuron_monitor_namespace,
    neuron_monitor_network_policies,
)


class NeuronDevicePlugins(Construct):
    """The Neuron Helm chart (device plugin, scheduler extension ``my-scheduler``, node
    problem detector), neuron-monitor as the Neuron SDK ships it (a DaemonSet on every
    Neuron node) and, with ``efa=True``, the EFA device plugin restricted to EFA pools.
    Versions pinned in :mod:`neuron_platform.versions`.

    The chart puts its node problem detector in ``neuron-healthcheck-system`` but does not
    create that namespace: it is applied first, with neuron-monitor's. Both namespaces admit
    privileged pods (Pod Security Admission ``privileged``, warning at baseline: the detector
    mounts host paths, neuron-monitor runs privileged) and deny all traffic but what their
    pods need: with ``scraper_cidrs`` (the managed Prometheus collector's address blocks),
    the scrape of their exporters; the detector also reaches DNS and HTTPS (the API server).

    The CDK's ``aws_eks`` helpers apply an old Neuron device-plugin manifest when an
    inf/trn *managed node group* is added; Neuron capacity here comes from Karpenter
    only, so the chart's plugin is the single one on every node.

    ``cluster``: a :class:`NeuronCluster` or an ``aws_eks_v2.Cluster``.

    Example::

        NeuronDevicePlugins(self, "DevicePlugins", cluster=cluster, efa=True)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster | NeuronCluster,
        efa: bool,
        scraper_cidrs: Sequence[str] = (),
        depends_on: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        cluster = eks_cluster(cluster)
        self.namespaces = cluster.add_manifest("NeuronNamespaces", healthcheck_namespace(), neuron_monitor_namespace())
        self.network_policies = cluster.add_manifest(
            "NeuronNetworkPolicies",
            *healthcheck_network_policies(scraper_cidrs),
            *neuron_monitor_network_policies(scraper_cidrs),
        )
        self.network_policies.node.add_dependency(self.namespaces)
        self.neuron_chart = install_chart(
            cluster,
            "Neuron",
            versions.NEURON_CHART,
            release="neuron",
            values=neuron_chart_values(kube_scheduler_image=versions.NEURON_CUSTOM_SCHEDULER_IMAGE),
        )
        self.neuron_chart.node.add_dependency(self.namespaces)
        self.neuron_monitor = cluster.add_manifest(
            "NeuronMonitor", neuron_monitor_daemonset(sorted(facts.INSTANCE_TYPES))
        )
        self.neuron_monitor.node.add_dependency(self.namespaces)
        self.efa_chart: eks.HelmChart | None = None
        if efa:
            self.efa_chart = install_chart(
                cluster,
                "Efa",
                versions.EFA_DEVICE_PLUGIN_CHART,
                release="aws-efa-k8s-device-plugin",
                values=efa_device_plugin_values(),
            )
        self.charts: list[eks.HelmChart] = [c for c in (self.neuron_chart, self.efa_chart) if c is not None]
        for chart in [*self.charts, self.namespaces, self.network_policies]:
            for dependency in depends_on:
                chart.node.add_dependency(dependency)
