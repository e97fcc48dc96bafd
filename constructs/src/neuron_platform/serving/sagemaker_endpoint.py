"""A serving endpoint on SageMaker: the Hugging Face vLLM Neuron container, precompiled."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker

from constructs import Construct
from neuron_platform import versions
from neuron_platform.compliance import acknowledge_wildcard_resources, skip_checkov
from neuron_platform.serving.artifact_access import artifacts_prefix, grant_artifact_read
from neuron_platform.serving.planner import ServingPlan

VARIANT = "main"
# SageMaker's upper bounds for large-model containers (FIELD-NOTES: both cap at 3600 s).
STARTUP_HEALTH_CHECK_SECONDS = 3600
MODEL_DOWNLOAD_SECONDS = 3600


class SageMakerEndpoint(Construct):
    """Model, EndpointConfig and Endpoint on ``ml.<planned type>``: the pinned Hugging Face
    vLLM Neuron image with ``SM_ON_*`` equal to the compile settings, the artifacts from
    S3 (network isolation on: the container reaches nothing else), the storage volume
    encrypted with ``key``, ENIs in the VPC, and target tracking on concurrent requests
    per model copy between the spec's replica bounds.

    Callers are authenticated by IAM: the endpoint is reached only through the SageMaker
    runtime API (``sagemaker:InvokeEndpoint``, SigV4-signed), so it has no API key. Its
    execution role trusts SageMaker only for this account's resources in this region
    (``aws:SourceAccount``, ``aws:SourceArn``).

    Example::

        SageMakerEndpoint(self, "Llama", plan=plan_, project="neuron", bucket=store.bucket,
                          key=store.key, vpc=vpc, subnets=vpc.private_subnets)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        plan: ServingPlan,
        project: str,
        bucket: s3.IBucket,
        key: kms.IKey,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        spec = plan.spec
        self.cache_key = plan.cache_key()
        self.endpoint_name = f"{project}-{spec.name}"
        self.artifacts_url = f"s3://{bucket.bucket_name}/{artifacts_prefix(self.cache_key)}"
        # The planned SageMaker image (its Neuron SDK compiled the artifacts), in this region.
        image = f"{versions.DLC_ACCOUNT}.dkr.ecr.{stack.region}.amazonaws.com/{plan.serving_image}"

        self.role = iam.Role(
            self,
            "ExecutionRole",
            # Confused-deputy guard (SageMaker's "Cross-service confused deputy prevention"):
            # SageMaker may assume the role only on behalf of this account's resources in
            # this region.
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:*"},
                },
            ),
            description=f"SageMaker endpoint {self.endpoint_name}: its artifacts, the DLC image, its logs",
        )
        self.artifact_policy = grant_artifact_read(self, self.role, bucket=bucket, key=key, cache_key=self.cache_key)
        self.role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=[
                    f"arn:{stack.partition}:ecr:{stack.region}:{versions.DLC_ACCOUNT}:repository/"
                    f"{plan.serving_image.partition(':')[0]}"
                ],
            )
        )
        log_group = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/Endpoints/{self.endpoint_name}"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group, f"{log_group}:*"],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        # In-VPC endpoints manage their own ENIs.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                resources=["*"],
            )
        )
        policy = self.role.node.find_child("DefaultPolicy")
        assert isinstance(policy, iam.Policy)
        acknowledge_wildcard_resources(policy, _wildcard_reason)
        cfn_policy = policy.node.default_child
        assert isinstance(cfn_policy, iam.CfnPolicy)
        vpc_reason = (
            "SageMaker attaches the endpoint to the VPC by creating ENIs and granting itself permission on them "
            "(the execution-role actions AWS documents for in-VPC endpoints); EC2 cannot scope them to ENIs "
            "that do not exist yet."
        )
        skip_checkov(cfn_policy, "CKV_AWS_111", vpc_reason)
        skip_checkov(cfn_policy, "CKV_AWS_109", vpc_reason)

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"SageMaker endpoint {self.endpoint_name}: no inbound, HTTPS out",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(443), "HTTPS to VPC endpoints"
        )

        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            enable_network_isolation=True,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image,
                environment=dict(plan.environment),
                model_data_source=sagemaker.CfnModel.ModelDataSourceProperty(
                    s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                        s3_uri=self.artifacts_url, s3_data_type="S3Prefix", compression_type="None"
                    )
                ),
            ),
            vpc_config=sagemaker.CfnModel.VpcConfigProperty(
                security_group_ids=[self.security_group.security_group_id],
                subnets=[s.subnet_id for s in subnets],
            ),
        )
        self.model.node.add_dependency(self.role, self.artifact_policy)
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            kms_key_id=key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=self.model.attr_model_name,
                    initial_instance_count=spec.replicas.min,
                    instance_type=plan.instance_type,
                    container_startup_health_check_timeout_in_seconds=STARTUP_HEALTH_CHECK_SECONDS,
                    model_data_download_timeout_in_seconds=MODEL_DOWNLOAD_SECONDS,
                )
            ],
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
        )
        self.scaling = appscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=spec.replicas.min,
            max_capacity=spec.replicas.max,
        )
        self.scaling.node.add_dependency(self.endpoint)
        self.scaling.scale_to_track_metric(
            "ConcurrentRequests",
            target_value=spec.target_in_flight,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_CONCURRENT_REQUESTS_PER_MODEL_HIGH_RESOLUTION,
        )


def _wildcard_reason(resource: str) -> str:
    if resource == "*":
        return (
            "ecr:GetAuthorizationToken, cloudwatch:PutMetricData (limited to the /aws/sagemaker/* namespaces by "
            "condition) and the EC2 network-interface calls of in-VPC endpoints have no resource-level permissions."
        )
    if "log-group" in resource:
        return "The log streams SageMaker creates for this endpoint's instances, named at run time."
    raise ValueError(f"unexpected wildcard in the SageMaker execution policy: {resource}")
