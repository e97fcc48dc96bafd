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
