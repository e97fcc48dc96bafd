"""The AWS Load Balancer Controller with a Pod Identity role."""

from __future__ import annotations

import json
from importlib import resources

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam

from constructs import Construct, IDependable
from neuron_platform import versions
from neuron_platform.cluster.helm import install_chart
from neuron_platform.cluster.neuron_cluster import NeuronCluster, cluster_name_of, eks_cluster
from neuron_platform.cluster.pod_identity import PodIdentityRole
from neuron_platform.compliance import acknowledge_wildcard_resources, skip_checkov
from neuron_platform.k8s.helm_values import load_balancer_controller_values

SERVICE_ACCOUNT = "aws-load-balancer-controller"


def controller_policy_document() -> iam.PolicyDocument:
    """The upstream IAM policy for the pinned controller version."""
    name = f"aws-load-balancer-controller-{versions.LOAD_BALANCER_CONTROLLER_VERSION}.json"
    text = resources.files("neuron_platform.cluster").joinpath("policies", name).read_text()
    return iam.PolicyDocument.from_json(json.loads(text))


def load_balancer_wildcard_reason(resource: str) -> str:
    """Why each wildcard in the upstream controller policy is needed."""
    if resource == "*":
        return (
            "Upstream policy: Describe*/Get* calls have no resource-level permissions; the controller's "
            "create/modify calls on resources it does not know in advance are conditioned on the "
            "elbv2.k8s.aws/cluster request or resource tag."
        )
    return (
        f"Upstream policy: {resource.split(':')[-1].split('/')[0]} ARNs are generated when the controller creates "
        "them; tag changes on them are conditioned on the elbv2.k8s.aws/cluster tag."
    )


class LoadBalancerController(Construct):
    """AWS Load Balancer Controller (Helm, pinned) for Ingress/Service load balancers.

    Runs on the system node group; its service account gets the upstream policy
    through EKS Pod Identity. Region and VPC are passed explicitly so the controller
    never needs the instance metadata service (nodes use hop limit 1).

    :param cluster: a :class:`NeuronCluster` or an ``aws_eks_v2.Cluster``; its name is the
        controller's ``clusterName`` setting (it tags and finds its load balancers by it).

    Example::

        LoadBalancerController(self, "Lbc", cluster=cluster, vpc_id=vpc.vpc_id)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster | NeuronCluster,
        vpc_id: str,
        depends_on: list[IDependable] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        cluster_name = cluster_name_of(cluster)
        cluster = eks_cluster(cluster)
        self.identity = PodIdentityRole(self, "Role", description=f"AWS Load Balancer Controller of {cluster_name}")
        self.policy = iam.Policy(self, "Policy", document=controller_policy_document())
        self.identity.role.attach_inline_policy(self.policy)
        acknowledge_wildcard_resources(self.policy, load_balancer_wildcard_reason)
        policy_resource = self.policy.node.default_child
        assert isinstance(policy_resource, CfnResource)
        skip_checkov(
            policy_resource,
            "CKV_AWS_111",
            "Upstream AWS Load Balancer Controller policy: writes on load balancers, target groups and security "
            "groups it creates are conditioned on the elbv2.k8s.aws/cluster tag; ids are unknown in advance.",
        )
        association = self.identity.associate(
            cluster_name=cluster.cluster_name, namespace="kube-system", service_account=SERVICE_ACCOUNT
        )
        self.chart = install_chart(
            cluster,
            "Chart",
            versions.LOAD_BALANCER_CONTROLLER_CHART,
            release="aws-load-balancer-controller",
            values=load_balancer_controller_values(
                cluster_name=cluster_name, region=Stack.of(self).region, vpc_id=vpc_id, service_account=SERVICE_ACCOUNT
            ),
        )
        self.chart.node.add_dependency(association)
        self.chart.node.add_dependency(self.policy)
        for dependency in depends_on or []:
            self.chart.node.add_dependency(dependency)
