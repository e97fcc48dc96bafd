"""IAM roles for EKS worker nodes (managed node groups and Karpenter nodes)."""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from constructs import Construct
from neuron_platform.compliance import acknowledge_managed_policies

# No CNI policy: aws-node gets its own Pod Identity role (see NeuronCluster).
NODE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)
NODE_POLICY_REASON = (
    "AWS-maintained EKS node policies (kubelet registration, image pulls, SSM Session Manager instead of SSH); "
    "they track EKS changes, which a copied inline policy would not."
)


def node_role(scope: Construct, construct_id: str, *, description: str) -> iam.Role:
    """A role EC2 worker nodes assume, with the AWS-maintained EKS node policies."""
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
        description=description,
        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(n) for n in NODE_MANAGED_POLICIES],
    )
    acknowledge_managed_policies(role, NODE_MANAGED_POLICIES, NODE_POLICY_REASON)
    return role
