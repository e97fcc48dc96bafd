"""The network stack: VPC, endpoints, flow logs, EFA security group."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack

from constructs import Construct
from neuron_platform.config import PlatformConfig
from neuron_platform.log_encryption import retention_from_days
from neuron_platform.network import EfaSecurityGroup, ExistingVpc, NeuronVpc


class NetworkStack(Stack):
    """VPC for the cluster and, when any pool uses EFA, the EFA security group."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        net = config.network
        existing = net.existing_vpc
        self.network = NeuronVpc(
            self,
            "Network",
            zones=net.zones,
            cluster_name=config.project.name,
            cidr=net.vpc_cidr,
            private_subnet_prefix=net.private_subnet_prefix,
            public_subnet_prefix=net.public_subnet_prefix,
            nat_gateways=net.nat_gateways,
            interface_endpoints=net.interface_endpoints,
            secondary_cidr=net.secondary_cidr,
            secondary_subnet_prefix=net.secondary_subnet_prefix,
            flow_log_retention=retention_from_days(net.flow_log_retention_days),
            removal_policy=RemovalPolicy.RETAIN if config.project.retain_data_on_destroy else RemovalPolicy.DESTROY,
            existing_vpc=(
                ExistingVpc(
                    vpc_id=existing.vpc_id,
                    vpc_cidr=existing.vpc_cidr,
                    private_subnet_ids=existing.private_subnet_ids,
                    public_subnet_ids=existing.public_subnet_ids,
                    create_flow_log=existing.create_flow_log,
                )
                if existing
                else None
            ),
        )
        self.efa: EfaSecurityGroup | None = None
        if config.uses_efa:
            self.efa = EfaSecurityGroup(self, "Efa", vpc=self.network.vpc)
