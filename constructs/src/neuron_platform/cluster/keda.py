"""KEDA: event-driven autoscaling, here reading vLLM's metrics from the Prometheus workspace."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam

from constructs import Construct, IDependable
from neuron_platform import versions
from neuron_platform.cluster.helm import install_chart_in_own_namespace
from neuron_platform.cluster.neuron_cluster import NeuronCluster, cluster_name_of, eks_cluster
from neuron_platform.cluster.pod_identity import PodIdentityRole
from neuron_platform.k8s.helm_values import keda_values

NAMESPACE = "keda"
# The chart's default name for the operator's service account; the operator runs the scalers.
OPERATOR_SERVICE_ACCOUNT = "keda-operator"


class Keda(Construct):
    """KEDA (Helm, pinned) on the system nodes, with a read-only path to one Prometheus workspace.

    The operator's service account gets, through EKS Pod Identity, ``aps:QueryMetrics``
    and ``aps:GetLabels``/``GetSeries``/``GetMetricMetadata`` on ``workspace_arn`` and
    nothing else. Serving namespaces hold their own ``aws-pod-identity`` TriggerAuthentication
    (namespaced, not cluster-wide), through which their ScaledObjects' prometheus triggers
    sign queries with those credentials; KEDA reads no Secrets outside its namespace.

    :param cluster: a :class:`NeuronCluster` or an ``aws_eks_v2.Cluster``; its name goes into
        the role's description.

    Example::

        keda = Keda(self, "Keda", cluster=cluster, workspace_arn=metrics.workspace_arn)
        EksEndpoint(..., metrics_query_url=metrics.query_url, depends_on=[keda.chart])
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster | NeuronCluster,
        workspace_arn: str,
        depends_on: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        cluster_name = cluster_name_of(cluster)
        cluster = eks_cluster(cluster)
        self.identity = PodIdentityRole(
            self, "Role", description=f"KEDA operator of {cluster_name}: reads the Prometheus workspace"
        )
        self.identity.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["aps:QueryMetrics", "aps:GetLabels", "aps:GetSeries", "aps:GetMetricMetadata"],
                resources=[workspace_arn],
            )
        )
        association = self.identity.associate(
            cluster_name=cluster.cluster_name, namespace=NAMESPACE, service_account=OPERATOR_SERVICE_ACCOUNT
        )
        self.namespace, self.chart = install_chart_in_own_namespace(
            cluster,
            "KedaChart",
            versions.KEDA_CHART,
            release="keda",
            namespace=NAMESPACE,
            namespace_id="KedaNamespace",
            values=keda_values(),
        )
        # The role must be assumable before the operator starts its first query.
        self.chart.node.add_dependency(association)
        for dependency in depends_on:
            self.chart.node.add_dependency(dependency)
            self.namespace.node.add_dependency(dependency)
