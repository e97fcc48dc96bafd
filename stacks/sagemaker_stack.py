"""The SageMaker stack: the endpoints served by SageMaker, which need no cluster."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack

from constructs import Construct
from neuron_platform.compile.artifact_store import ImportedArtifactStore
from neuron_platform.config import PlatformConfig
from neuron_platform.serving.sagemaker_endpoint import SageMakerEndpoint
from stacks.compile_stack import CompileStack
from stacks.network_stack import NetworkStack


def sagemaker_stack_name(project: str) -> str:
    return f"{project}-sagemaker"


class SageMakerStack(Stack):
    """One SageMaker endpoint per ``backend: sagemaker`` spec, loading registered artifacts.

    It needs the network and the compile stack's artifact store only, so `cdk deploy --all
    --concurrency N` builds it (an endpoint takes about ten minutes) beside the cluster. Each
    endpoint's name, ``<project>-<endpoint>``, is also the output ``<endpoint>-EndpointName``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        network: NetworkStack,
        compile_stack: CompileStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Imported by export name, so resource names are known while the stack is built.
        store = ImportedArtifactStore.of(self, project=config.project.name)
        self.add_stack_dependency(compile_stack, "endpoints import the artifacts bucket and key by export name")
        self.endpoints: dict[str, SageMakerEndpoint] = {}
        specs = [s for s in config.serving.endpoints if s.backend == "sagemaker"]
        if not specs:
            raise ValueError("the SageMaker stack holds SageMaker endpoints; this config has none")
        for spec in specs:
            endpoint = SageMakerEndpoint(
                self,
                f"SageMaker-{spec.name}",
                plan=config.plan_endpoint(spec),
                project=config.project.name,
                bucket=store.bucket,
                key=store.key,
                vpc=network.network.vpc,
                subnets=network.network.private_subnets,
            )
            self.endpoints[spec.name] = endpoint
            CfnOutput(self, f"{spec.name}-EndpointName", value=endpoint.endpoint_name)
