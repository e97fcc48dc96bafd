"""An S3 bucket for user data: private, versioned, TLS-only, access-logged, kept on destroy."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from neuron_platform.compliance import acknowledge_nag, skip_checkov


class DataBucket(Construct):
    """A bucket holding data users cannot recreate cheaply (datasets, checkpoints, artifacts).

    Versioned, public access blocked, TLS required, server access logs in a sibling
    bucket (kept 365 days), noncurrent versions expired after ``noncurrent_days``.
    ``encryption_key`` selects SSE-KMS; without it the bucket uses SSE-S3, which services
    that read through their own service-linked role (FSx data repositories) need.
    With ``removal_policy=DESTROY`` CloudFormation deletes the buckets only when empty.

    Example::

        data = DataBucket(self, "Data", removal_policy=RemovalPolicy.RETAIN)
        data.bucket.grant_read(role)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        encryption_key: kms.IKey | None = None,
        noncurrent_days: int = 30,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery cannot write SSE-KMS
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[
                s3.LifecycleRule(expiration=Duration.days(365), noncurrent_version_expiration=Duration.days(30))
            ],
            removal_policy=removal_policy,
        )
        acknowledge_nag(
            self.access_logs, "AwsSolutions-S1", "This is the access-log bucket; logging it to itself would loop."
        )
        log_bucket = self.access_logs.node.default_child
        assert isinstance(log_bucket, s3.CfnBucket)
        skip_checkov(log_bucket, "CKV_AWS_18", "This is the access-log bucket; logging it to itself would loop.")
        skip_checkov(log_bucket, "CKV_AWS_145", "S3 server access log delivery supports SSE-S3 only.")

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=encryption_key,
            bucket_key_enabled=True if encryption_key else None,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="access/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(noncurrent_days))],
            removal_policy=removal_policy,
        )
