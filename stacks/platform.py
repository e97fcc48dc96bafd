"""Wires the reference app's stacks from one validated configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from neuron_platform.compile.client import compile_stack_name
from neuron_platform.config import PlatformConfig
from stacks.cluster_stack import ClusterStack
from stacks.network_stack import NetworkStack
from stacks.tags import PROJECT_TAG

if TYPE_CHECKING:
    # Imported where they are built: a config without compile, serving or operations does not
    # pay for loading their construct modules (and the aws-cdk-lib modules behind them).
    from stacks.compile_stack import CompileStack
    from stacks.operations_stack import OperationsStack
    from stacks.sagemaker_stack import SageMakerStack
    from stacks.serving_stack import ServingStack


@dataclass(frozen=True)
class Platform:
    """The stacks of one platform instance."""

    network: NetworkStack
    cluster: ClusterStack
    compile: CompileStack | None = None
    serving: ServingStack | None = None
    sagemaker: SageMakerStack | None = None
    operations: OperationsStack | None = None

    @property
    def stacks(self) -> list[cdk.Stack]:
        optional = [s for s in (self.compile, self.serving, self.sagemaker, self.operations) if s is not None]
        return [self.network, self.cluster, *optional]


def build_platform(app: cdk.App, config: PlatformConfig) -> Platform:
    """Create every stack for ``config`` in ``app`` and register the cdk-nag gate.

    Stacks are account-agnostic (the account comes from the deploy credentials) and
    pinned to the configured region, so synthesis needs no AWS lookups.
    """
    env = cdk.Environment(region=config.project.region)
    name = config.project.name
    network = NetworkStack(
        app,
        f"{name}-network",
        config=config,
        env=env,
        description=f"Neuron platform '{name}': VPC, endpoints, flow logs, EFA security group",
    )
    cluster = ClusterStack(
        app,
        f"{name}-cluster",
        config=config,
        network=network,
        env=env,
        description=f"Neuron platform '{name}': EKS, Karpenter, Neuron device plugins and capacity pools",
    )
    compile_stack = None
    if config.compile.enabled:
        from stacks.compile_stack import CompileStack

        compile_stack = CompileStack(
            app,
            compile_stack_name(name),
            config=config,
            network=network,
            env=env,
            description=f"Neuron platform '{name}': compiled-artifact store and compile pipeline",
        )
    # Endpoints need compile.enabled (config validation); each backend has its own stack, so the
    # SageMaker endpoints, which need no cluster, deploy beside it.
    serving_stack = None
    if config.eks_endpoints:
        assert compile_stack is not None
        from stacks.serving_stack import ServingStack, serving_stack_name

        serving_stack = ServingStack(
            app,
            serving_stack_name(name),
            config=config,
            network=network,
            cluster=cluster,
            compile_stack=compile_stack,
            env=env,
            description=f"Neuron platform '{name}': serving endpoints on EKS and their on-pool compiles",
        )
    sagemaker_stack = None
    if any(e.backend == "sagemaker" for e in config.serving.endpoints):
        assert compile_stack is not None
        from stacks.sagemaker_stack import SageMakerStack, sagemaker_stack_name

        sagemaker_stack = SageMakerStack(
            app,
            sagemaker_stack_name(name),
            config=config,
            network=network,
            compile_stack=compile_stack,
            env=env,
            description=f"Neuron platform '{name}': serving endpoints on SageMaker",
        )
    operations = None
    if config.operations.enabled:
        from stacks.operations_stack import OperationsStack

        operations = OperationsStack(
            app,
            f"{name}-operations",
            config=config,
            cluster=cluster,
            compile_stack=compile_stack,
            serving=serving_stack,
            sagemaker=sagemaker_stack,
            env=env,
            description=f"Neuron platform '{name}': alarms, budget and the operations dashboard",
        )
    cdk.Tags.of(app).add(PROJECT_TAG, name)
    for key, value in config.project.tags.items():
        cdk.Tags.of(app).add(key, value)
    # Every unacknowledged AwsSolutions finding fails synthesis.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return Platform(
        network=network,
        cluster=cluster,
        compile=compile_stack,
        serving=serving_stack,
        sagemaker=sagemaker_stack,
        operations=operations,
    )
