"""Stacks of the reference app. Thin: they read configuration and wire constructs."""

from stacks.network_stack import NetworkStack
from stacks.platform import build_platform

__all__ = ["NetworkStack", "build_platform"]
