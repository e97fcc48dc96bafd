"""A custom resource that makes sure no Karpenter instance outlives the cluster stack."""

from __future__ import annotations

from aws_cdk import CfnResource, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct
from neuron_platform.assets import IGNORED, runtime_asset
from neuron_platform.cluster.neuron_cluster import NeuronCluster, eks_cluster, literal_cluster_name
from neuron_platform.compliance import acknowledge_wildcard_resources, skip_checkov


def _teardown_wildcard_reason(resource: str) -> str:
    if resource == "*":
        return "ec2:DescribeInstances has no resource-level permissions."
    return (
        "Instance ids are unknown in advance; TerminateInstances is conditioned on this cluster's "
        "kubernetes.io/cluster tag and a karpenter.sh/nodepool tag."
    )


class KarpenterTeardown(Construct):
    """On stack delete, terminate and wait for every instance Karpenter launched for the cluster.

    Make the Karpenter controller chart depend on this resource: CloudFormation then
    deletes NodePools (Karpenter drains and terminates their nodes), then the
    controller, then this resource, which terminates anything left and waits, before
    roles, security groups and the VPC go. Given ``cluster``, the resource also depends on
    the cluster's ``AWS::EKS::Cluster`` resource, so it is deleted before the cluster.

    The handler is ``runtime_assets/karpenter_teardown/handler.py`` of the repository,
    shipped inside the installed package (see :mod:`neuron_platform.assets`); pass
    ``handler_code`` to deploy another one.

    :param cluster: the cluster (:class:`NeuronCluster` or ``aws_eks_v2.Cluster``); its name
        scopes the IAM policy. Or pass ``cluster_name`` alone.
    :param cluster_name: the cluster's name as a literal string (it goes into an IAM
        condition key). Default: the name the cluster was created with.

    Example::

        teardown = KarpenterTeardown(self, "Teardown", cluster=cluster, log_key=key)
        karpenter.controller_chart.node.add_dependency(teardown)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_key: kms.IKey,
        cluster: eks.Cluster | NeuronCluster | None = None,
        cluster_name: str | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        handler_code: lambda_.Code | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        cluster_name = literal_cluster_name(
            cluster, cluster_name, construct="KarpenterTeardown", reason="the IAM condition keys of its policy"
        )
        self.cluster_name = cluster_name
        stack = Stack.of(self)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, encryption_key=log_key, removal_policy=removal_policy
        )
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.log_group.grant_write(role)
        role.add_to_policy(iam.PolicyStatement(actions=["ec2:DescribeInstances"], resources=["*"]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ec2:TerminateInstances"],
                resources=[f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}:instance/*"],
                conditions={
                    "StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}": "owned"},
                    "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                },
            )
        )
        self.function = lambda_.Function(
            self,
            "Handler",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="handler.handler",
            code=handler_code
            or lambda_.Code.from_asset(str(runtime_asset("karpenter_teardown")), exclude=list(IGNORED)),
            timeout=Duration.minutes(15),
            memory_size=256,
            role=role,
            log_group=self.log_group,
            reserved_concurrent_executions=1,
            description=f"Terminates instances Karpenter left behind when {cluster_name}'s stack is deleted",
        )
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.function.function_arn,
            resource_type="Custom::KarpenterTeardown",
            properties={"ClusterName": cluster_name},
        )
        self.resource.node.add_dependency(role)
        # The L1 resource, not the construct: the construct's children include the Helm
        # charts, and the controller chart depends on this resource.
        cluster_resource = eks_cluster(cluster).node.default_child if cluster is not None else None
        if cluster_resource is not None:
            self.resource.node.add_dependency(cluster_resource)

        policy = role.node.find_child("DefaultPolicy")
        assert isinstance(policy, iam.Policy)
        acknowledge_wildcard_resources(policy, _teardown_wildcard_reason)
        handler = self.function.node.default_child
        assert isinstance(handler, CfnResource)
        skip_checkov(
            handler,
            "CKV_AWS_116",
            "Synchronous CloudFormation custom resource: the outcome is reported to the stack; nothing to dead-letter.",
        )
        skip_checkov(
            handler,
            "CKV_AWS_117",
            "Calls only the regional EC2 API during stack deletion; ENIs of a VPC-attached function would delay "
            "deleting the very VPC this teardown clears.",
        )
