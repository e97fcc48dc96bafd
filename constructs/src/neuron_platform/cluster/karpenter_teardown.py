"""A custom resource that makes sure no Karpenter instance outlives the cluster stack."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnResource, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct
from neuron_platform.compliance import acknowledge_wildcard_resources, skip_checkov

# runtime_assets/ at the top of this repository (see the design card); a copy of the
# construct library installed elsewhere passes ``handler_code`` instead.
_REPO_HANDLER = Path(__file__).resolve().parents[4] / "runtime_assets" / "karpenter_teardown"


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
    roles, security groups and the VPC go. The handler is
    ``runtime_assets/karpenter_teardown/handler.py``.

    Example::

        teardown = KarpenterTeardown(self, "Teardown", cluster_name="neuron", log_key=key)
        karpenter.controller_chart.node.add_dependency(teardown)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_name: str,
        log_key: kms.IKey,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        handler_code: lambda_.Code | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
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
            code=handler_code or lambda_.Code.from_asset(str(_REPO_HANDLER)),
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
