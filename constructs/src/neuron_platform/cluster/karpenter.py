"""Karpenter on EKS: controller, IAM, interruption handling and the node role."""

from __future__ import annotations

from aws_cdk import CfnResource, Duration, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from neuron_platform import versions
from neuron_platform.cluster.helm import install_chart
from neuron_platform.cluster.neuron_cluster import NeuronCluster, eks_cluster, literal_cluster_name
from neuron_platform.cluster.node_role import node_role
from neuron_platform.cluster.pod_identity import PodIdentityRole
from neuron_platform.compliance import (
    acknowledge_nag,
    acknowledge_wildcard_resources,
    skip_checkov,
)
from neuron_platform.k8s.helm_values import karpenter_values

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"

# The five event sources Karpenter reacts to (upstream getting-started template).
INTERRUPTION_EVENTS: dict[str, tuple[str, str]] = {
    "ScheduledChange": ("aws.health", "AWS Health Event"),
    "SpotInterruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "Rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "InstanceStateChange": ("aws.ec2", "EC2 Instance State-change Notification"),
    "CapacityReservationInterruption": ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
}


class Karpenter(Construct):
    """Karpenter installed from its pinned CRD and controller charts.

    The controller runs on the system node group, assumes a Pod Identity role with the
    upstream least-privilege policy scoped to this cluster's tags, and reads an SQS
    interruption queue (SSE, TLS only) fed by five EventBridge rules. Nodes it launches
    use ``node_role``, admitted to the cluster by an ``EC2_LINUX`` access entry.
    ``node_overlay`` and ``static_capacity`` switch on those (alpha) feature gates.

    :param cluster: a :class:`NeuronCluster` or an ``aws_eks_v2.Cluster``.
    :param cluster_name: the cluster's name as a literal string: it goes into the IAM
        condition keys of the controller policy (which cannot hold a token) and Karpenter's
        settings. Default: the name the cluster was created with; pass it only for a
        cluster created without ``cluster_name``.

    Example::

        karpenter = Karpenter(self, "Karpenter", cluster=cluster)  # cluster: NeuronCluster
        karpenter.controller_chart   # depend on it before applying NodePools
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster | NeuronCluster,
        cluster_name: str | None = None,
        node_overlay: bool = False,
        static_capacity: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        cluster_name = literal_cluster_name(
            cluster, cluster_name, construct="Karpenter", reason="the IAM condition keys of the controller policy"
        )
        cluster = eks_cluster(cluster)
        self.cluster_name = cluster_name
        self.node_role = node_role(
            self, "NodeRole", description=f"Nodes Karpenter launches in EKS cluster {cluster_name}"
        )
        self.node_access_entry = eks.CfnAccessEntry(
            self,
            "NodeAccessEntry",
            cluster_name=cluster.cluster_name,
            principal_arn=self.node_role.role_arn,
            type="EC2_LINUX",
        )

        self.queue = sqs.Queue(
            self,
            "InterruptionQueue",
            retention_period=Duration.seconds(300),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        acknowledge_nag(
            self.queue,
            "AwsSolutions-SQS3",
            "Karpenter's interruption queue carries short-lived EC2/Health notices (300 s retention, as upstream); "
            "the controller deletes what it cannot act on, so a dead-letter queue would only collect stale notices.",
        )
        queue_resource = self.queue.node.default_child
        assert isinstance(queue_resource, CfnResource)
        skip_checkov(
            queue_resource,
            "CKV_AWS_27",
            "Encrypted at rest with SQS-managed SSE (SqsManagedSseEnabled), as in Karpenter's upstream template; "
            "EventBridge delivers to it without the key-policy grants a customer-managed key would need.",
        )
        self.rules: dict[str, events.Rule] = {}
        for name, (source, detail_type) in INTERRUPTION_EVENTS.items():
            self.rules[name] = events.Rule(
                self,
                f"{name}Rule",
                description=f"Karpenter interruption handling: {detail_type}",
                event_pattern=events.EventPattern(source=[source], detail_type=[detail_type]),
                targets=[targets.SqsQueue(self.queue)],
            )

        self.controller = PodIdentityRole(self, "ControllerRole", description=f"Karpenter controller of {cluster_name}")
        self.controller_policy = iam.Policy(
            self,
            "ControllerPolicy",
            statements=controller_statements(
                Stack.of(self), cluster_name, self.node_role.role_arn, self.queue.queue_arn, cluster.cluster_arn
            ),
        )
        self.controller.role.attach_inline_policy(self.controller_policy)
        acknowledge_wildcard_resources(self.controller_policy, karpenter_wildcard_reason)
        self.association = self.controller.associate(
            cluster_name=cluster.cluster_name, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT
        )

        self.crd_chart = install_chart(
            cluster, "KarpenterCrds", versions.KARPENTER_CRD_CHART, release="karpenter-crd", namespace=NAMESPACE
        )
        self.controller_chart = install_chart(
            cluster,
            "Karpenter",
            versions.KARPENTER_CHART,
            release="karpenter",
            namespace=NAMESPACE,
            # CRDs come from the karpenter-crd chart, which (unlike a chart's crds/ folder) Helm upgrades.
            skip_crds=True,
            values=karpenter_values(
                cluster_name=cluster_name,
                interruption_queue=self.queue.queue_name,
                service_account=SERVICE_ACCOUNT,
                node_overlay=node_overlay,
                static_capacity=static_capacity,
            ),
            wait=True,
            timeout=Duration.minutes(10),
        )
        for dependency in (self.crd_chart, self.association, self.node_access_entry, self.controller_policy):
            self.controller_chart.node.add_dependency(dependency)


def karpenter_wildcard_reason(resource: str) -> str:
    """Why each wildcard in the upstream controller policy is needed."""
    if resource == "*":
        return (
            "EC2 Describe*, pricing:GetProducts and iam:ListInstanceProfiles support no resource-level "
            "permissions; the EC2 reads are conditioned on aws:RequestedRegion."
        )
    kind = resource.split(":")[-1].split("/")[0]
    if kind in {"image", "snapshot", "security-group", "subnet", "capacity-reservation", "placement-group"}:
        return (
            f"RunInstances/CreateFleet must reference the {kind} chosen by the EC2NodeClass selectors; "
            "the launch itself is only allowed with this cluster's request tags."
        )
    if kind in {"instance", "launch-template", "fleet", "volume", "network-interface", "spot-instances-request"}:
        return (
            f"Karpenter creates each {kind} with a generated id; creation needs this cluster's request tags and "
            "later actions this cluster's resource tags (kubernetes.io/cluster/<name>=owned, karpenter.sh/nodepool)."
        )
    if kind == "instance-profile":
        return (
            "Karpenter names the instance profiles it creates per EC2NodeClass; every action is conditioned on "
            "this cluster's and region's tags."
        )
    if kind == "parameter":
        return "Read-only access to the public AWS-owned /aws/service/* parameters (AMI ids for the alias)."
    raise ValueError(f"no reason recorded for wildcard resource {resource}")


def controller_statements(
    stack: Stack, cluster_name: str, node_role_arn: str, queue_arn: str, cluster_arn: str
) -> list[iam.PolicyStatement]:
    """The upstream Karpenter controller policy (v1.14 getting-started template), scoped to one cluster."""
    p, region, account = stack.partition, stack.region, stack.account
    ec2_arn = f"arn:{p}:ec2:{region}"
    owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}": "owned"}
    request_owned = {
        f"aws:RequestTag/kubernetes.io/cluster/{cluster_name}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": cluster_name,
    }
    tagged_resources = [
        f"{ec2_arn}:*:{kind}/*"
        for kind in ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")
    ]
    instance_profile = f"arn:{p}:iam::{account}:instance-profile/*"
    return [
        iam.PolicyStatement(
            sid="AllowScopedEC2InstanceAccessActions",
            actions=["ec2:RunInstances", "ec2:CreateFleet"],
            resources=[
                f"{ec2_arn}::image/*",
                f"{ec2_arn}::snapshot/*",
                f"{ec2_arn}:*:security-group/*",
                f"{ec2_arn}:*:subnet/*",
                f"{ec2_arn}:*:capacity-reservation/*",
                f"{ec2_arn}:*:placement-group/*",
            ],
        ),
        iam.PolicyStatement(
            sid="AllowScopedEC2LaunchTemplateAccessActions",
            actions=["ec2:RunInstances", "ec2:CreateFleet"],
            resources=[f"{ec2_arn}:*:launch-template/*"],
            conditions={"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}},
        ),
        iam.PolicyStatement(
            sid="AllowScopedEC2InstanceActionsWithTags",
            actions=["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            resources=tagged_resources,
            conditions={"StringEquals": request_owned, "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}},
        ),
        iam.PolicyStatement(
            sid="AllowScopedResourceCreationTagging",
            actions=["ec2:CreateTags"],
            resources=tagged_resources,
            conditions={
                "StringEquals": {
                    **request_owned,
                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                },
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedResourceTagging",
            actions=["ec2:CreateTags"],
            resources=[f"{ec2_arn}:*:instance/*"],
            conditions={
                "StringEquals": owned,
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                },
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedDeletion",
            actions=["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            resources=[f"{ec2_arn}:*:instance/*", f"{ec2_arn}:*:launch-template/*"],
            conditions={"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}},
        ),
        iam.PolicyStatement(
            sid="AllowPassingInstanceRole",
            actions=["iam:PassRole"],
            resources=[node_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileCreationActions",
            actions=["iam:CreateInstanceProfile"],
            resources=[instance_profile],
            conditions={
                "StringEquals": {**request_owned, "aws:RequestTag/topology.kubernetes.io/region": region},
                "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileTagActions",
            actions=["iam:TagInstanceProfile"],
            resources=[instance_profile],
            conditions={
                "StringEquals": {
                    **owned,
                    "aws:ResourceTag/topology.kubernetes.io/region": region,
                    **request_owned,
                    "aws:RequestTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {
                    "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                    "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
                },
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileActions",
            actions=["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
            resources=[instance_profile],
            conditions={
                "StringEquals": {**owned, "aws:ResourceTag/topology.kubernetes.io/region": region},
                "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowInstanceProfileReadActions", actions=["iam:GetInstanceProfile"], resources=[instance_profile]
        ),
        iam.PolicyStatement(
            sid="AllowAPIServerEndpointDiscovery", actions=["eks:DescribeCluster"], resources=[cluster_arn]
        ),
        iam.PolicyStatement(
            sid="AllowInterruptionQueueActions",
            actions=["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            resources=[queue_arn],
        ),
        iam.PolicyStatement(
            sid="AllowRegionalReadActions",
            actions=[
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
            ],
            resources=["*"],
            conditions={"StringEquals": {"aws:RequestedRegion": region}},
        ),
        iam.PolicyStatement(
            sid="AllowSSMReadActions",
            actions=["ssm:GetParameter"],
            resources=[f"arn:{p}:ssm:{region}::parameter/aws/service/*"],
        ),
        iam.PolicyStatement(sid="AllowPricingReadActions", actions=["pricing:GetProducts"], resources=["*"]),
        iam.PolicyStatement(
            sid="AllowUnscopedInstanceProfileListAction", actions=["iam:ListInstanceProfiles"], resources=["*"]
        ),
    ]
