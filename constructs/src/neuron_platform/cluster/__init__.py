"""Cluster constructs: EKS, Karpenter, Neuron capacity, device plugins, load balancing, KEDA,
training and its gang admission."""

from neuron_platform.cluster.device_plugins import NeuronDevicePlugins
from neuron_platform.cluster.gang_admission import GangAdmission
from neuron_platform.cluster.karpenter import Karpenter
from neuron_platform.cluster.karpenter_teardown import KarpenterTeardown
from neuron_platform.cluster.keda import Keda
from neuron_platform.cluster.load_balancer_controller import LoadBalancerController
from neuron_platform.cluster.lustre_volume import LustreVolume
from neuron_platform.cluster.neuron_cluster import NeuronCluster, SystemNodeGroupProps
from neuron_platform.cluster.neuron_node_pool import NeuronNodePool
from neuron_platform.cluster.pod_identity import PodIdentityRole
from neuron_platform.cluster.training_platform import TrainingPlatform

__all__ = [
    "GangAdmission",
    "Karpenter",
    "KarpenterTeardown",
    "Keda",
    "LoadBalancerController",
    "LustreVolume",
    "NeuronCluster",
    "NeuronDevicePlugins",
    "NeuronNodePool",
    "PodIdentityRole",
    "SystemNodeGroupProps",
    "TrainingPlatform",
]
