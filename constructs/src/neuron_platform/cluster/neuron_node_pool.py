"""A Karpenter NodePool + EC2NodeClass for one group of Neuron capacity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam

from constructs import Construct, IDependable
from neuron_platform.capacity import PoolPlan
from neuron_platform.cluster.neuron_cluster import NeuronCluster, eks_cluster
from neuron_platform.k8s import Manifest
from neuron_platform.k8s.karpenter import ec2_node_class, node_pool


class NeuronNodePool(Construct):
    """Neuron capacity managed by Karpenter, from a :class:`~neuron_platform.capacity.PoolPlan`.

    EFA pools get a cluster placement group created here, the EFA security group, and
    only the subnet of their zone; other pools may span every node subnet.

    ``cluster``: a :class:`NeuronCluster` or an ``aws_eks_v2.Cluster``.

    Example::

        plan = plan_pool(pool_config)
        NeuronNodePool(
            self, "Trn1", cluster=cluster, plan=plan, node_role=karpenter.node_role,
            subnets=[network.node_subnet_in("us-east-1a")],
            security_group_ids=[cluster.cluster_security_group_id, efa.security_group_id],
            depends_on=[karpenter.controller_chart],
        )
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster | NeuronCluster,
        plan: PoolPlan,
        node_role: iam.IRole,
        subnets: Sequence[ec2.ISubnet],
        security_group_ids: Sequence[str],
        depends_on: Sequence[IDependable] = (),
        tags: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        cluster = eks_cluster(cluster)
        self.plan = plan
        self.placement_group: ec2.CfnPlacementGroup | None = None
        if plan.efa:
            # One cluster placement group per EFA pool: low-latency, full-bisection EFA.
            self.placement_group = ec2.CfnPlacementGroup(self, "PlacementGroup", strategy="cluster")
        self.node_class: Manifest = ec2_node_class(
            plan,
            node_role=node_role.role_name,
            subnet_ids=[s.subnet_id for s in subnets],
            security_group_ids=list(security_group_ids),
            placement_group_name=self.placement_group.ref if self.placement_group else None,
            tags=tags,
        )
        self.node_pool: Manifest = node_pool(plan)
        # One manifest: the class and the pool are created together and, on delete,
        # the pool (and its nodes) go before the class.
        self.manifest = cluster.add_manifest(f"Pool-{plan.name}", self.node_class, self.node_pool)
        for dependency in depends_on:
            self.manifest.node.add_dependency(dependency)
