"""Where compiled models live: an S3 bucket, an ECR repository and a DynamoDB registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aws_cdk import Duration, Fn, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from neuron_platform.storage.data_bucket import DataBucket

ARTIFACTS_PREFIX = "artifacts/"
CACHE_PREFIX = "neuron-cache/"
# Where compile jobs write; only the pipeline's promote step copies verified files to artifacts/.
STAGING_PREFIX = "staging/"
# A failed or abandoned run's staging objects are removed after this many days.
STAGING_DAYS = 14
REGISTRY_KEY = "cache_key"
# Registry item status values (the CLI and serving read them).
STATUS_COMPILING = "COMPILING"
STATUS_READY = "READY"
STATUS_FAILED = "FAILED"


class ArtifactStoreRef(Protocol):
    """What a compile job's grants and the on-cluster compile need of the store: an
    :class:`ArtifactStore`, or an :class:`ImportedArtifactStore` in a stack deployed after it."""

    @property
    def bucket(self) -> s3.IBucket: ...

    @property
    def key(self) -> kms.IKey: ...

    @property
    def repository(self) -> ecr.IRepository: ...

    @property
    def cache_url(self) -> str: ...


def artifacts_bucket_export(project: str) -> str:
    """Export name of the artifact bucket's ARN (the compile stack exports it)."""
    return f"{project}-artifacts-bucket-arn"


def artifacts_key_export(project: str) -> str:
    """Export name of the artifact store key's ARN."""
    return f"{project}-artifacts-key-arn"


@dataclass(frozen=True)
class ImportedArtifactStore:
    """The compile stack's store as a later stack sees it: bucket and key imported by export
    name (so resource names stay known at synth), the repository by its fixed name.

    Example::

        store = ImportedArtifactStore.of(self, project="neuron")
        store.cache_url  # s3://<bucket>/neuron-cache/
    """

    bucket: s3.IBucket
    key: kms.IKey
    repository: ecr.IRepository

    @classmethod
    def of(cls, scope: Construct, *, project: str) -> ImportedArtifactStore:
        return cls(
            bucket=s3.Bucket.from_bucket_arn(scope, "Artifacts", Fn.import_value(artifacts_bucket_export(project))),
            key=kms.Key.from_key_arn(scope, "ArtifactsKey", Fn.import_value(artifacts_key_export(project))),
            repository=ecr.Repository.from_repository_name(scope, "ArtifactsRepository", repository_name(project)),
        )

    @property
    def cache_url(self) -> str:
        return f"s3://{self.bucket.bucket_name}/{CACHE_PREFIX}"


def repository_name(project: str) -> str:
    """The store's ECR repository: a fixed name, so specs can name images before a deploy."""
    return f"{project}-neuron"


class ArtifactStore(Construct):
    """Storage for the compile pipeline, all encrypted with one rotating KMS key and kept on
    ``cdk destroy`` by default:

    - ``bucket``: versioned, TLS-only, access-logged; ``artifacts/<cache key>/`` holds each
      compiled model with its ``manifest.json`` (written only by the pipeline's promote step),
      ``staging/<cache key>/<run>/`` what compile jobs upload (expired after
      :data:`STAGING_DAYS` days), ``neuron-cache/`` the Neuron persistent cache
      (``NEURON_COMPILE_CACHE_URL``);
    - ``repository``: ECR for pipeline and serving images, immutable tags, scanned on push;
    - ``registry``: DynamoDB table keyed by cache key (source, spec, SDK, location, file
      hashes, status, times), point-in-time recovery on.

    Example::

        store = ArtifactStore(self, "Artifacts", removal_policy=RemovalPolicy.RETAIN)
        store.artifacts_url  # s3://<bucket>/artifacts/
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repository_name: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts compiled Neuron artifacts, the compile registry and images",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.data = DataBucket(self, "Bucket", encryption_key=self.key, removal_policy=removal_policy)
        self.bucket = self.data.bucket
        # Runs that never got promoted (failed, abandoned) and promoted runs' deleted versions.
        self.bucket.add_lifecycle_rule(
            id="StagingRuns",
            prefix=STAGING_PREFIX,
            expiration=Duration.days(STAGING_DAYS),
            noncurrent_version_expiration=Duration.days(1),
            abort_incomplete_multipart_upload_after=Duration.days(1),
        )
        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=repository_name,
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.KMS,
            encryption_key=self.key,
            removal_policy=removal_policy,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description="Drop untagged layers left by failed pushes",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=Duration.days(14),
                )
            ],
        )
        self.registry = dynamodb.TableV2(
            self,
            "Registry",
            partition_key=dynamodb.Attribute(name=REGISTRY_KEY, type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(self.key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=removal_policy == RemovalPolicy.RETAIN,
            removal_policy=removal_policy,
        )

    @property
    def artifacts_url(self) -> str:
        return f"s3://{self.bucket.bucket_name}/{ARTIFACTS_PREFIX}"

    @property
    def staging_url(self) -> str:
        return f"s3://{self.bucket.bucket_name}/{STAGING_PREFIX}"

    @property
    def cache_url(self) -> str:
        return f"s3://{self.bucket.bucket_name}/{CACHE_PREFIX}"
