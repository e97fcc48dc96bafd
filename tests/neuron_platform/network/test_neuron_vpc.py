from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from neuron_platform.config import LOG_RETENTION_DAYS
from neuron_platform.log_encryption import retention_from_days
from neuron_platform.network import ExistingVpc, NeuronVpc
from tests.conftest import new_app
from tests.helpers import resources

ZONES = ["us-east-2a", "us-east-2b"]


def _stack() -> cdk.Stack:
    return cdk.Stack(new_app(), "Test", env=cdk.Environment(region="us-east-2"))


def test_destroy_policy_when_user_opts_out_of_retention() -> None:
    stack = _stack()
    NeuronVpc(stack, "Net", zones=ZONES, cluster_name="c", removal_policy=cdk.RemovalPolicy.DESTROY)
    t = Template.from_stack(stack)
    for type_name in ("AWS::Logs::LogGroup", "AWS::KMS::Key"):
        (resource,) = resources(t, type_name).values()
        assert resource["DeletionPolicy"] == "Delete"


def test_node_subnets_default_to_private_subnets() -> None:
    stack = _stack()
    net = NeuronVpc(stack, "Net", zones=ZONES, cluster_name="c")
    paths = [s.node.path for s in net.node_subnets]
    assert paths == [s.node.path for s in net.private_subnets]
    assert paths == ["Test/Net/Vpc/privateSubnet1", "Test/Net/Vpc/privateSubnet2"]
    assert net.node_subnet_in("us-east-2b").node.path == "Test/Net/Vpc/privateSubnet2"


def test_secondary_subnets_become_node_subnets() -> None:
    stack = _stack()
    net = NeuronVpc(
        stack, "Net", zones=ZONES, cluster_name="c", secondary_cidr="100.64.0.0/20", secondary_subnet_prefix=22
    )
    assert [s.ipv4_cidr_block for s in net.node_subnets] == ["100.64.0.0/22", "100.64.4.0/22"]
    assert net.node_subnet_in("us-east-2a").availability_zone == "us-east-2a"


def test_existing_vpc_without_flow_log_adds_nothing() -> None:
    stack = _stack()
    NeuronVpc(
        stack,
        "Net",
        zones=ZONES,
        cluster_name="c",
        existing_vpc=ExistingVpc(
            vpc_id="vpc-12345678", vpc_cidr="10.0.0.0/16", private_subnet_ids=["subnet-1", "subnet-2"]
        ),
    )
    assert Template.from_stack(stack).to_json().get("Resources", {}) == {}


@pytest.mark.parametrize(
    ("days", "expected"),
    [(1, logs.RetentionDays.ONE_DAY), (365, logs.RetentionDays.ONE_YEAR), (3653, logs.RetentionDays.TEN_YEARS)],
)
def test_retention_from_days(days: int, expected: logs.RetentionDays) -> None:
    assert retention_from_days(days) is expected


def test_every_allowed_retention_maps_to_the_same_number_of_days() -> None:
    stack = _stack()
    for days in LOG_RETENTION_DAYS:
        logs.LogGroup(stack, f"G{days}", retention=retention_from_days(days))
    groups = resources(Template.from_stack(stack), "AWS::Logs::LogGroup")
    assert sorted(g["Properties"]["RetentionInDays"] for g in groups.values()) == list(LOG_RETENTION_DAYS)


def test_unknown_retention_is_rejected() -> None:
    with pytest.raises(ValueError, match="100 is not a CloudWatch Logs retention period"):
        retention_from_days(100)


# --- zones ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zones", "message"),
    [
        (
            ["us-east-2a", "us-west-2b"],
            r"NeuronVpc zones\[1\]: got 'us-west-2b', which is not a zone of the stack's region us-east-2; "
            r"allowed: Availability Zone names of us-east-2 \(e\.g\. us-east-2a, us-east-2b, us-east-2c\)",
        ),
        (["us-east-2a", "us-east-20a"], r"zones\[1\]: got 'us-east-20a'.*region us-east-2"),
        (["use2-az1", "use2-az2"], r"zones\[0\]: got 'use2-az1'"),  # zone ids are not zone names
        (
            ["us-east-2a"],
            r"NeuronVpc zones: got \['us-east-2a'\]; allowed: at least two distinct Availability Zones",
        ),
        (["us-east-2a", "us-east-2a"], r"zones: got \['us-east-2a', 'us-east-2a'\]; allowed: at least two distinct"),
    ],
)
def test_zones_must_be_two_distinct_zones_of_the_stack_region(zones: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NeuronVpc(_stack(), "Net", zones=zones, cluster_name="c")


def test_an_existing_vpc_gets_the_same_zone_checks() -> None:
    existing = ExistingVpc(vpc_id="vpc-12345678", vpc_cidr="10.0.0.0/16", private_subnet_ids=["subnet-1", "subnet-2"])
    with pytest.raises(ValueError, match=r"zones\[0\]: got 'eu-west-1a'"):
        NeuronVpc(_stack(), "Net", zones=["eu-west-1a", "eu-west-1b"], cluster_name="c", existing_vpc=existing)


def test_local_zones_of_the_region_are_accepted() -> None:
    stack = cdk.Stack(new_app(), "Test", env=cdk.Environment(region="us-west-2"))
    net = NeuronVpc(stack, "Net", zones=["us-west-2a", "us-west-2-lax-1a"], cluster_name="c")
    assert net.zones == ["us-west-2a", "us-west-2-lax-1a"]


def test_an_environment_agnostic_stack_checks_only_the_count() -> None:
    stack = cdk.Stack(new_app(), "Agnostic")  # region is a token
    assert NeuronVpc(stack, "Net", zones=ZONES, cluster_name="c").zones == ZONES
    with pytest.raises(ValueError, match="at least two distinct"):
        NeuronVpc(cdk.Stack(new_app(), "Agnostic"), "Net", zones=["us-east-2a"], cluster_name="c")


@pytest.mark.parametrize("method", ["node_subnet_in", "private_subnet_in"])
def test_a_subnet_in_a_zone_the_vpc_does_not_span_is_named(method: str) -> None:
    net = NeuronVpc(_stack(), "Net", zones=ZONES, cluster_name="c")
    with pytest.raises(
        ValueError,
        match=rf"NeuronVpc\.{method}: got zone 'us-west-2c', which this VPC does not span; "
        r"allowed: us-east-2a, us-east-2b$",
    ):
        getattr(net, method)("us-west-2c")
