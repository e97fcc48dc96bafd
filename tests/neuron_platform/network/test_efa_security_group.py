from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template

from neuron_platform.network import EfaSecurityGroup
from tests.conftest import new_app
from tests.helpers import group_id, props, resources


def _template() -> tuple[Template, str]:
    stack = cdk.Stack(new_app(), "Test", env=cdk.Environment(region="us-east-1"))
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["us-east-1a", "us-east-1b"], nat_gateways=0)
    efa = EfaSecurityGroup(stack, "Efa", vpc=vpc)
    logical_id = stack.resolve(efa.security_group_id)["Fn::GetAtt"][0]
    return Template.from_stack(stack), logical_id


def test_self_referencing_ingress_and_egress_on_all_protocols() -> None:
    t, sg = _template()
    ingress = list(resources(t, "AWS::EC2::SecurityGroupIngress").values())
    egress = list(resources(t, "AWS::EC2::SecurityGroupEgress").values())
    assert [props(r) | {"Description": None} for r in ingress] == [
        {"GroupId": group_id(sg), "SourceSecurityGroupId": group_id(sg), "IpProtocol": "-1", "Description": None}
    ]
    assert [props(r) | {"Description": None} for r in egress] == [
        {"GroupId": group_id(sg), "DestinationSecurityGroupId": group_id(sg), "IpProtocol": "-1", "Description": None}
    ]


def test_group_has_no_other_rules() -> None:
    t, sg = _template()
    group = resources(t, "AWS::EC2::SecurityGroup")[sg]
    assert "SecurityGroupEgress" not in props(group)
    assert "SecurityGroupIngress" not in props(group)
    assert props(group)["GroupDescription"] == "EFA traffic between Neuron nodes (self-referencing)"
