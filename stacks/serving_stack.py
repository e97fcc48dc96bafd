"""The serving stack: one endpoint per serving spec, on EKS or SageMaker."""

from __future__ import annotations

from typing import Any, cast

from aws_cdk import CfnOutput, Fn, RemovalPolicy, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from neuron_platform.config import PlatformConfig
from neuron_platform.k8s.serving import keda_trigger_authentication, serving_namespace, serving_network_policies
from neuron_platform.serving import api_key
from neuron_platform.serving.alb_access_logs import AlbAccessLogBucket
from neuron_platform.serving.eks_endpoint import EksEndpoint
from neuron_platform.serving.sagemaker_endpoint import SageMakerEndpoint
from stacks.cluster_stack import ClusterStack
from stacks.compile_stack import CompileStack, artifacts_bucket_export, artifacts_key_export
from stacks.network_stack import NetworkStack


def serving_stack_name(project: str) -> str:
    return api_key.serving_stack_name(project)


def vpc_cidrs(config: PlatformConfig) -> list[str]:
    """The VPC's IPv4 ranges: where the serving load balancers, the metrics collector and the
    nodes have their addresses."""
    net = config.network
    cidrs = [net.existing_vpc.vpc_cidr if net.existing_vpc is not None else net.vpc_cidr]
    if net.secondary_cidr:
        cidrs.append(net.secondary_cidr)
    return cidrs


class ServingStack(Stack):
    """Endpoints that load registered artifacts; the planner sizes each one.

    EKS endpoints share the serving namespace (Pod Security ``baseline``, default-deny
    NetworkPolicies, KEDA's TriggerAuthentication when one scales) and a bucket for their
    load balancers' access logs; each publishes the ARN of its generated API key secret as
    the output ``api_key.api_key_output_key(name)``.
    """

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
        self.add_stack_dependency(compile_stack, "endpoints import the artifacts bucket and key by export name")
        # eks.Cluster implements ICluster at run time; jsii's Python typing does not say so.
        cluster_ref = cast(eks.ICluster, cluster.cluster.cluster)
        namespace = config.serving.namespace
        removal = RemovalPolicy.RETAIN if config.project.retain_data_on_destroy else RemovalPolicy.DESTROY
        cidrs = vpc_cidrs(config)
        self.eks_endpoints: dict[str, EksEndpoint] = {}
        self.sagemaker_endpoints: dict[str, SageMakerEndpoint] = {}
        eks_specs = [s for s in config.serving.endpoints if s.backend == "eks"]
        namespace_manifest = None
        self.trigger_authentication: eks.KubernetesManifest | None = None
        self.access_logs: AlbAccessLogBucket | None = None
        if eks_specs:
            namespace_manifest = eks.KubernetesManifest(
                self,
                "Namespace",
                cluster=cluster_ref,
                manifest=[serving_namespace(namespace), *serving_network_policies(namespace, vpc_cidrs=cidrs)],
            )
            self.access_logs = AlbAccessLogBucket(self, "AlbAccessLogs", removal_policy=removal)
            if cluster.keda is not None and any(s.replicas.max > s.replicas.min for s in eks_specs):
                # ScaledObjects of this namespace only; needs KEDA's CRDs (its chart).
                self.trigger_authentication = eks.KubernetesManifest(
                    self, "KedaAuthentication", cluster=cluster_ref, manifest=[keda_trigger_authentication(namespace)]
                )
                self.trigger_authentication.node.add_dependency(namespace_manifest, cluster.keda.chart)
        for spec in config.serving.endpoints:
            endpoint_plan = config.plan_endpoint(spec)
            if spec.backend == "eks":
                assert namespace_manifest is not None
                assert self.access_logs is not None
                endpoint = EksEndpoint(
                    self,
                    f"Eks-{spec.name}",
                    cluster=cluster_ref,
                    plan=endpoint_plan,
                    project=project,
                    namespace=namespace,
                    bucket=bucket,
                    key=key,
                    vpc_cidrs=cidrs,
                    access_logs_bucket=self.access_logs.bucket,
                    secret_removal_policy=removal,
                    metrics_query_url=cluster.metrics.query_url if cluster.metrics else None,
                    depends_on=[
                        namespace_manifest,
                        cluster.load_balancer_controller.chart,
                        *cluster.pools.values(),
                        *([self.trigger_authentication] if self.trigger_authentication else []),
                    ],
                )
                self.eks_endpoints[spec.name] = endpoint
                CfnOutput(self, f"{spec.name}-ArtifactsUrl", value=endpoint.artifacts_url)
                if not spec.api_key_secret_arn:
                    output = CfnOutput(
                        self,
                        f"{spec.name}-ApiKeySecret",
                        value=endpoint.api_key_secret.secret_arn,
                        description=f"Secret holding endpoint {spec.name}'s API key (Authorization: Bearer <key>)",
                    )
                    output.override_logical_id(api_key.api_key_output_key(spec.name))
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
