"""The compile stack: artifact store (bucket, ECR, registry) and the compile pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack

from constructs import Construct
from neuron_platform.compile.artifact_store import ArtifactStore
from neuron_platform.compile.client import (
    OUTPUT_BUCKET,
    OUTPUT_MAX_MEMORY,
    OUTPUT_REGISTRY,
    OUTPUT_REPOSITORY,
    OUTPUT_STATE_MACHINE,
)
from neuron_platform.compile.compile_pipeline import CompilePipeline
from neuron_platform.config import PlatformConfig
from neuron_platform.log_encryption import logs_kms_key, retention_from_days
from stacks.network_stack import NetworkStack

LAMBDA_CODE = Path(__file__).resolve().parents[1] / "runtime_assets" / "compile" / "lambdas"


def artifacts_bucket_export(project: str) -> str:
    return f"{project}-artifacts-bucket-arn"


def artifacts_key_export(project: str) -> str:
    return f"{project}-artifacts-key-arn"


class CompileStack(Stack):
    """Compile once, cache, record: storage plus the Step Functions / Batch pipeline."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, network: NetworkStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings = config.compile
        removal = RemovalPolicy.RETAIN if config.project.retain_data_on_destroy else RemovalPolicy.DESTROY
        # A predictable repository name lets compile specs name their image before deploy.
        self.store = ArtifactStore(
            self, "Artifacts", repository_name=f"{config.project.name}-neuron", removal_policy=removal
        )
        log_key = logs_kms_key(
            self,
            "LogKey",
            description=f"Encrypts the compile pipeline logs of {config.project.name}",
            removal_policy=removal,
        )
        self.pipeline = CompilePipeline(
            self,
            "Pipeline",
            project=config.project.name,
            vpc=network.network.vpc,
            subnets=network.network.private_subnets,
            store=self.store,
            instance_types=settings.instance_types,
            lambda_code=LAMBDA_CODE,
            log_key=log_key,
            log_retention=retention_from_days(config.cluster.log_retention_days),
            max_vcpus=settings.max_vcpus,
            job_timeout_minutes=settings.job_timeout_minutes,
            disk_gib=settings.disk_gib,
            notification_emails=settings.notification_emails,
            model_buckets=settings.model_buckets,
            hf_token_secret_arn=settings.hf_token_secret_arn,
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
