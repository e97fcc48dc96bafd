"""Fine-grained assertions on the network stack, per example config."""

from __future__ import annotations

import ipaddress

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from neuron_platform.config import parse_config
from neuron_platform.sizing import plan_subnets
from stacks import build_platform
from tests.conftest import SynthesizedApp, new_app
from tests.helpers import group_id, props, ref, resources, tags

INTERFACE_SERVICES = {
    "com.amazonaws.{r}.ecr.api",
    "com.amazonaws.{r}.ecr.dkr",
    "com.amazonaws.{r}.sts",
    "com.amazonaws.{r}.ec2",
    "com.amazonaws.{r}.logs",
    "com.amazonaws.{r}.ssm",
}


def _subnets(app: SynthesizedApp) -> dict[str, dict]:  # type: ignore[type-arg]
    return resources(app.template(app.platform.network), "AWS::EC2::Subnet")


def test_stack_is_region_pinned_and_account_agnostic(default_app: SynthesizedApp) -> None:
    stack = default_app.platform.network
    assert stack.region == "us-east-1"
    assert cdk.Token.is_unresolved(stack.account)
    assert stack.stack_name == "neuron-network"


def test_vpc_uses_configured_cidr_with_dns(default_app: SynthesizedApp) -> None:
    default_app.template(default_app.platform.network).has_resource_properties(
        "AWS::EC2::VPC",
        {"CidrBlock": "10.0.0.0/16", "EnableDnsHostnames": True, "EnableDnsSupport": True},
    )


@pytest.mark.parametrize("name", ["default", "inference-small", "training-multinode"])
def test_subnet_cidrs_match_the_address_plan(synthesized: dict[str, SynthesizedApp], name: str) -> None:
    app = synthesized[name]
    net = app.config.network
    plan = plan_subnets(
        ipaddress.IPv4Network(net.vpc_cidr),
        zones=len(net.zones),
        public_prefix=net.public_subnet_prefix,
        private_prefix=net.private_subnet_prefix,
    )
    cidrs = {props(s)["CidrBlock"] for s in _subnets(app).values()}
    expected = {str(n) for n in plan.public + plan.private}
    if net.secondary_cidr:
        secondary = plan_subnets(
            ipaddress.IPv4Network(net.secondary_cidr),
            zones=len(net.zones),
            public_prefix=None,
            private_prefix=net.secondary_subnet_prefix,
        )
        expected |= {str(n) for n in secondary.private}
    assert cidrs == expected


def test_subnets_span_the_configured_zones(default_app: SynthesizedApp) -> None:
    zones = sorted(props(s)["AvailabilityZone"] for s in _subnets(default_app).values())
    assert zones == sorted(default_app.config.network.zones * 2)


def test_private_subnets_never_map_public_ips(training_app: SynthesizedApp) -> None:
    for subnet in _subnets(training_app).values():
        if tags(subnet).get("aws-cdk:subnet-type") != "Public":
            assert props(subnet)["MapPublicIpOnLaunch"] is False


def test_subnet_tags_for_load_balancers_and_karpenter(default_app: SynthesizedApp) -> None:
    public = [s for s in _subnets(default_app).values() if tags(s).get("aws-cdk:subnet-type") == "Public"]
    private = [s for s in _subnets(default_app).values() if tags(s).get("aws-cdk:subnet-type") == "Private"]
    assert len(public) == len(private) == 3
    for subnet in public:
        assert tags(subnet)["kubernetes.io/role/elb"] == "1"
        assert "karpenter.sh/discovery" not in tags(subnet)
    for subnet in private:
        assert tags(subnet)["kubernetes.io/role/internal-elb"] == "1"
        assert tags(subnet)["karpenter.sh/discovery"] == "neuron"


def test_project_tags_reach_resources(default_app: SynthesizedApp) -> None:
    for subnet in _subnets(default_app).values():
        assert tags(subnet)["owner"] == "ml-platform"
        assert tags(subnet)["neuron-platform:project"] == "neuron"


@pytest.mark.parametrize(("name", "count"), [("default", 1), ("inference-small", 1), ("training-multinode", 3)])
def test_nat_gateway_count(synthesized: dict[str, SynthesizedApp], name: str, count: int) -> None:
    app = synthesized[name]
    app.template(app.platform.network).resource_count_is("AWS::EC2::NatGateway", count)


