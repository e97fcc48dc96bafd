"""The serving stack: the EKS endpoints, and the cluster side of their on-pool compiles."""

from __future__ import annotations

from typing import Any, cast

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_eks_v2 as eks

from constructs import Construct
from neuron_platform.compile.artifact_store import ImportedArtifactStore
from neuron_platform.compile.client import cluster_compile_function_name
from neuron_platform.compile.cluster_compile import ClusterCompile, ClusterJobTemplate
from neuron_platform.config import PlatformConfig
from neuron_platform.k8s.compile import compile_job_template
from neuron_platform.k8s.serving import keda_trigger_authentication, serving_namespace, serving_network_policies
from neuron_platform.log_encryption import logs_kms_key, retention_from_days
from neuron_platform.serving import api_key
from neuron_platform.serving.alb_access_logs import AlbAccessLogBucket
from neuron_platform.serving.eks_endpoint import EksEndpoint
from stacks.cluster_stack import ClusterStack
from stacks.compile_stack import CompileStack, cluster_compiled_endpoints
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
    """EKS endpoints that load registered artifacts (the planner sizes each one), and the
    :class:`ClusterCompile` that compiles the vLLM ones on their own pools: it needs the
    cluster, as the endpoints do, so it lives here rather than in the compile stack, which
    then deploys beside the cluster (its pipeline calls the function by name). SageMaker
    endpoints are in :class:`~stacks.sagemaker_stack.SageMakerStack`: they need no cluster.

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
        store = ImportedArtifactStore.of(self, project=project)
        bucket, key = store.bucket, store.key
        self.add_stack_dependency(compile_stack, "endpoints import the artifacts bucket and key by export name")
        # eks.Cluster implements ICluster at run time; jsii's Python typing does not say so.
        cluster_ref = cast(eks.ICluster, cluster.cluster.cluster)
        namespace = config.serving.namespace
        removal = RemovalPolicy.RETAIN if config.project.retain_data_on_destroy else RemovalPolicy.DESTROY
        cidrs = vpc_cidrs(config)
        self.eks_endpoints: dict[str, EksEndpoint] = {}
        eks_specs = config.eks_endpoints
        if not eks_specs:
            raise ValueError("the serving stack holds EKS endpoints; this config has none (see stacks.platform)")
        namespace_manifest = eks.KubernetesManifest(
            self,
            "Namespace",
            cluster=cluster_ref,
            manifest=[serving_namespace(namespace), *serving_network_policies(namespace, vpc_cidrs=cidrs)],
        )
        self.access_logs = AlbAccessLogBucket(self, "AlbAccessLogs", removal_policy=removal)
        self.trigger_authentication: eks.KubernetesManifest | None = None
        if cluster.keda is not None and any(s.replicas.max > s.replicas.min for s in eks_specs):
            # ScaledObjects of this namespace only; needs KEDA's CRDs (its chart).
            self.trigger_authentication = eks.KubernetesManifest(
                self, "KedaAuthentication", cluster=cluster_ref, manifest=[keda_trigger_authentication(namespace)]
            )
            self.trigger_authentication.node.add_dependency(namespace_manifest, cluster.keda.chart)
        for spec in eks_specs:
            endpoint = EksEndpoint(
                self,
                f"Eks-{spec.name}",
                cluster=cluster_ref,
                plan=config.plan_endpoint(spec),
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
        self.cluster_compile = self._cluster_compile(config, network, cluster, store, removal)

    def _cluster_compile(
        self,
        config: PlatformConfig,
        network: NetworkStack,
        cluster: ClusterStack,
        store: ImportedArtifactStore,
        removal: RemovalPolicy,
    ) -> ClusterCompile | None:
        """The cluster side of the vLLM endpoints' compiles, named as the compile stack's
        pipeline calls it."""
        on_cluster = cluster_compiled_endpoints(config)
        if not on_cluster:
            return None
        settings = config.compile
        templates = {}
        for name in on_cluster:
            endpoint_plan = config.plan_endpoint(config.endpoint(name))  # type: ignore[arg-type]
            templates[name] = ClusterJobTemplate(
                tag=endpoint_plan.compile_image_tag,
                # The endpoint's pinned compile image: the only image its compile Job runs.
                image=endpoint_plan.compile_image,
                job=compile_job_template(
                    endpoint_plan,
                    timeout_seconds=settings.job_timeout_minutes * 60,
                    hf_token_secret_arn=settings.hf_token_secret_arn,
                ),
            )
        log_key = logs_kms_key(
            self,
            "CompileLogKey",
            description=f"Encrypts the on-cluster compile function's logs of {config.project.name}",
            removal_policy=removal,
        )
        return ClusterCompile(
            self,
            "OnCluster",
            cluster=cluster.cluster,
            vpc=network.network.vpc,
            subnets=network.network.private_subnets,
            store=store,
            templates=templates,
            log_key=log_key,
            log_retention=retention_from_days(config.cluster.log_retention_days),
            function_name=cluster_compile_function_name(config.project.name),
            model_buckets=settings.model_buckets,
            model_bucket_account=settings.model_bucket_account,
            hf_token_secret_arn=settings.hf_token_secret_arn,
            removal_policy=removal,
        )
