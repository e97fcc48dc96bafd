"""The AWS Load Balancer Controller with a Pod Identity role."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

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


def upstream_policy() -> dict[str, Any]:
    """The upstream IAM policy for the pinned controller version, as vendored (unmodified)."""
    name = f"aws-load-balancer-controller-{versions.LOAD_BALANCER_CONTROLLER_VERSION}.json"
    text = resources.files("neuron_platform.cluster").joinpath("policies", name).read_text()
    policy: dict[str, Any] = json.loads(text)
    return policy


def controller_policy_document(
    *, vpc_arn: str | None = None, cluster_name: str | None = None, region: str | None = None
) -> iam.PolicyDocument:
    """The upstream IAM policy, with its security-group statements scoped when the values are
    given (see :func:`scope_security_group_statements`)."""
    policy = upstream_policy()
    if vpc_arn is not None and cluster_name is not None and region is not None:
        policy = scope_security_group_statements(policy, vpc_arn=vpc_arn, cluster_name=cluster_name, region=region)
    return iam.PolicyDocument.from_json(policy)


# The upstream statements scoped below, by their actions (a future policy that drops or
# changes one fails loudly rather than leaving it unscoped).
_SG_RULES_ANY = frozenset({"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"})
_SG_RULES_OWNED = frozenset({*_SG_RULES_ANY, "ec2:DeleteSecurityGroup"})
_SG_CREATE = frozenset({"ec2:CreateSecurityGroup"})
_SG_TAG_ON_CREATE = frozenset({"ec2:CreateTags"})
_SG_RETAG = frozenset({"ec2:CreateTags", "ec2:DeleteTags"})
CLUSTER_TAG = "elbv2.k8s.aws/cluster"


def scope_security_group_statements(
    policy: dict[str, Any], *, vpc_arn: str, cluster_name: str, region: str
) -> dict[str, Any]:
    """The upstream policy with its security-group statements narrowed to this cluster.

    - adding and removing ingress rules on any group (upstream: ``Resource: *``, no
      condition): only groups of ``vpc_arn`` (``ec2:Vpc``), the upstream installation guide's
      recommendation ("we recommend to further scope down this configuration based on the VPC ID");
    - rules on and deletion of the groups the controller created: only in ``vpc_arn`` and only
      groups tagged ``elbv2.k8s.aws/cluster`` = ``cluster_name`` (upstream: tagged for any cluster);
    - tagging a group at creation and retagging it: the cluster tag must name this cluster;
    - creating groups: only in ``region`` (the VPC is chosen by the controller's ``vpcId``).
    """
    scoped = copy.deepcopy(policy)
    found: set[str] = set()
    sg_resource = "arn:aws:ec2:*:*:security-group/*"
    for statement in scoped["Statement"]:
        actions = statement["Action"]
        actions = frozenset([actions] if isinstance(actions, str) else actions)
        conditions: dict[str, dict[str, Any]] = statement.setdefault("Condition", {})
        if actions == _SG_RULES_ANY and not conditions:
            conditions["ArnEquals"] = {"ec2:Vpc": vpc_arn}
            found.add("rules on any group")
        elif actions == _SG_RULES_OWNED:
            conditions["ArnEquals"] = {"ec2:Vpc": vpc_arn}
            conditions.setdefault("StringEquals", {})[f"aws:ResourceTag/{CLUSTER_TAG}"] = cluster_name
            found.add("rules on its groups")
        elif actions == _SG_CREATE:
            conditions.setdefault("StringEquals", {})["aws:RequestedRegion"] = region
            found.add("create")
        elif actions == _SG_TAG_ON_CREATE and statement.get("Resource") == sg_resource:
            conditions.setdefault("StringEquals", {})[f"aws:RequestTag/{CLUSTER_TAG}"] = cluster_name
            found.add("tag on create")
        elif actions == _SG_RETAG and statement.get("Resource") == sg_resource:
            conditions.setdefault("StringEquals", {})[f"aws:ResourceTag/{CLUSTER_TAG}"] = cluster_name
            found.add("retag")
        if not conditions:
            del statement["Condition"]
    expected = {"rules on any group", "rules on its groups", "create", "tag on create", "retag"}
    if found != expected:
        raise ValueError(
            f"the vendored load balancer controller policy no longer has the security-group statements "
            f"this construct scopes: missing {sorted(expected - found)}; review scope_security_group_statements"
        )
    return scoped


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
        stack = Stack.of(self)
        self.policy = iam.Policy(
            self,
            "Policy",
            document=controller_policy_document(
                vpc_arn=stack.format_arn(service="ec2", resource="vpc", resource_name=vpc_id),
                cluster_name=cluster_name,
                region=stack.region,
            ),
        )
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
