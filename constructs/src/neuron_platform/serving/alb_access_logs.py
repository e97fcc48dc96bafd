"""Where the serving load balancers write their access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.region_info import RegionInfo

from constructs import Construct
from neuron_platform.compliance import acknowledge_nag, skip_checkov


class AlbAccessLogBucket(Construct):
    """An S3 bucket for the access logs of the ALBs the load balancer controller creates.

    Encrypted with SSE-S3 (the only server-side encryption ALB log delivery supports),
    TLS required, public access blocked, ACLs disabled, versioned; objects expire after
    ``retention_days``. Only Elastic Load Balancing may write, and only under
    ``<prefix>/AWSLogs/<this account>/``: in regions that predate August 2022 through the
    region's ELB account, elsewhere through the ``logdelivery.elasticloadbalancing``
    service principal (as ``aws-elasticloadbalancingv2`` does for the ALBs it creates).
    ``removal_policy`` follows ``project.retain_data_on_destroy``.

    Example::

        logs = AlbAccessLogBucket(self, "AlbLogs", removal_policy=RemovalPolicy.RETAIN)
        EksEndpoint(..., access_logs_bucket=logs.bucket)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        retention_days: int = 365,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        if Token.is_unresolved(stack.region):
            raise ValueError("AlbAccessLogBucket needs a stack with a concrete region (ELB log delivery is per region)")
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(retention_days), noncurrent_version_expiration=Duration.days(30)
                )
            ],
            removal_policy=removal_policy,
        )
        account = RegionInfo.get(stack.region).elbv2_account
        principal: iam.IPrincipal = (
            iam.AccountPrincipal(account)
            if account
            else iam.ServicePrincipal("logdelivery.elasticloadbalancing.amazonaws.com")
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                principals=[principal],
                resources=[self.bucket.arn_for_objects(f"*/AWSLogs/{stack.account}/*")],
            )
        )
        reason = "This bucket receives load balancer access logs; logging it to itself would loop."
        acknowledge_nag(self.bucket, "AwsSolutions-S1", reason)
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        skip_checkov(cfn_bucket, "CKV_AWS_18", reason)
        skip_checkov(cfn_bucket, "CKV_AWS_145", "ALB access log delivery supports SSE-S3 only, not SSE-KMS.")
