"""CloudWatch Logs helpers: KMS keys for log groups, retention periods."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct
from neuron_platform.config import LOG_RETENTION_DAYS


def logs_kms_key(scope: Construct, construct_id: str, *, description: str, removal_policy: RemovalPolicy) -> kms.Key:
    """A rotating key CloudWatch Logs can use for log groups in this account and region only."""
    key = kms.Key(scope, construct_id, description=description, enable_key_rotation=True, removal_policy=removal_policy)
    stack = Stack.of(scope)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"
                }
            },
        )
    )
    return key


def retention_from_days(days: int) -> logs.RetentionDays:
    """Map a CloudWatch retention in days (e.g. 365) to ``logs.RetentionDays``."""
    # RetentionDays lists the finite periods in the same ascending order as the API.
    members = [m for m in logs.RetentionDays if m is not logs.RetentionDays.INFINITE]
    try:
        return dict(zip(LOG_RETENTION_DAYS, members, strict=True))[days]
    except KeyError:
        raise ValueError(f"{days} is not a CloudWatch Logs retention period: {LOG_RETENTION_DAYS}") from None
