"""A VPC made for Neuron accelerator clusters, created or imported."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Acknowledgment, Aws, CfnResource, RemovalPolicy, Stack, Tags, Token, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct
from neuron_platform import facts
from neuron_platform.compliance import skip_checkov
from neuron_platform.log_encryption import logs_kms_key
from neuron_platform.sizing import plan_subnets

# Interface endpoints nodes need to start without the internet path being healthy:
# image pulls from ECR (api + dkr), Pod Identity / IRSA token exchange (STS), the VPC
# CNI and Karpenter's EC2 calls, log shipping, and SSM for node access.
DEFAULT_INTERFACE_ENDPOINTS: tuple[tuple[str, ec2.InterfaceVpcEndpointAwsService], ...] = (
    ("EcrApi", ec2.InterfaceVpcEndpointAwsService.ECR),
    ("EcrDocker", ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER),
    ("Sts", ec2.InterfaceVpcEndpointAwsService.STS),
    ("Ec2", ec2.InterfaceVpcEndpointAwsService.EC2),
    ("CloudWatchLogs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS),
    ("Ssm", ec2.InterfaceVpcEndpointAwsService.SSM),
)

# Subnet tags the AWS Load Balancer Controller uses to place load balancers.
PUBLIC_ELB_TAG = ("kubernetes.io/role/elb", "1")
INTERNAL_ELB_TAG = ("kubernetes.io/role/internal-elb", "1")
KARPENTER_DISCOVERY_TAG = "karpenter.sh/discovery"

# What follows the region in a zone name: a letter (us-east-2a), or a Local or Wavelength
# Zone's suffix (us-west-2-lax-1a, us-east-1-wl1-bos-wlz-1).
_ZONE_SUFFIX = re.compile(r"[a-z]|-[a-z0-9]+(-[a-z0-9]+)*")


def this_account_only() -> iam.PolicyStatement:
    """Interface endpoint policy: requests signed by principals of this account, to any
    resource (images of AWS-owned ECR repositories included). Credentials from another account
    (taken from a pod, say) and unsigned calls (STS AssumeRoleWithWebIdentity: IRSA, which the
    platform does not use) cannot go through the endpoints.
    """
    return iam.PolicyStatement(
        sid="ThisAccountsPrincipals",
        principals=[iam.AnyPrincipal()],
        actions=["*"],
        resources=["*"],
        conditions={"StringEquals": {"aws:PrincipalAccount": Aws.ACCOUNT_ID}},
    )


def check_zones(zones: Sequence[str], region: str) -> None:
    """Raise ValueError unless ``zones`` are at least two distinct zones of ``region``
    (``region`` may be a token, for an environment-agnostic stack: then only the count is checked)."""
    zones = list(zones)
    if not Token.is_unresolved(region):
        examples = ", ".join(facts.zones_of(region)) or f"{region}a, {region}b"
        for i, zone in enumerate(zones):
            if not (zone.startswith(region) and _ZONE_SUFFIX.fullmatch(zone[len(region) :])):
                raise ValueError(
                    f"NeuronVpc zones[{i}]: got {zone!r}, which is not a zone of the stack's region {region}; "
                    f"allowed: Availability Zone names of {region} (e.g. {examples})"
                )
    if len(set(zones)) < 2:
        raise ValueError(
            f"NeuronVpc zones: got {zones}; allowed: at least two distinct Availability Zones "
            "(EKS needs subnets in two zones, and a second zone keeps the cluster up when one fails)"
        )


@dataclass(frozen=True)
class ExistingVpc:
    """Attributes of a VPC that already exists (for example from a landing zone).

    Subnet ids are listed in the same order as the zones passed to :class:`NeuronVpc`.
    Nothing is looked up at synth time, so synthesis stays hermetic.
    """

    vpc_id: str
    vpc_cidr: str
    private_subnet_ids: Sequence[str]
    public_subnet_ids: Sequence[str] = ()
    create_flow_log: bool = False


class NeuronVpc(Construct):
    """The network of a Neuron cluster.

    Creates (or imports) a VPC with public subnets for load balancers and NAT, large
    private subnets for nodes and pods, an optional secondary CIDR (100.64.0.0/10)
    whose subnets host Karpenter capacity, gateway and interface endpoints, and VPC
    flow logs to a KMS-encrypted log group. Subnets are tagged for load balancer
    placement and for Karpenter discovery.

    Example::

        network = NeuronVpc(
            self, "Network",
            zones=["us-east-1a", "us-east-1b", "us-east-1c"],
            cluster_name="neuron",
        )
        network.vpc            # ec2.IVpc
        network.node_subnets   # where Karpenter launches Neuron nodes

    :param zones: Availability Zone names, at least two distinct ones, all in the stack's
        region (checked when the stack's region is known at synth; a ValueError otherwise).
    :param cluster_name: value of the ``karpenter.sh/discovery`` subnet tag.
    :param cidr: primary VPC block. Default ``10.0.0.0/16``.
    :param private_subnet_prefix: default 18 (16,379 usable addresses per zone).
    :param public_subnet_prefix: default 24.
    :param nat_gateways: default 1; one per zone for zone-independent egress.
    :param interface_endpoints: create the ECR, STS, EC2, Logs and SSM endpoints. Default True.
    :param secondary_cidr: optional 100.64.0.0/10 block for node subnets. Default none.
    :param secondary_subnet_prefix: default 18.
    :param flow_log_retention: default one year.
    :param removal_policy: for the flow-log group and its key. Default RETAIN.
    :param existing_vpc: import this VPC instead of creating one.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        zones: Sequence[str],
        cluster_name: str,
        cidr: str = "10.0.0.0/16",
        private_subnet_prefix: int = 18,
        public_subnet_prefix: int = 24,
        nat_gateways: int = 1,
        interface_endpoints: bool = True,
        secondary_cidr: str | None = None,
        secondary_subnet_prefix: int = 18,
        flow_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        existing_vpc: ExistingVpc | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        check_zones(zones, Stack.of(self).region)
        self.zones = list(zones)
        self._removal_policy = removal_policy
        self._flow_log_retention = flow_log_retention
        self.flow_log_group: logs.ILogGroup | None = None
        self.flow_log_key: kms.IKey | None = None
        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        self.s3_endpoint: ec2.GatewayVpcEndpoint | None = None
        self.secondary_subnets: list[ec2.PrivateSubnet] = []

        if existing_vpc is not None:
            self.vpc: ec2.IVpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=existing_vpc.vpc_id,
                vpc_cidr_block=existing_vpc.vpc_cidr,
                availability_zones=self.zones,
                private_subnet_ids=list(existing_vpc.private_subnet_ids),
                public_subnet_ids=list(existing_vpc.public_subnet_ids) or None,
            )
            Validations.of(self).acknowledge(
                Acknowledgment(
                    id="Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId",
                    reason=(
                        "Route tables of an imported VPC are the landing zone's: this construct adds "
                        "no routes or gateway endpoints to them."
                    ),
                )
            )
            if existing_vpc.create_flow_log:
                self._add_flow_log(ec2.FlowLogResourceType.from_vpc(self.vpc))
            self.imported = True
        else:
            self.vpc = self._create_vpc(cidr, private_subnet_prefix, public_subnet_prefix, nat_gateways)
            self._justify_default_sg_handler()
            self._add_flow_log(ec2.FlowLogResourceType.from_vpc(self.vpc))
            if secondary_cidr is not None:
                self._add_secondary_subnets(secondary_cidr, secondary_subnet_prefix)
            self._add_endpoints(interface_endpoints, cidr, secondary_cidr)
            self._tag_subnets(cluster_name)
            self.imported = False

    @property
    def private_subnets(self) -> list[ec2.ISubnet]:
        """Primary private subnets: the system node group and interface endpoints."""
        return list(self.vpc.private_subnets)

    @property
    def node_subnets(self) -> list[ec2.ISubnet]:
        """Subnets for Karpenter-launched Neuron nodes (secondary CIDR when configured)."""
        return list(self.secondary_subnets) or self.private_subnets

    def private_subnet_in(self, zone: str) -> ec2.ISubnet:
        """The primary private subnet in ``zone`` (file systems and other zonal services)."""
        return self.private_subnets[self._zone_index(zone, "private_subnet_in")]

    def node_subnet_in(self, zone: str) -> ec2.ISubnet:
        """The node subnet in ``zone`` (EFA pools are pinned to one zone)."""
        return self.node_subnets[self._zone_index(zone, "node_subnet_in")]

    def _zone_index(self, zone: str, method: str) -> int:
        if zone not in self.zones:
            raise ValueError(
                f"NeuronVpc.{method}: got zone {zone!r}, which this VPC does not span; allowed: {', '.join(self.zones)}"
            )
        return self.zones.index(zone)

    # --- creation --------------------------------------------------------------

    def _create_vpc(self, cidr: str, private_prefix: int, public_prefix: int, nat_gateways: int) -> ec2.Vpc:
        return ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            availability_zones=self.zones,
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=public_prefix),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=private_prefix
                ),
            ],
            # Strip the default security group of its rules (CIS EC2.2): nothing should use it.
            restrict_default_security_group=True,
        )

    def _justify_default_sg_handler(self) -> None:
        """Checkov findings on the CDK's own handler that empties the default security group."""
        provider = Stack.of(self).node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        handler = provider.node.try_find_child("Handler") if provider else None
        if not isinstance(handler, CfnResource):
            return
        for check_id, why in (
            (
                "CKV_AWS_115",
                "invoked only by CloudFormation, once per deployment; a concurrency reservation adds nothing",
            ),
            (
                "CKV_AWS_116",
                "synchronous CloudFormation custom resource: failures surface in the stack event, "
                "there is nothing to dead-letter",
            ),
            (
                "CKV_AWS_117",
                "calls only the regional EC2 API; running it in the VPC would make emptying the default "
                "security group depend on the VPC it is configuring",
            ),
        ):
            skip_checkov(handler, check_id, f"CDK-managed default-security-group handler: {why}")

    def _add_flow_log(self, resource: ec2.FlowLogResourceType) -> None:
        key = logs_kms_key(
            self, "FlowLogKey", description="Encrypts the VPC flow log group", removal_policy=self._removal_policy
        )
        group = logs.LogGroup(
            self,
            "FlowLogGroup",
            encryption_key=key,
            retention=self._flow_log_retention,
            removal_policy=self._removal_policy,
        )
        ec2.FlowLog(
            self,
            "FlowLog",
            resource_type=resource,
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self.flow_log_group = group
        self.flow_log_key = key

    def _add_secondary_subnets(self, secondary_cidr: str, prefix: int) -> None:
        assert isinstance(self.vpc, ec2.Vpc)
        block = ec2.CfnVPCCidrBlock(self, "SecondaryCidr", vpc_id=self.vpc.vpc_id, cidr_block=secondary_cidr)
        plan = plan_subnets(
            ipaddress.IPv4Network(secondary_cidr), zones=len(self.zones), public_prefix=None, private_prefix=prefix
        )
        nat_by_zone = self._nat_gateways_by_zone()
        first_nat = next(iter(nat_by_zone.values()))
        for zone, net in zip(self.zones, plan.private, strict=True):
            subnet = ec2.PrivateSubnet(
                self,
                f"NodeSubnet-{zone}",
                vpc_id=self.vpc.vpc_id,
                availability_zone=zone,
                cidr_block=str(net),
                map_public_ip_on_launch=False,
            )
            subnet.node.add_dependency(block)
            # Same egress path as the primary private subnet of this zone.
            subnet.add_default_nat_route(nat_by_zone.get(zone, first_nat))
            Tags.of(subnet).add("Name", f"{Stack.of(self).stack_name}/nodes-{zone}")
            self.secondary_subnets.append(subnet)

    def _nat_gateways_by_zone(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for subnet in self.vpc.public_subnets:
            nat = subnet.node.try_find_child("NATGateway")
            if isinstance(nat, ec2.CfnNatGateway):
                out[subnet.availability_zone] = nat.ref
        return out

    def _add_endpoints(self, interface_endpoints: bool, cidr: str, secondary_cidr: str | None) -> None:
        node_subnets = ec2.SubnetSelection(subnets=self.private_subnets + list(self.secondary_subnets))
        self.s3_endpoint = self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[node_subnets]
        )
        if not interface_endpoints:
            return
        # One group for all interface endpoints, opened with literal CIDRs (the CDK
        # default uses the VPC's CidrBlock attribute, which reviewers and scanners
        # cannot read) to the primary and, when present, the secondary block.
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="HTTPS from the VPC to its interface endpoints",
            allow_all_outbound=False,
        )
        for block in filter(None, (cidr, secondary_cidr)):
            self.endpoint_security_group.add_ingress_rule(
                ec2.Peer.ipv4(block), ec2.Port.tcp(443), f"HTTPS from {block}"
            )
        for name, service in DEFAULT_INTERFACE_ENDPOINTS:
            endpoint = self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=ec2.SubnetSelection(subnets=self.private_subnets),
                private_dns_enabled=True,
                security_groups=[self.endpoint_security_group],
                open=False,
            )
            endpoint.add_to_policy(this_account_only())
            self.interface_endpoints[name] = endpoint

    def _tag_subnets(self, cluster_name: str) -> None:
        for subnet in self.vpc.public_subnets:
            Tags.of(subnet).add(*PUBLIC_ELB_TAG)
        for subnet in self.vpc.private_subnets:
            Tags.of(subnet).add(*INTERNAL_ELB_TAG)
        for subnet in self.node_subnets:
            Tags.of(subnet).add(KARPENTER_DISCOVERY_TAG, cluster_name)
