"""The serving stack: one endpoint per serving spec, on EKS or SageMaker."""

from __future__ import annotations

from typing import Any, cast

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from neuron_platform.config import PlatformConfig
from neuron_platform.k8s.serving import serving_namespace
from neuron_platform.serving.eks_endpoint import EksEndpoint
from neuron_platform.serving.sagemaker_endpoint import SageMakerEndpoint
from stacks.cluster_stack import ClusterStack
from stacks.compile_stack import CompileStack, artifacts_bucket_export, artifacts_key_export
from stacks.network_stack import NetworkStack


def serving_stack_name(project: str) -> str:
    return f"{project}-serving"


class ServingStack(Stack):
    """Endpoints that load registered artifacts; the planner sizes each one."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        network: NetworkStack,
        cluster: ClusterStack,
        compile_stack: CompileStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        project = config.project.name
        # Imported by export name, so resource names are known while the stack is built.
        bucket = s3.Bucket.from_bucket_arn(self, "Artifacts", Fn.import_value(artifacts_bucket_export(project)))
        key = kms.Key.from_key_arn(self, "ArtifactsKey", Fn.import_value(artifacts_key_export(project)))
        self.add_dependency(compile_stack)
        # eks.Cluster implements ICluster at run time; jsii's Python typing does not say so.
        cluster_ref = cast(eks.ICluster, cluster.cluster.cluster)
        namespace = config.serving.namespace
        self.eks_endpoints: dict[str, EksEndpoint] = {}
        self.sagemaker_endpoints: dict[str, SageMakerEndpoint] = {}
        eks_specs = [s for s in config.serving.endpoints if s.backend == "eks"]
        namespace_manifest = None
        if eks_specs:
            namespace_manifest = eks.KubernetesManifest(
                self, "Namespace", cluster=cluster_ref, manifest=[serving_namespace(namespace)]
            )
        for spec in config.serving.endpoints:
            endpoint_plan = config.plan_endpoint(spec)
            if spec.backend == "eks":
                assert namespace_manifest is not None
                endpoint = EksEndpoint(
                    self,
                    f"Eks-{spec.name}",
                    cluster=cluster_ref,
                    plan=endpoint_plan,
                    project=project,
                    namespace=namespace,
                    bucket=bucket,
                    key=key,
                    metrics_query_url=cluster.metrics.query_url if cluster.metrics else None,
                    depends_on=[
                        namespace_manifest,
                        cluster.load_balancer_controller.chart,
                        *cluster.pools.values(),
                        *([cluster.keda.authentication] if cluster.keda else []),
                    ],
                )
                self.eks_endpoints[spec.name] = endpoint
                CfnOutput(self, f"{spec.name}-ArtifactsUrl", value=endpoint.artifacts_url)
            else:
                sm = SageMakerEndpoint(
                    self,
                    f"SageMaker-{spec.name}",
                    plan=endpoint_plan,
                    project=config.project.name,
                    bucket=bucket,
                    key=key,
                    vpc=network.network.vpc,
                    subnets=network.network.private_subnets,
                )
                self.sagemaker_endpoints[spec.name] = sm
                CfnOutput(self, f"{spec.name}-EndpointName", value=sm.endpoint_name)