def test_flow_log_captures_all_traffic_to_encrypted_retained_group(default_app: SynthesizedApp) -> None:
    t = default_app.template(default_app.platform.network)
    vpc_id = next(iter(resources(t, "AWS::EC2::VPC")))
    t.has_resource_properties(
        "AWS::EC2::FlowLog",
        {
            "ResourceType": "VPC",
            "ResourceId": ref(vpc_id),
            "TrafficType": "ALL",
            "LogDestinationType": "cloud-watch-logs",
            "DeliverLogsPermissionArn": Match.any_value(),
        },
    )
    groups = resources(t, "AWS::Logs::LogGroup")
    assert len(groups) == 1
    group = next(iter(groups.values()))
    assert props(group)["RetentionInDays"] == 365
    key_id = next(iter(resources(t, "AWS::KMS::Key")))
    assert props(group)["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert group["DeletionPolicy"] == "Retain"


def test_flow_log_key_rotates_is_retained_and_admits_only_logs_of_this_account(default_app: SynthesizedApp) -> None:
    t = default_app.template(default_app.platform.network)
    key = next(iter(resources(t, "AWS::KMS::Key").values()))
    assert props(key)["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    statements = props(key)["KeyPolicy"]["Statement"]
    logs_statement = next(s for s in statements if s["Principal"].get("Service") == "logs.us-east-1.amazonaws.com")
    assert "ArnLike" in logs_statement["Condition"]
    assert "kms:Decrypt*" in logs_statement["Action"]


def test_training_flow_log_retention_from_config(training_app: SynthesizedApp) -> None:
    training_app.template(training_app.platform.network).has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": 731}
    )


@pytest.mark.parametrize("name", ["default", "training-multinode"])
def test_each_interface_endpoint_is_private_dns_in_private_subnets(
    synthesized: dict[str, SynthesizedApp], name: str
) -> None:
    app = synthesized[name]
    t = app.template(app.platform.network)
    region = app.config.project.region
    endpoints = resources(t, "AWS::EC2::VPCEndpoint")
    interface = {
        props(e)["ServiceName"]: e for e in endpoints.values() if props(e).get("VpcEndpointType") == "Interface"
    }
    assert set(interface) == {s.format(r=region) for s in INTERFACE_SERVICES}
    private_ids = {ref(k)["Ref"] for k, s in _subnets(app).items() if tags(s).get("aws-cdk:subnet-name") == "private"}
    sg_id = next(
        k
        for k, v in resources(t, "AWS::EC2::SecurityGroup").items()
        if "interface endpoints" in props(v)["GroupDescription"]
    )
    for endpoint in interface.values():
        assert props(endpoint)["PrivateDnsEnabled"] is True
        assert {s["Ref"] for s in props(endpoint)["SubnetIds"]} == private_ids
        assert props(endpoint)["SecurityGroupIds"] == [group_id(sg_id)]


def test_s3_gateway_endpoint_serves_every_node_route_table(training_app: SynthesizedApp) -> None:
    t = training_app.template(training_app.platform.network)
    gateway = [
        e for e in resources(t, "AWS::EC2::VPCEndpoint").values() if props(e).get("VpcEndpointType") == "Gateway"
    ]
    assert len(gateway) == 1
    assert props(gateway[0])["ServiceName"] == {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".s3"]]}
    # Three primary private route tables plus three for the secondary-CIDR node subnets.
    assert len(props(gateway[0])["RouteTableIds"]) == 6


def test_endpoint_security_group_opens_443_to_each_block_only(training_app: SynthesizedApp) -> None:
    t = training_app.template(training_app.platform.network)
    sg = next(
        v
        for v in resources(t, "AWS::EC2::SecurityGroup").values()
        if "interface endpoints" in props(v)["GroupDescription"]
    )
    ingress = props(sg)["SecurityGroupIngress"]
    assert sorted((r["CidrIp"], r["FromPort"], r["ToPort"], r["IpProtocol"]) for r in ingress) == [
        ("10.30.0.0/20", 443, 443, "tcp"),
        ("100.64.0.0/16", 443, 443, "tcp"),
    ]
    # allow_all_outbound=False: the CDK's "disallow all" placeholder, nothing else.
    assert [e["CidrIp"] for e in props(sg)["SecurityGroupEgress"]] == ["255.255.255.255/32"]


def test_default_security_group_is_emptied(default_app: SynthesizedApp) -> None:
    default_app.template(default_app.platform.network).resource_count_is("Custom::VpcRestrictDefaultSG", 1)


def test_interface_endpoints_can_be_turned_off() -> None:
    config = parse_config(
        {
            "project": {"name": "lean", "region": "us-east-1"},
            "network": {"zones": ["us-east-1a", "us-east-1b"], "interface_endpoints": False},
        }
    )
    platform = build_platform(new_app(), config)
    t = Template.from_stack(platform.network)
    endpoints = resources(t, "AWS::EC2::VPCEndpoint")
    assert [props(e)["VpcEndpointType"] for e in endpoints.values()] == ["Gateway"]


# --- secondary CIDR (training example) ------------------------------------------------


def test_secondary_cidr_is_associated(training_app: SynthesizedApp) -> None:
    training_app.template(training_app.platform.network).has_resource_properties(
        "AWS::EC2::VPCCidrBlock", {"CidrBlock": "100.64.0.0/16"}
    )


