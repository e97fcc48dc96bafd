"""Device plugins for Neuron devices and EFA interfaces."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_eks_v2 as eks

from constructs import Construct, IDependable
from neuron_platform import versions
from neuron_platform.k8s.helm_values import efa_device_plugin_values, neuron_chart_values


class NeuronDevicePlugins(Construct):
    """The Neuron Helm chart (device plugin, scheduler extension ``my-scheduler``,
    neuron-monitor, node problem detector) and, with ``efa=True``, the EFA device plugin
    restricted to EFA pools. Both pinned in :mod:`neuron_platform.versions`.

    The CDK's ``aws_eks`` helpers apply an old Neuron device-plugin manifest when an
    inf/trn *managed node group* is added; Neuron capacity here comes from Karpenter
    only, so the chart's plugin is the single one on every node.

    Example::

        NeuronDevicePlugins(self, "DevicePlugins", cluster=cluster, efa=True)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster,
        efa: bool,
        depends_on: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        neuron = versions.NEURON_CHART
        self.neuron_chart = cluster.add_helm_chart(
            "Neuron",
            chart=neuron.chart,
            repository=neuron.repository,
            version=neuron.version,
            namespace="kube-system",
            release="neuron",
            values=neuron_chart_values(),
        )
        self.efa_chart: eks.HelmChart | None = None
        if efa:
            plugin = versions.EFA_DEVICE_PLUGIN_CHART
            self.efa_chart = cluster.add_helm_chart(
                "Efa",
                chart=plugin.chart,
                repository=plugin.repository,
                version=plugin.version,
                namespace="kube-system",
                release="aws-efa-k8s-device-plugin",
                values=efa_device_plugin_values(),
            )
        self.charts: list[eks.HelmChart] = [c for c in (self.neuron_chart, self.efa_chart) if c is not None]
        for chart in self.charts:
            for dependency in depends_on:
                chart.node.add_dependency(dependency)
