"""Read-only access to one set of compiled artifacts."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from neuron_platform.compile.artifact_store import ARTIFACTS_PREFIX
from neuron_platform.compliance import acknowledge_wildcard_resources


def artifacts_prefix(cache_key: str) -> str:
    return f"{ARTIFACTS_PREFIX}{cache_key}/"


def grant_artifact_read(
    scope: Construct, role: iam.IRole, *, bucket: s3.IBucket, key: kms.IKey, cache_key: str
) -> iam.Policy:
    """GetObject and ListBucket under ``artifacts/<cache key>/`` only, and Decrypt with the store's key.

    A policy of its own, whose only wildcard is the object prefix (acknowledged here).
    """
    prefix = artifacts_prefix(cache_key)
    policy = iam.Policy(
        scope,
        "ArtifactRead",
        roles=[role],
        statements=[
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{prefix}*")]),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            ),
            iam.PolicyStatement(actions=["kms:Decrypt"], resources=[key.key_arn]),
        ],
    )
    acknowledge_wildcard_resources(
        policy,
        lambda _resource: (
            f"Objects under {prefix} only: one endpoint's compiled artifacts, whose file names the compiler chooses."
        ),
    )
    return policy
