"""Gang admission for TrainJobs: Kueue with one queue per training pool."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_eks_v2 as eks

from constructs import Construct, IDependable
from neuron_platform import versions
from neuron_platform.admission import TrainingQueue, training_queues
from neuron_platform.capacity import PoolPlan
from neuron_platform.cluster.helm import install_chart_in_own_namespace
from neuron_platform.cluster.neuron_cluster import NeuronCluster, eks_cluster
from neuron_platform.k8s.helm_values import kueue_values
from neuron_platform.k8s.kueue import KUEUE_NAMESPACE, admission_objects


class GangAdmission(Construct):
    """Kueue (pinned in :mod:`versions`) on the system nodes, admitting whole TrainJobs.

    For every EFA training pool in ``pools`` (the pools with a ``neuronx-<pool>`` runtime):
    a ResourceFlavor for its nodes, a ClusterQueue whose nominal quota is the pool's capacity
    (see :mod:`neuron_platform.admission`) and a LocalQueue ``neuron-<pool>`` in
    ``namespace``. Pools placed by network topology (EFA, static capacity, types EC2 reports a
    topology for) share the ``neuron-network`` Topology. Kueue admits a TrainJob labelled
    ``kueue.x-k8s.io/queue-name: neuron-<pool>`` only when all its pods fit, and requeues it
    if they are not all running within ``waitForPodsReady``'s timeout.

    ``depends_on``: what must exist first (the system nodes; the namespace when it is not
    ``default``).

    ``cluster``: a :class:`NeuronCluster` or an ``aws_eks_v2.Cluster``.

    Example::

        GangAdmission(
            self, "GangAdmission", cluster=cluster, pools=[plan_pool(p) for p in training_pools],
            namespace="training", depends_on=[system_nodegroup, namespace_manifest],
        )
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster | NeuronCluster,
        pools: Sequence[PoolPlan],
        namespace: str = "default",
        depends_on: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        cluster = eks_cluster(cluster)
        self.queues: list[TrainingQueue] = training_queues(pools)
        if not self.queues:
            raise ValueError("GangAdmission needs at least one EFA training pool (the pools with training runtimes)")
        self.namespace, self.chart = install_chart_in_own_namespace(
            cluster,
            "Kueue",
            versions.KUEUE_CHART,
            release="kueue",
            namespace=KUEUE_NAMESPACE,
            namespace_id="KueueNamespace",
            values=kueue_values(),
            # The queues below need Kueue's CRDs and its webhook serving.
            wait=True,
            timeout=Duration.minutes(10),
        )
        for dependency in depends_on:
            self.chart.node.add_dependency(dependency)
            self.namespace.node.add_dependency(dependency)
        self.manifest = cluster.add_manifest("KueueQueues", *admission_objects(self.queues, namespace=namespace))
        self.manifest.node.add_dependency(self.chart)
        for dependency in depends_on:
            self.manifest.node.add_dependency(dependency)
