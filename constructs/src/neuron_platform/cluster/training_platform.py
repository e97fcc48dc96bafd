"""Multi-node training on EFA pools: Kubeflow Trainer, a Neuron runtime per pool, hugepages."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam

from constructs import Construct, IDependable
from neuron_platform import versions
from neuron_platform.capacity import PoolPlan
from neuron_platform.cluster.helm import install_chart_in_own_namespace
from neuron_platform.cluster.neuron_cluster import NeuronCluster, eks_cluster
from neuron_platform.cluster.pod_identity import PodIdentityRole
from neuron_platform.compliance import acknowledge_wildcard_resources
from neuron_platform.k8s.helm_values import kubeflow_trainer_values
from neuron_platform.k8s.training import (
    TRAINING_SERVICE_ACCOUNT,
    hugepages_overlay,
    neuron_training_runtime,
    training_network_policies,
    training_service_account,
)

# The Trainer's and JobSet's controllers and webhooks.
TRAINER_NAMESPACE = "kubeflow-system"


def compile_cache_statements(compile_cache_url: str, stack: Stack) -> list[iam.PolicyStatement]:
    """Read/write on the objects under the cache prefix of ``s3://bucket/prefix`` and listing
    below it, only while the bucket belongs to this stack's account (``s3:ResourceAccount``):
    a bucket name that someone else owns, or later takes over, gets nothing.

    The prefix is a folder: ``s3://b/cache`` grants ``cache/*``, never ``cache-other/...``.
    """
    bucket, _, prefix = compile_cache_url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    owner = {"StringEquals": {"s3:ResourceAccount": stack.account}}
    objects = f"{prefix}/*" if prefix else "*"
    bucket_arn = f"arn:{stack.partition}:s3:::{bucket}"
    list_conditions: dict[str, object] = dict(owner)
    if prefix:
        list_conditions["StringLike"] = {"s3:prefix": [f"{prefix}/*"]}
    return [
        iam.PolicyStatement(
            sid="CompileCacheObjects",
            actions=["s3:GetObject", "s3:PutObject"],
            resources=[f"{bucket_arn}/{objects}"],
            conditions=owner,
        ),
        iam.PolicyStatement(
            sid="CompileCacheList", actions=["s3:ListBucket"], resources=[bucket_arn], conditions=list_conditions
        ),
    ]


class TrainingPlatform(Construct):
    """Kubeflow Trainer v2 (with JobSet) plus, for every EFA training pool, a Karpenter
    NodeOverlay declaring its hugepages and a ``ClusterTrainingRuntime`` named
    ``neuronx-<pool>`` that runs torchrun over whole nodes of that pool.

    Each runtime runs its pool's training image (the pool's Neuron SDK, see
    :mod:`neuron_platform.neuron_stack`) unless ``image`` overrides it for every pool.
    Pass ``node_overlay=True`` to :class:`Karpenter` so the overlays take effect, and
    ``shared_claim`` (a :class:`LustreVolume` claim) to mount shared storage at ``/fsx``.

    ``cluster``: a :class:`NeuronCluster` or an ``aws_eks_v2.Cluster``.

    Example::

        TrainingPlatform(
            self, "Training", cluster=cluster, pools=[plan_pool(p) for p in efa_pools],
            depends_on=[karpenter.controller_chart],
        )
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster | NeuronCluster,
        pools: Sequence[PoolPlan],
        image: str | None = None,
        namespace: str = "training",
        compile_cache_url: str | None = None,
        shared_claim: str | None = None,
        depends_on: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        cluster = eks_cluster(cluster)
        # Training pods' identity: read/write the compile cache, nothing else.
        self.identity = PodIdentityRole(self, "Role", description=f"Neuron training pods in namespace {namespace}")
        if compile_cache_url:
            for statement in compile_cache_statements(compile_cache_url, Stack.of(self)):
                self.identity.role.add_to_policy(statement)
            policy = self.identity.role.node.find_child("DefaultPolicy")
            assert isinstance(policy, iam.Policy)
            acknowledge_wildcard_resources(
                policy,
                lambda resource: (
                    "Objects under the configured compile-cache prefix only, in a bucket of this account; the "
                    "Neuron compiler names cache entries by graph hash, unknown in advance."
                ),
            )
        self.association = self.identity.associate(
            cluster_name=cluster.cluster_name, namespace=namespace, service_account=TRAINING_SERVICE_ACCOUNT
        )
        self.trainer_namespace, self.trainer_chart = install_chart_in_own_namespace(
            cluster,
            "KubeflowTrainer",
            versions.KUBEFLOW_TRAINER_CHART,
            release="kubeflow-trainer",
            namespace=TRAINER_NAMESPACE,
            namespace_id="KubeflowNamespace",
            values=kubeflow_trainer_values(),
            # The runtimes below need the Trainer CRDs and its webhook ready.
            wait=True,
        )
        for dependency in depends_on:
            self.trainer_chart.node.add_dependency(dependency)
            self.trainer_namespace.node.add_dependency(dependency)
        self.service_account = cluster.add_manifest("TrainingServiceAccount", training_service_account(namespace))
        self.service_account.node.add_dependency(self.association)
        # Default deny plus the traffic a job needs (see training_network_policies).
        self.network_policies = cluster.add_manifest("TrainingNetworkPolicies", *training_network_policies(namespace))
        for dependency in depends_on:
            self.service_account.node.add_dependency(dependency)
            self.network_policies.node.add_dependency(dependency)
        self.manifests: dict[str, eks.KubernetesManifest] = {}
        for plan in pools:
            if not plan.efa:
                raise ValueError(f"pool {plan.name} has no EFA; multi-node training runtimes need EFA pools")
            manifest = cluster.add_manifest(
                f"Training-{plan.name}",
                hugepages_overlay(plan),
                neuron_training_runtime(
                    plan,
                    image=image or plan.neuron.image("training"),
                    compile_cache_url=compile_cache_url,
                    shared_claim=shared_claim,
                ),
            )
            manifest.node.add_dependency(self.trainer_chart)
            for dependency in depends_on:
                manifest.node.add_dependency(dependency)
            self.manifests[plan.name] = manifest
