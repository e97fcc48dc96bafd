"""Network constructs: the cluster VPC and the EFA security group."""

from neuron_platform.network.efa_security_group import EfaSecurityGroup
from neuron_platform.network.neuron_vpc import ExistingVpc, NeuronVpc

__all__ = ["EfaSecurityGroup", "ExistingVpc", "NeuronVpc"]
