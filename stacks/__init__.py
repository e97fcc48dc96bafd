"""Stacks of the reference app. Thin: they read configuration and wire constructs."""

from stacks.cluster_stack import ClusterStack
from stacks.network_stack import NetworkStack
from stacks.platform import build_platform

__all__ = ["ClusterStack", "NetworkStack", "build_platform"]
