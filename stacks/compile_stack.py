"""The compile stack: artifact store (bucket, ECR, registry) and the compile pipeline."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack

from constructs import Construct
from neuron_platform.compile.artifact_store import (
    ArtifactStore,
    artifacts_bucket_export,
    artifacts_key_export,
    repository_name,
)
from neuron_platform.compile.client import (
    OUTPUT_BUCKET,
    OUTPUT_MAX_MEMORY,
    OUTPUT_REGISTRY,
    OUTPUT_REPOSITORY,
    OUTPUT_STATE_MACHINE,
    cluster_compile_function_name,
)
from neuron_platform.compile.compile_pipeline import ClusterCompileTarget, CompilePipeline
from neuron_platform.config import PlatformConfig
from neuron_platform.log_encryption import logs_kms_key, retention_from_days
from stacks.network_stack import NetworkStack


def cluster_compiled_endpoints(config: PlatformConfig) -> list[str]:
    """EKS endpoints whose artifacts compile on their pool (vLLM engines load onto Neuron devices)."""
    return [e.name for e in config.eks_endpoints if config.plan_endpoint(e).compile_placement == "cluster"]


class CompileStack(Stack):
    """Compile once, cache, record: storage plus the Step Functions pipeline, which compiles on
    AWS Batch (optimum-neuron exports on CPU) or, for EKS endpoints served by vLLM, as a Job on
    the endpoint's own pool. The cluster side of those Jobs lives in the serving stack; the
    pipeline calls its function by name, so this stack needs the network only and deploys
    beside the cluster."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        network: NetworkStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings = config.compile
        removal = RemovalPolicy.RETAIN if config.project.retain_data_on_destroy else RemovalPolicy.DESTROY
        # A predictable repository name lets compile specs name their image before deploy.
        self.store = ArtifactStore(
            self, "Artifacts", repository_name=repository_name(config.project.name), removal_policy=removal
        )
        log_key = logs_kms_key(
            self,
            "LogKey",
            description=f"Encrypts the compile pipeline logs of {config.project.name}",
            removal_policy=removal,
        )
        on_cluster = cluster_compiled_endpoints(config)
        self.cluster_compile_target = (
            ClusterCompileTarget(
                function_name=cluster_compile_function_name(config.project.name), endpoints=tuple(on_cluster)
            )
            if on_cluster
            else None
        )
        self.pipeline = CompilePipeline(
            self,
            "Pipeline",
            project=config.project.name,
            vpc=network.network.vpc,
            subnets=network.network.private_subnets,
            store=self.store,
            instance_types=settings.instance_types,
            log_key=log_key,
            log_retention=retention_from_days(config.cluster.log_retention_days),
            max_vcpus=settings.max_vcpus,
            job_timeout_minutes=settings.job_timeout_minutes,
            disk_gib=settings.disk_gib,
            notification_emails=settings.notification_emails,
            model_buckets=settings.model_buckets,
            model_bucket_account=settings.model_bucket_account,
            hf_token_secret_arn=settings.hf_token_secret_arn,
            cluster_compile=self.cluster_compile_target,
            removal_policy=removal,
        )
        CfnOutput(self, OUTPUT_STATE_MACHINE, value=self.pipeline.state_machine.state_machine_arn)
        CfnOutput(self, OUTPUT_REGISTRY, value=self.store.registry.table_name)
        CfnOutput(self, OUTPUT_BUCKET, value=self.store.bucket.bucket_name)
        # Exported for the serving stack: an explicit import keeps IAM resource names known
        # at synth (cdk-nag acknowledgments name them exactly).
        project = config.project.name
        CfnOutput(
            self, "ArtifactsBucketArn", value=self.store.bucket.bucket_arn, export_name=artifacts_bucket_export(project)
        )
        CfnOutput(self, "ArtifactsKeyArn", value=self.store.key.key_arn, export_name=artifacts_key_export(project))
        CfnOutput(self, OUTPUT_REPOSITORY, value=self.store.repository.repository_uri)
        CfnOutput(self, OUTPUT_MAX_MEMORY, value=str(self.pipeline.max_container_memory_gib))
