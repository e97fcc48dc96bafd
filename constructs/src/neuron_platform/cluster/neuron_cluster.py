"""The EKS control plane, system node group and managed add-ons of a Neuron cluster."""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from aws_cdk import CfnCondition, CfnResource, RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct, IConstruct
from neuron_platform import versions
from neuron_platform.cluster.node_role import node_role
from neuron_platform.cluster.pod_identity import PodIdentityRole
from neuron_platform.compliance import (
    acknowledge_managed_policies,
    acknowledge_nag,
    acknowledge_wildcard_resources,
    skip_checkov,
)
from neuron_platform.k8s.helm_values import SYSTEM_NODE_LABEL, SYSTEM_NODE_VALUE
from neuron_platform.launch_template import hardened_launch_template

ALL_LOG_TYPES = [
    eks.ClusterLoggingTypes.API,
    eks.ClusterLoggingTypes.AUDIT,
    eks.ClusterLoggingTypes.AUTHENTICATOR,
    eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
    eks.ClusterLoggingTypes.SCHEDULER,
]

# Add-ons the nodes need before they can become Ready (networking, credentials).
BOOTSTRAP_ADDONS = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")

# vpc-cni add-on configuration (its schema: `aws eks describe-addon-configuration --addon-name
# vpc-cni`): prefix delegation for pod density, and the network policy agent, which enforces
# the platform's NetworkPolicies (the controller that compiles them runs in the EKS control plane).
VPC_CNI_CONFIGURATION: dict[str, object] = {
    "env": {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"},
    "enableNetworkPolicy": "true",
}


def kubectl_layer(scope: Construct, construct_id: str) -> lambda_.ILayerVersion:
    """The kubectl/helm layer whose minor matches ``versions.KUBERNETES_VERSION``."""
    module = importlib.import_module(versions.KUBECTL_LAYER_PACKAGE)
    minor = versions.KUBECTL_LAYER_MINOR.split(".")[1]
    layer: lambda_.ILayerVersion = getattr(module, f"KubectlV{minor}Layer")(scope, construct_id)
    return layer


def kubectl_provider_boundary(scope: Construct, construct_id: str, cluster: eks.Cluster) -> iam.ManagedPolicy:
    """The most the kubectl provider's functions (its handler and the provider framework) may
    do in IAM, whatever policies aws-cdk-lib attaches to their roles now or later: find the
    cluster's endpoint, pull Helm charts from ECR, write their logs, run in the VPC, and
    invoke a function of this account and region (the framework calls the handler).
    """
    stack = Stack.of(scope)
    p, region, account = stack.partition, stack.region, stack.account
    policy = iam.ManagedPolicy(
        scope,
        construct_id,
        description=f"Permissions boundary of the kubectl provider functions of EKS cluster {cluster.cluster_name}",
        statements=[
            iam.PolicyStatement(
                sid="FindTheClusterEndpoint", actions=["eks:DescribeCluster"], resources=[cluster.cluster_arn]
            ),
            iam.PolicyStatement(
                sid="LogIntoChartRegistries",
                actions=["ecr:GetAuthorizationToken", "ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="PullChartsFromThisAccount",
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[f"arn:{p}:ecr:{region}:{account}:repository/*"],
            ),
            iam.PolicyStatement(
                sid="WriteLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"arn:{p}:logs:{region}:{account}:log-group:*"],
            ),
            iam.PolicyStatement(
                sid="RunInTheVpc",
                actions=[
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:CreateNetworkInterface",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=["*"],
                conditions={"StringEquals": {"aws:RequestedRegion": region}},
            ),
            iam.PolicyStatement(
                sid="InvokeTheHandler",
                actions=["lambda:InvokeFunction"],
                # Not the handler's ARN: the handler's role carries this boundary, so naming the
                # function here would make the policy depend on itself.
                resources=[f"arn:{p}:lambda:{region}:{account}:function:*"],
            ),
        ],
    )
    acknowledge_wildcard_resources(
        policy,
        lambda resource: (
            "Permissions boundary (a ceiling, granting nothing): "
            + (
                "registry logins and the Lambda VPC ENI actions support no resource-level permissions."
                if resource == "*"
                else f"{resource.split(':')[2]} resources of this account and region; the roles' own policies "
                "name the exact handler, log groups and repositories."
            )
        ),
    )
    resource = policy.node.default_child
    assert isinstance(resource, CfnResource)
    for check_id in ("CKV_AWS_107", "CKV_AWS_111", "CKV_AWS_356", "CKV_AWS_290"):
        skip_checkov(
            resource,
            check_id,
            "Permissions boundary of the kubectl provider: it grants nothing itself; the handler logs into chart "
            "registries (ecr/ecr-public/sts bearer tokens), and ENI and registry-login actions support no "
            "resource-level permissions.",
        )
    return policy


@dataclass(frozen=True)
class SystemNodeGroupProps:
    """The managed node group for controllers and add-ons (never Neuron capacity)."""

    instance_types: Sequence[str] = ("m7i.xlarge",)
    min_size: int = 2
    max_size: int = 4
    disk_gib: int = 50
    labels: dict[str, str] = field(default_factory=lambda: {SYSTEM_NODE_LABEL: SYSTEM_NODE_VALUE})


class NeuronCluster(Construct):
    """An EKS cluster (``aws_eks_v2``, not Auto Mode) ready for Karpenter-managed Neuron capacity.

    - Kubernetes version, kubectl layer and add-on builds from :mod:`neuron_platform.versions`;
    - authentication by access entries only; admins from ``admin_principal_arns``;
    - secrets envelope-encrypted with a rotating customer-managed KMS key;
    - all five control-plane log types;
    - endpoint private, plus public only from ``public_access_cidrs`` when given;
    - a small on-demand managed node group across zones: IMDSv2 with hop limit 1,
      encrypted gp3 root volumes;
    - managed add-ons (pinned): vpc-cni with prefix delegation, kube-proxy, coredns,
      eks-pod-identity-agent, aws-ebs-csi-driver, eks-node-monitoring-agent,
      metrics-server; the CNI and EBS CSI drivers get their own Pod Identity roles.

    Example::

        cluster = NeuronCluster(
            self, "Cluster",
            cluster_name="neuron",
            vpc=network.vpc,
            control_plane_subnets=network.private_subnets,
            admin_principal_arns=["arn:aws:iam::123456789012:role/Admin"],
            public_access_cidrs=["203.0.113.0/24"],
        )
        cluster.cluster       # aws_eks_v2.Cluster
        cluster.cluster_name  # "neuron", a literal string (cluster.cluster.cluster_name is a Ref)
        # The other cluster constructs take this construct itself (or an aws_eks_v2.Cluster)
        # and read the cluster's name from it:
        Karpenter(self, "Karpenter", cluster=cluster)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_name: str,
        vpc: ec2.IVpc,
        control_plane_subnets: Sequence[ec2.ISubnet],
        admin_principal_arns: Sequence[str] = (),
        public_access_cidrs: Sequence[str] = (),
        service_ipv4_cidr: str = "172.20.0.0/16",
        system_nodes: SystemNodeGroupProps | None = None,
        log_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        system_nodes = system_nodes or SystemNodeGroupProps()
        #: The name given above, as a literal string (IAM condition keys and Helm values need it).
        self.cluster_name = cluster_name
        self.secrets_key = kms.Key(
            self,
            "SecretsKey",
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {cluster_name}",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        subnets = ec2.SubnetSelection(subnets=list(control_plane_subnets))
        endpoint = (
            eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*public_access_cidrs)
            if public_access_cidrs
            else eks.EndpointAccess.PRIVATE
        )
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=cluster_name,
            version=eks.KubernetesVersion.of(versions.KUBERNETES_VERSION),
            vpc=vpc,
            vpc_subnets=[subnets],
            endpoint_access=endpoint,
            cluster_logging=ALL_LOG_TYPES,
            secrets_encryption_key=self.secrets_key,
            service_ipv4_cidr=service_ipv4_cidr,
            # Self-managed Karpenter capacity, not Auto Mode; no default capacity.
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,
            # We install vpc-cni, kube-proxy and coredns as pinned managed add-ons.
            bootstrap_self_managed_addons=False,
            # No access entry for whoever runs the deploy (CloudFormation's execution role):
            # admins come from admin_principal_arns. EKS replaces a cluster when this changes.
            bootstrap_cluster_creator_admin_permissions=False,
            kubectl_provider_options=eks.KubectlProviderOptions(
                kubectl_layer=kubectl_layer(self, "KubectlLayer"),
                # In the VPC so it reaches a private-only endpoint too.
                private_subnets=list(control_plane_subnets),
            ),
            output_config_command=False,
        )
        provider = self.cluster.node.find_child("KubectlProvider")
        self._harden_kubectl_provider(provider, log_key)
        #: The ceiling on the IAM permissions of the kubectl provider's functions (their
        #: Kubernetes rights are cluster-admin: see docs/cluster.md, "Who administers the cluster").
        self.kubectl_provider_boundary = kubectl_provider_boundary(self, "KubectlProviderBoundary", self.cluster)
        iam.PermissionsBoundary.of(provider).apply(self.kubectl_provider_boundary)
        self._acknowledge_cdk_internals(provider)
        admin_policy = eks.AccessPolicy.from_access_policy_name(
            "AmazonEKSClusterAdminPolicy", access_scope_type=eks.AccessScopeType.CLUSTER
        )
        for i, arn in enumerate(admin_principal_arns):
            self.cluster.grant_access(f"Admin{i}", arn, [admin_policy])

        self.addons: dict[str, eks.CfnAddon] = {}
        self.cni_role = PodIdentityRole(
            self,
            "VpcCniRole",
            managed_policies=["AmazonEKS_CNI_Policy"],
            description="VPC CNI (aws-node): assigns ENIs and prefixes",
        )
        self._addon(
            "vpc-cni",
            configuration=VPC_CNI_CONFIGURATION,
            service_account="aws-node",
            role=self.cni_role,
        )
        self._addon("kube-proxy")
        self._addon("eks-pod-identity-agent")

        self.node_role = node_role(
            self, "SystemNodeRole", description=f"System node group of EKS cluster {cluster_name}"
        )
        self.system_nodegroup = self._system_nodegroup(system_nodes, subnets)
        for name in BOOTSTRAP_ADDONS:
            self.system_nodegroup.node.add_dependency(self.addons[name])

        self.ebs_csi_role = PodIdentityRole(
            self,
            "EbsCsiRole",
            managed_policies=["service-role/AmazonEBSCSIDriverPolicy"],
            description="EBS CSI controller: creates and attaches volumes",
        )
        for name, kwargs in (
            ("coredns", {}),
            ("aws-ebs-csi-driver", {"service_account": "ebs-csi-controller-sa", "role": self.ebs_csi_role}),
            ("eks-node-monitoring-agent", {}),
            ("metrics-server", {}),
        ):
            addon = self._addon(name, **kwargs)  # type: ignore[arg-type]
            # These run as Deployments/DaemonSets that need nodes to become ACTIVE.
            addon.node.add_dependency(self.system_nodegroup)

    def _harden_kubectl_provider(self, provider: IConstruct, log_key: kms.IKey | None) -> None:
        """Encrypt the kubectl provider's log groups; record why its functions stay as the CDK builds them."""
        for child in provider.node.find_all():
            if isinstance(child, logs.CfnLogGroup) and log_key is not None:
                child.kms_key_id = log_key.key_arn
            if isinstance(child, lambda_.CfnFunction):
                for check_id, why in (
                    (
                        "CKV_AWS_115",
                        "invoked only by CloudFormation during deployments; a concurrency reservation adds nothing",
                    ),
                    ("CKV_AWS_116", "synchronous custom-resource handler: failures surface in the stack events"),
                    (
                        "CKV_AWS_173",
                        "environment holds only non-secret settings, encrypted at rest by Lambda's default key",
                    ),
                ):
                    skip_checkov(child, check_id, f"aws_eks_v2 kubectl provider (CDK-managed): {why}")

    def _acknowledge_cdk_internals(self, provider: IConstruct) -> None:
        """Findings on resources aws_eks_v2 creates for itself (cluster role, kubectl provider).

        Finding ids embed logical ids, which depend on where this construct sits; they are
        derived from the constructs, never written out.
        """
        acknowledge_managed_policies(
            self.cluster.role,
            ["AmazonEKSClusterPolicy"],
            "The EKS service role's AWS-maintained policy, required by EKS for the control plane.",
        )
        acknowledge_managed_policies(
            provider,
            [
                "service-role/AWSLambdaBasicExecutionRole",
                "service-role/AWSLambdaVPCAccessExecutionRole",
                "AmazonEC2ContainerRegistryReadOnly",
            ],
            "aws_eks_v2's kubectl/helm provider functions (CDK-managed): logging, ENIs in the private subnets "
            "to reach a private endpoint, and pulling OCI Helm charts.",
        )
        stack = Stack.of(self)
        handler_function = provider.node.find_child("Handler")
        has_ecr_public = handler_function.node.find_child("HasEcrPublic")
        assert isinstance(has_ecr_public, CfnCondition)
        acknowledge_nag(
            provider,
            "AwsSolutions-IAM4",
            "aws_eks_v2's kubectl handler may pull charts from public ECR (Karpenter, Neuron); the condition "
            "attaches the AWS-maintained public-ECR read policy only when needed.",
            finding=(
                f'Policy::{{"Fn::If":["{stack.get_logical_id(has_ecr_public)}",{{"Fn::Join":["",["arn:",'
                '{"Ref":"AWS::Partition"},":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},'
                '{"Ref":"AWS::NoValue"}]}'
            ),
        )
        handler = handler_function.node.default_child
        assert isinstance(handler, CfnResource)
        acknowledge_nag(
            provider,
            "AwsSolutions-IAM5",
            "The CDK provider framework may invoke any published version of the kubectl handler it owns.",
            finding=f"Resource::<{stack.get_logical_id(handler)}.Arn>:*",
        )
        acknowledge_nag(
            provider,
            "AwsSolutions-L1",
            "The kubectl/helm handler's runtime is chosen by aws-cdk-lib to match the kubectl layer; it moves "
            "forward when aws-cdk-lib is upgraded (pinned in requirements.txt).",
        )

    def _addon(
        self,
        name: str,
        *,
        configuration: dict[str, object] | None = None,
        service_account: str | None = None,
        role: PodIdentityRole | None = None,
    ) -> eks.CfnAddon:
        if role is not None and service_account is not None:
            # The add-on creates the association; the role trusts exactly that service account.
            role.bind(cluster_name=self.cluster_name, namespace="kube-system", service_account=service_account)
        addon = eks.CfnAddon(
            self,
            f"Addon-{name}",
            addon_name=name,
            addon_version=versions.EKS_ADDONS[name],
            cluster_name=self.cluster.cluster_name,
            resolve_conflicts="OVERWRITE",
            configuration_values=json.dumps(configuration) if configuration else None,
            pod_identity_associations=(
                [
                    eks.CfnAddon.PodIdentityAssociationProperty(
                        role_arn=role.role.role_arn, service_account=service_account
                    )
                ]
                if role is not None and service_account is not None
                else None
            ),
        )
        self.addons[name] = addon
        return addon

    def _system_nodegroup(self, props: SystemNodeGroupProps, subnets: ec2.SubnetSelection) -> eks.Nodegroup:
        template = hardened_launch_template(self, "SystemNodeTemplate", root_volume_gib=props.disk_gib)
        return self.cluster.add_nodegroup_capacity(
            "SystemNodes",
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
            capacity_type=eks.CapacityType.ON_DEMAND,
            instance_types=[ec2.InstanceType(t) for t in props.instance_types],
            min_size=props.min_size,
            desired_size=props.min_size,
            max_size=props.max_size,
            labels=dict(props.labels),
            launch_template_spec=eks.LaunchTemplateSpec(
                id=template.launch_template_id or "", version=template.latest_version_number
            ),
            node_role=self.node_role,
            subnets=subnets,
            enable_node_auto_repair=True,
        )


def eks_cluster(cluster: eks.Cluster | NeuronCluster) -> eks.Cluster:
    """The ``aws_eks_v2.Cluster`` behind ``cluster``: a :class:`NeuronCluster` wraps one as ``.cluster``."""
    return cluster.cluster if isinstance(cluster, NeuronCluster) else cluster


def _literal_name(cluster: eks.Cluster | NeuronCluster) -> str | None:
    """The name ``cluster`` was created with, when it was a literal string."""
    if isinstance(cluster, NeuronCluster):
        name: object = cluster.cluster_name
    else:
        # aws_eks_v2.Cluster.cluster_name is a Ref even when the name was given; the
        # AWS::EKS::Cluster resource keeps the literal.
        resource = cluster.node.default_child
        name = resource.name if isinstance(resource, eks.CfnCluster) else cluster.cluster_name
    return name if isinstance(name, str) and not Token.is_unresolved(name) else None


def cluster_name_of(cluster: eks.Cluster | NeuronCluster, override: str | None = None) -> str:
    """The name of ``cluster``: the literal it was created with (so templates show the name,
    not a Ref), else its name token; or ``override`` (a construct's ``cluster_name``
    argument), which must equal the cluster's own name when that is a literal."""
    known = _literal_name(cluster)
    if override is None:
        return known if known is not None else eks_cluster(cluster).cluster_name
    if known is not None and not Token.is_unresolved(override) and override != known:
        raise ValueError(
            f"cluster_name: got {override!r}, but the cluster passed as cluster is named {known!r}; "
            f"allowed: {known!r}, or leave cluster_name out to take it from the cluster"
        )
    return override


def literal_cluster_name(
    cluster: eks.Cluster | NeuronCluster | None, override: str | None, *, construct: str, reason: str
) -> str:
    """Like :func:`cluster_name_of`, for a construct that needs the name as a literal string
    (``reason``: where it goes, e.g. IAM condition keys, which cannot hold a token)."""
    if cluster is None:
        if override is None:
            raise ValueError(f"{construct}: missing cluster; allowed: pass cluster=... or cluster_name=...")
        name = override
    else:
        name = cluster_name_of(cluster, override)
    if Token.is_unresolved(name):
        raise ValueError(
            f"{construct}: cluster_name: got a token ({name}), but {reason} need the cluster's name as a literal "
            "string; allowed: a cluster created with cluster_name=..., or cluster_name=... passed here"
        )
    return name
