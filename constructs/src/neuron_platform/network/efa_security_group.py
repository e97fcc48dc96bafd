"""Security group for EFA-enabled Neuron nodes."""

from __future__ import annotations

from aws_cdk import Tags
from aws_cdk import aws_ec2 as ec2

from constructs import Construct


class EfaSecurityGroup(Construct):
    """A security group that lets EFA traffic flow between its members.

    EFA's OS-bypass traffic is only delivered between interfaces whose security
    groups allow *all* traffic from and to the group itself: the self-referencing
    egress rule matters as much as the ingress one, and an egress rule to 0.0.0.0/0
    does not carry EFA traffic. ``ec2.SecurityGroup(allow_all_outbound=True)`` would
    also silently drop the explicit self egress rule, so the group is created with
    ``allow_all_outbound=False`` and gets an explicit HTTPS/any egress only when asked.

    Example::

        efa = EfaSecurityGroup(self, "Efa", vpc=vpc)
        # select efa.security_group_id in the EFA pool's EC2NodeClass only: non-EFA
        # pools must not pick it up through the cluster discovery tag.

    :param vpc: the VPC the group lives in.
    :param description: default "EFA traffic between Neuron nodes (self-referencing)".
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        description: str = "EFA traffic between Neuron nodes (self-referencing)",
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "Group",
            vpc=vpc,
            description=description,
            allow_all_outbound=False,
        )
        self.security_group.add_ingress_rule(
            self.security_group, ec2.Port.all_traffic(), "EFA: all traffic from members of this group"
        )
        self.security_group.add_egress_rule(
            self.security_group, ec2.Port.all_traffic(), "EFA: all traffic to members of this group"
        )
        Tags.of(self.security_group).add("neuron-platform/role", "efa")

    @property
    def security_group_id(self) -> str:
        return self.security_group.security_group_id