def test_node_subnets_live_in_the_secondary_block_and_carry_the_discovery_tag(training_app: SynthesizedApp) -> None:
    subnets = _subnets(training_app)
    secondary = ipaddress.IPv4Network("100.64.0.0/16")
    nodes = {k: s for k, s in subnets.items() if ipaddress.IPv4Network(props(s)["CidrBlock"]).subnet_of(secondary)}
    assert len(nodes) == 3
    for logical_id, subnet in subnets.items():
        discovered = tags(subnet).get("karpenter.sh/discovery") == "trn-train"
        assert discovered == (logical_id in nodes), logical_id
    # The subnet must wait for the CIDR association or the deploy fails.
    cidr_block = next(iter(resources(training_app.template(training_app.platform.network), "AWS::EC2::VPCCidrBlock")))
    for subnet in nodes.values():
        assert cidr_block in subnet.get("DependsOn", [])


def test_node_subnets_route_through_the_nat_gateway_of_their_zone(training_app: SynthesizedApp) -> None:
    t = training_app.template(training_app.platform.network)
    subnets = _subnets(training_app)
    zone_of_nat = {}
    for nat_id, nat in resources(t, "AWS::EC2::NatGateway").items():
        zone_of_nat[nat_id] = props(subnets[props(nat)["SubnetId"]["Ref"]])["AvailabilityZone"]
    assoc = resources(t, "AWS::EC2::SubnetRouteTableAssociation")
    zone_of_table = {
        props(a)["RouteTableId"]["Ref"]: props(subnets[props(a)["SubnetId"]["Ref"]])["AvailabilityZone"]
        for a in assoc.values()
    }
    node_routes = [r for k, r in resources(t, "AWS::EC2::Route").items() if k.startswith("NetworkNodeSubnet")]
    assert len(node_routes) == 3
    for route in node_routes:
        assert props(route)["DestinationCidrBlock"] == "0.0.0.0/0"
        nat = props(route)["NatGatewayId"]["Ref"]
        assert zone_of_nat[nat] == zone_of_table[props(route)["RouteTableId"]["Ref"]]


# --- EFA security group ---------------------------------------------------------------


def test_no_efa_group_without_efa_pools(default_app: SynthesizedApp) -> None:
    assert default_app.platform.network.efa is None
    t = default_app.template(default_app.platform.network)
    t.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)
    t.resource_count_is("AWS::EC2::SecurityGroupEgress", 0)


def test_efa_group_allows_all_traffic_to_and_from_itself(training_app: SynthesizedApp) -> None:
    t = training_app.template(training_app.platform.network)
    efa = training_app.platform.network.efa
    assert efa is not None
    sg_id = training_app.platform.network.resolve(efa.security_group.node.default_child.logical_id)  # type: ignore[union-attr]
    t.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {"GroupId": group_id(sg_id), "SourceSecurityGroupId": group_id(sg_id), "IpProtocol": "-1"},
    )
    t.has_resource_properties(
        "AWS::EC2::SecurityGroupEgress",
        {"GroupId": group_id(sg_id), "DestinationSecurityGroupId": group_id(sg_id), "IpProtocol": "-1"},
    )
    group = resources(t, "AWS::EC2::SecurityGroup")[sg_id]
    # The self rules are the only rules: no inline ones, and no 0.0.0.0/0 egress (it
    # would not carry EFA traffic and is not wanted on these nodes).
    assert "SecurityGroupEgress" not in props(group)
    assert "SecurityGroupIngress" not in props(group)
    t.resource_count_is("AWS::EC2::SecurityGroupIngress", 1)
    t.resource_count_is("AWS::EC2::SecurityGroupEgress", 1)


# --- existing VPC -----------------------------------------------------------------------


def test_existing_vpc_creates_no_network_resources(existing_vpc_app: SynthesizedApp) -> None:
    t = existing_vpc_app.template(existing_vpc_app.platform.network)
    for type_name in ("AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::NatGateway", "AWS::EC2::VPCEndpoint"):
        t.resource_count_is(type_name, 0)


def test_existing_vpc_gets_flow_log_and_efa_group_by_id(existing_vpc_app: SynthesizedApp) -> None:
    t = existing_vpc_app.template(existing_vpc_app.platform.network)
    t.has_resource_properties(
        "AWS::EC2::FlowLog", {"ResourceId": "vpc-0a1b2c3d4e5f60718", "ResourceType": "VPC", "TrafficType": "ALL"}
    )
    t.has_resource_properties("AWS::EC2::SecurityGroup", {"VpcId": "vpc-0a1b2c3d4e5f60718"})
    network = existing_vpc_app.platform.network.network
    assert network.imported
    assert [s.subnet_id for s in network.node_subnets] == [
        "subnet-0a00000000000000a",
        "subnet-0b00000000000000b",
        "subnet-0c00000000000000c",
    ]
    assert network.node_subnet_in("us-east-2b").subnet_id == "subnet-0b00000000000000b"
