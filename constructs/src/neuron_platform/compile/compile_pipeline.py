"""The compile pipeline: Step Functions driving AWS Batch, with a registry and notifications.

Trust boundary: a caller who may start the state machine chooses a spec, and its image
only among the stack repository's images by digest (the Validate step applies the
library's spec rules to the input); the full image reference is part of the cache key.
Compile jobs (Batch, or the on-cluster Job) write only ``staging/`` and the Neuron cache.
Only the promote step's role may write ``artifacts/`` (its policy, and a bucket policy
denying every other principal); it copies a staged file only after recomputing its sha256
against the job's manifest, at the exact S3 version it hashed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    CfnResource,
    DockerImage,
    Duration,
    ILocalBundling,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from constructs import Construct
from neuron_platform import facts
from neuron_platform.assets import runtime_asset
from neuron_platform.compile import cache_key as cache_key_module
from neuron_platform.compile import spec_rules as spec_rules_module
from neuron_platform.compile.artifact_store import (
    ARTIFACTS_PREFIX,
    CACHE_PREFIX,
    REGISTRY_KEY,
    STAGING_PREFIX,
    STATUS_COMPILING,
    STATUS_FAILED,
    STATUS_READY,
    ArtifactStore,
    ArtifactStoreRef,
)
from neuron_platform.compliance import (
    acknowledge_managed_policies,
    acknowledge_wildcard_resources,
    skip_checkov,
)
from neuron_platform.launch_template import hardened_launch_template

EVENT_SOURCE = "neuron-platform.compile"
EVENT_DETAIL_TYPE = "Neuron artifacts registered"
JOB_DEFINITION_NAME_SUFFIX = "-neuron-compile"
# Share of a machine's memory one compile container may ask for (ECS and the OS keep the rest).
CONTAINER_MEMORY_FRACTION = 0.9
# Files hashed and copied at once by the promote step (one Lambda invocation each).
PROMOTE_CONCURRENCY = 8


@dataclass(frozen=True)
class ClusterCompileTarget:
    """Where the pipeline sends the compiles of ``endpoints``: the function of a
    :class:`~neuron_platform.compile.cluster_compile.ClusterCompile`, by name. By name, not
    by reference, so the pipeline's stack need not wait for the cluster (the function may
    live in a stack deployed after it; until it exists those compiles fail, and say so)."""

    function_name: str
    endpoints: tuple[str, ...]


# A file's sha256 is computed by streaming it through the promote function: its 15 minutes
# cover about 80-150 GB per file at S3's single-stream rates.
PROMOTE_TIMEOUT = Duration.minutes(15)


class CompilePipeline(Construct):
    """Compile a model once per spec and record it.

    States: ``Validate`` (Lambda: the library's spec rules, the image in this stack's
    repository by digest, cache key, sizing) -> ``LookUpCache`` (DynamoDB; a READY entry
    ends the run as a cache hit in seconds) -> ``Claim`` (a conditional write, so two runs
    of one spec never compile twice) -> ``RegisterJobDefinition`` (the spec's image) ->
    ``Compile`` (AWS Batch job, run to completion; it writes the run's staging prefix) ->
    ``Verify`` (Lambda: the staged files match the job's manifest) -> ``PromoteFiles``
    (Map of Lambda invocations: each file's sha256 recomputed, then that exact version
    copied to ``artifacts/<cache key>/``) -> ``Publish`` (the manifest last, staging
    removed) -> ``Register`` (DynamoDB: READY, files with sha256 and versions, location) ->
    ``Announce`` (EventBridge). Every task has a catch: after ``Claim`` the entry is marked
    FAILED, and every failure is published to the SNS topic (its own KMS key) before the
    run fails.

    The job runs on a Batch compute environment of memory-optimized instances that scales
    to zero; Batch retries attempts lost to the host (capacity, instance termination, image
    pulls) and the state machine retries Batch API errors with backoff.

    ``model_bucket_account``: the account that must own the ``model_buckets`` (default: this
    stack's); the job may read a bucket of that name only while that account owns it.

    ``lambda_code``: the folder holding ``validate.py``, ``verify.py`` and ``promote.py``; by default the
    repository's ``runtime_assets/compile/lambdas``, shipped inside the installed package
    (see :mod:`neuron_platform.assets`).

    Example::

        store = ArtifactStore(self, "Artifacts")
        CompilePipeline(
            self, "Compile", project="neuron", vpc=vpc, subnets=vpc.private_subnets, store=store,
            instance_types=["r7i.4xlarge", "r7i.16xlarge"], log_key=key,
        )
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: str,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        store: ArtifactStore,
        instance_types: Sequence[str],
        log_key: kms.IKey,
        lambda_code: Path | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        max_vcpus: int = 128,
        job_timeout_minutes: int = 240,
        disk_gib: int = 500,
        notification_emails: Sequence[str] = (),
        model_buckets: Sequence[str] = (),
        model_bucket_account: str | None = None,
        hf_token_secret_arn: str | None = None,
        cluster_compile: ClusterCompileTarget | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.cluster_compile = cluster_compile
        job_timeout = Duration.minutes(job_timeout_minutes)
        machines = [facts.compile_machine(name) for name in instance_types]
        largest = max(machines, key=lambda m: m.host_memory_gib)
        self.max_container_memory_gib = int(largest.host_memory_gib * CONTAINER_MEMORY_FRACTION)
        self.job_definition_name = f"{project}{JOB_DEFINITION_NAME_SUFFIX}"

        def log_group(name: str) -> logs.LogGroup:
            return logs.LogGroup(
                self, name, encryption_key=log_key, retention=log_retention, removal_policy=removal_policy
            )

        # --- where the job runs --------------------------------------------------------
        self.security_group = ec2.SecurityGroup(
            self,
            "JobSecurityGroup",
            vpc=vpc,
            description="Compile machines: HTTPS out (Hugging Face, S3, ECR, Batch); nothing in",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs and model hubs")
        # IMDSv2 hop 1: containers (bridge network) cannot reach the instance role.
        self.launch_template = hardened_launch_template(self, "LaunchTemplate", root_volume_gib=disk_gib)
        self.instance_role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonEC2ContainerServiceforEC2Role")
            ],
        )
        acknowledge_managed_policies(
            self.instance_role,
            ["service-role/AmazonEC2ContainerServiceforEC2Role"],
            "The AWS-maintained ECS container-instance policy Batch documents for EC2 compute environments "
            "(register with ECS, pull from ECR, ship container logs).",
        )
        self.compute_environment = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "ComputeEnvironment",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)),
            instance_types=[ec2.InstanceType(name) for name in instance_types],
            use_optimal_instance_classes=False,
            minv_cpus=0,
            maxv_cpus=max_vcpus,
            allocation_strategy=batch.AllocationStrategy.BEST_FIT_PROGRESSIVE,
            security_groups=[self.security_group],
            launch_template=self.launch_template,
            instance_role=self.instance_role,
            spot=False,
        )
        self.queue = batch.JobQueue(self, "Queue", priority=1)
        self.queue.add_compute_environment(self.compute_environment, 1)

        self.job_logs = log_group("JobLogs")
        # ECS assumes it for tasks of this account and region only (ECS's confused-deputy keys).
        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.PrincipalWithConditions(
                iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                {
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}:*"},
                },
            ),
            description="Compile job containers: model sources, the run's staging prefix and the Neuron cache",
        )
        grant_job_access(
            self.job_role,
            store,
            model_buckets=model_buckets,
            model_bucket_account=model_bucket_account,
            hf_token_secret_arn=hf_token_secret_arn,
        )

        # --- the Lambda steps ------------------------------------------------------------
        code = lambda_step_code(lambda_code or runtime_asset("compile/lambdas"))

        def step_function(
            name: str,
            handler: str,
            environment: dict[str, str],
            *,
            timeout: Duration | None = None,
            memory_mib: int = 256,
            concurrency: int = 10,
        ) -> lambda_.Function:
            group = log_group(f"{name}Logs")
            # Its own role: write to its own log group, nothing else unless granted below.
            role = iam.Role(self, f"{name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
            group.grant_write(role)
            function = lambda_.Function(
                self,
                name,
                runtime=lambda_.Runtime.PYTHON_3_14,
                handler=handler,
                code=code,
                role=role,
                timeout=timeout or Duration.seconds(60),
                memory_size=memory_mib,
                environment=environment,
                log_group=group,
                # Compile runs are rare; a cap keeps a runaway caller from draining account concurrency.
                reserved_concurrent_executions=concurrency,
            )
            cfn = function.node.default_child
            assert isinstance(cfn, CfnResource)
            skip_checkov(
                cfn, "CKV_AWS_116", "A synchronous Step Functions task: failures go to the state machine's catch."
            )
            skip_checkov(
                cfn, "CKV_AWS_117", "Calls only S3 (verify, promote) or nothing (validate); no VPC resources to reach."
            )
            skip_checkov(
                cfn, "CKV_AWS_173", "Environment holds a bucket name, prefixes, a repository URI and a number."
            )
            return function

        self.validate_function = step_function(
            "ValidateFunction",
            "validate.handler",
            {
                "ARTIFACTS_BUCKET": store.bucket.bucket_name,
                "ARTIFACTS_PREFIX": ARTIFACTS_PREFIX,
                "STAGING_PREFIX": STAGING_PREFIX,
                # Compile images come from this repository, by digest, and from nowhere else.
                "IMAGE_REPOSITORY": store.repository.repository_uri,
                "MAX_MEMORY_GIB": str(self.max_container_memory_gib),
                # Endpoints whose (vLLM) artifacts compile on the cluster; the rest run on Batch.
                "CLUSTER_ENDPOINTS": ",".join(cluster_compile.endpoints) if cluster_compile else "",
            },
        )
        self.verify_function = step_function("VerifyFunction", "verify.handler", {})
        assert self.verify_function.role is not None
        grant_prefixes(self.verify_function.role, store, [STAGING_PREFIX], write=False)
        # The only writer of artifacts/: hashes each staged file, copies the version it hashed.
        self.promote_function = step_function(
            "PromoteFunction",
            "promote.handler",
            {"ARTIFACTS_PREFIX": ARTIFACTS_PREFIX, "STAGING_PREFIX": STAGING_PREFIX},
            timeout=PROMOTE_TIMEOUT,
            memory_mib=1769,  # one full vCPU for sha256 and more network throughput
            concurrency=PROMOTE_CONCURRENCY * 2,
        )
        assert self.promote_function.role is not None
        self.promote_role = self.promote_function.role
        grant_promotion(self.promote_role, store)
        store.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyThePromoteStepWritesArtifacts",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[store.bucket.arn_for_objects(f"{ARTIFACTS_PREFIX}*")],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": self.promote_role.role_arn}},
            )
        )

        # --- notifications -----------------------------------------------------------------
        # Its own key: the state machine publishes through SNS, which needs the key for it.
        self.topic_key = kms.Key(
            self,
            "FailuresKey",
            description="Encrypts the compile pipeline's failure notifications",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.topic = sns.Topic(self, "Failures", master_key=self.topic_key, enforce_ssl=True)
        for email in notification_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        # --- the state machine ----------------------------------------------------------------
        table = store.registry
        key_attr = {
            REGISTRY_KEY: tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.validated.cacheKey"))
        }

        notify = tasks.SnsPublish(
            self,
            "NotifyFailure",
            topic=self.topic,
            subject="Neuron compile failed",
            message=sfn.TaskInput.from_object(
                {
                    "execution": sfn.JsonPath.execution_id,
                    "error": sfn.JsonPath.string_at("$.error.Error"),
                    "cause": sfn.JsonPath.string_at("$.error.Cause"),
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        failed = sfn.Fail(self, "CompileFailed", cause_path="$.error.Cause", error_path="$.error.Error")
        # A notification that cannot be sent must not hide the failure it reports.
        notify.add_catch(failed, errors=[sfn.Errors.ALL], result_path="$.notifyError")
        notify.next(failed)
        mark_failed = tasks.DynamoUpdateItem(
            self,
            "MarkFailed",
            table=table,
            key=key_attr,
            update_expression="SET #s = :failed, error_message = :cause, finished_at = :now",
            expression_attribute_names={"#s": "status"},
            expression_attribute_values={
                ":failed": tasks.DynamoAttributeValue.from_string(STATUS_FAILED),
                ":cause": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.error.Cause")),
                ":now": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$$.State.EnteredTime")),
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        mark_failed.add_catch(notify, result_path="$.markError")
        mark_failed.next(notify)

        def on_error(task: sfn.TaskStateBase | sfn.Map, handler: sfn.IChainable) -> None:
            task.add_catch(handler, errors=[sfn.Errors.ALL], result_path="$.error")

        validate = tasks.LambdaInvoke(
            self,
            "Validate",
            lambda_function=self.validate_function,
            # The whole execution input, and the execution's name for the run's staging prefix.
            payload=sfn.TaskInput.from_object(
                {"input": sfn.JsonPath.object_at("$"), "executionName": sfn.JsonPath.string_at("$$.Execution.Name")}
            ),
            payload_response_only=True,
            result_path="$.validated",
            task_timeout=sfn.Timeout.duration(Duration.minutes(2)),
        )
        on_error(validate, notify)
        look_up = tasks.DynamoGetItem(
            self,
            "LookUpCache",
            table=table,
            key=key_attr,
            consistent_read=True,
            result_path="$.lookup",
        )
        on_error(look_up, notify)
        cache_hit = sfn.Pass(
            self,
            "CacheHit",
            parameters={
                "cacheHit": True,
                "cacheKey": sfn.JsonPath.string_at("$.validated.cacheKey"),
                "artifactsUrl": sfn.JsonPath.string_at("$.lookup.Item.artifacts_url.S"),
            },
        )
        claim = tasks.DynamoPutItem(
            self,
            "Claim",
            table=table,
            item={
                **key_attr,
                "status": tasks.DynamoAttributeValue.from_string(STATUS_COMPILING),
                "spec_json": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.validated.specJson")),
                "model_name": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.validated.modelName")),
                "sdk_version": tasks.DynamoAttributeValue.from_string(
                    sfn.JsonPath.string_at("$.validated.spec.sdk_version")
                ),
                "artifacts_url": tasks.DynamoAttributeValue.from_string(
                    sfn.JsonPath.string_at("$.validated.artifactsUrl")
                ),
                "execution_arn": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.execution_id),
                "started_at": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$$.Execution.StartTime")),
            },
            # Another run may hold this key; a FAILED entry may be retried.
            condition_expression="attribute_not_exists(#k) OR #s = :failed",
            expression_attribute_names={"#k": REGISTRY_KEY, "#s": "status"},
            expression_attribute_values={":failed": tasks.DynamoAttributeValue.from_string(STATUS_FAILED)},
            result_path=sfn.JsonPath.DISCARD,
        )
        claim.add_catch(
            sfn.Fail(
                self,
                "AlreadyCompiling",
                error="AlreadyCompiling",
                cause="Another execution is compiling this spec; watch it with 'compile status'.",
            ),
            errors=["DynamoDB.ConditionalCheckFailedException"],
        )
        on_error(claim, notify)

        job_definition_arn = (
            f"arn:{stack.partition}:batch:{stack.region}:{stack.account}:job-definition/{self.job_definition_name}"
        )
        container: dict[str, object] = {
            "Image": sfn.JsonPath.string_at("$.validated.spec.image"),
            "JobRoleArn": self.job_role.role_arn,
            "ResourceRequirements": [
                {"Type": "MEMORY", "Value": sfn.JsonPath.string_at("$.validated.memoryMiB")},
                {"Type": "VCPU", "Value": sfn.JsonPath.string_at("$.validated.vcpus")},
            ],
            "Environment": [
                {"Name": "NEURON_COMPILE_CACHE_URL", "Value": store.cache_url},
                {"Name": "WORK_DIR", "Value": "/work"},
                # The ARN, never the token: the job reads the secret with its own role.
                *([{"Name": "HF_TOKEN_SECRET_ARN", "Value": hf_token_secret_arn}] if hf_token_secret_arn else []),
            ],
            "LogConfiguration": {
                "LogDriver": "awslogs",
                "Options": {
                    "awslogs-group": self.job_logs.log_group_name,
                    "awslogs-region": stack.region,
                    "awslogs-stream-prefix": "compile",
                },
            },
        }
        register_definition = tasks.CallAwsService(
            self,
            "RegisterJobDefinition",
            service="batch",
            action="registerJobDefinition",
            parameters={
                "JobDefinitionName": self.job_definition_name,
                "Type": "container",
                "PlatformCapabilities": ["EC2"],
                "PropagateTags": True,
                "ContainerProperties": container,
                "Timeout": {"AttemptDurationSeconds": int(job_timeout.to_seconds())},
                "RetryStrategy": {
                    "Attempts": 3,
                    # Retry only what the host lost (capacity, termination, image pulls);
                    # a compiler failure fails the same way every time.
                    "EvaluateOnExit": [
                        {"OnStatusReason": "Host EC2*", "Action": "RETRY"},
                        {"OnReason": "CannotPullContainerError*", "Action": "RETRY"},
                        {"OnReason": "*", "Action": "EXIT"},
                    ],
                },
            },
            iam_resources=[job_definition_arn, f"{job_definition_arn}:*"],
            iam_action="batch:RegisterJobDefinition",
            result_selector={"arn": sfn.JsonPath.string_at("$.JobDefinitionArn")},
            result_path="$.jobDefinition",
        )
        on_error(register_definition, mark_failed)
        compile_job = tasks.BatchSubmitJob(
            self,
            "Compile",
            job_name=sfn.JsonPath.string_at("$.validated.cacheKey"),
            job_queue_arn=self.queue.job_queue_arn,
            job_definition_arn=sfn.JsonPath.string_at("$.jobDefinition.arn"),
            container_overrides=tasks.BatchContainerOverrides(
                environment={
                    "SPEC_JSON": sfn.JsonPath.string_at("$.validated.specJson"),
                    "CACHE_KEY": sfn.JsonPath.string_at("$.validated.cacheKey"),
                    # The run's staging prefix: the job's role can write nothing else there.
                    "OUTPUT_URL": sfn.JsonPath.string_at("$.validated.outputUrl"),
                    # The engine and the toolchain the spec's SDK ships; the job refuses another.
                    "ENGINE": sfn.JsonPath.string_at("$.validated.neuron.engine"),
                    "EXPECTED_NEURONX_CC": sfn.JsonPath.string_at("$.validated.neuron.neuronxCc"),
                    "EXPECTED_RUNTIME": sfn.JsonPath.string_at("$.validated.neuron.runtime"),
                }
            ),
            # Each attempt is bounded by the job definition's timeout; the whole run by the
            # state machine's (three attempts plus queueing while Batch scales from zero).
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_selector={"jobId": sfn.JsonPath.string_at("$.JobId"), "status": sfn.JsonPath.string_at("$.Status")},
            result_path="$.job",
        )
        compile_job.add_retry(
            errors=["Batch.ServerException", "Batch.AWSBatchException"],
            interval=Duration.seconds(30),
            max_attempts=3,
            backoff_rate=2.0,
        )
        on_error(compile_job, mark_failed)
        verify = tasks.LambdaInvoke(
            self,
            "Verify",
            lambda_function=self.verify_function,
            payload=sfn.TaskInput.from_object(
                {
                    "bucket": sfn.JsonPath.string_at("$.validated.bucket"),
                    "stagingPrefix": sfn.JsonPath.string_at("$.validated.stagingPrefix"),
                    "cacheKey": sfn.JsonPath.string_at("$.validated.cacheKey"),
                    # The manifest must record this SDK, image and engine, or nothing registers.
                    "sdkVersion": sfn.JsonPath.string_at("$.validated.spec.sdk_version"),
                    "image": sfn.JsonPath.string_at("$.validated.spec.image"),
                    "engine": sfn.JsonPath.string_at("$.validated.neuron.engine"),
                }
            ),
            payload_response_only=True,
            result_path="$.verified",
            task_timeout=sfn.Timeout.duration(Duration.minutes(2)),
        )
        on_error(verify, mark_failed)
        promote_file = tasks.LambdaInvoke(
            self,
            "PromoteFile",
            lambda_function=self.promote_function,
            payload=sfn.TaskInput.from_json_path_at("$"),
            payload_response_only=True,
            task_timeout=sfn.Timeout.duration(PROMOTE_TIMEOUT),
        )
        promote_file.add_retry(
            errors=["Lambda.ServiceException", "Lambda.TooManyRequestsException", "Lambda.SdkClientException"],
            max_attempts=3,
        )
        promote_files = sfn.Map(
            self,
            "PromoteFiles",
            items_path="$.verified.files",
            max_concurrency=PROMOTE_CONCURRENCY,
            item_selector={
                "action": "file",
                "bucket": sfn.JsonPath.string_at("$.validated.bucket"),
                "stagingPrefix": sfn.JsonPath.string_at("$.validated.stagingPrefix"),
                "artifactsPrefix": sfn.JsonPath.string_at("$.validated.artifactsPrefix"),
                "file": sfn.JsonPath.object_at("$$.Map.Item.Value"),
            },
            result_path="$.promoted",
        )
        promote_files.item_processor(promote_file)
        on_error(promote_files, mark_failed)
        publish = tasks.LambdaInvoke(
            self,
            "Publish",
            lambda_function=self.promote_function,
            payload=sfn.TaskInput.from_object(
                {
                    "action": "publish",
                    "bucket": sfn.JsonPath.string_at("$.validated.bucket"),
                    "stagingPrefix": sfn.JsonPath.string_at("$.validated.stagingPrefix"),
                    "artifactsPrefix": sfn.JsonPath.string_at("$.validated.artifactsPrefix"),
                    "manifestVersionId": sfn.JsonPath.string_at("$.verified.manifestVersionId"),
                    "files": sfn.JsonPath.object_at("$.promoted"),
                }
            ),
            payload_response_only=True,
            result_path="$.published",
            task_timeout=sfn.Timeout.duration(PROMOTE_TIMEOUT),
        )
        on_error(publish, mark_failed)
        register = tasks.DynamoUpdateItem(
            self,
            "Register",
            table=table,
            key=key_attr,
            update_expression=(
                "SET #s = :ready, files_json = :files, total_bytes = :bytes, finished_at = :now, "
                "engine = :engine, neuronx_cc = :cc, neuron_runtime = :runtime, image = :image"
            ),
            expression_attribute_names={"#s": "status"},
            expression_attribute_values={
                ":ready": tasks.DynamoAttributeValue.from_string(STATUS_READY),
                # Each promoted file with its sha256, size and S3 version under artifacts/.
                ":files": tasks.DynamoAttributeValue.from_string(
                    sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.promoted"))
                ),
                ":bytes": tasks.DynamoAttributeValue.number_from_string(
                    sfn.JsonPath.string_at("$.verified.totalBytesText")
                ),
                ":now": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$$.State.EnteredTime")),
                # What compiled them, as the job recorded it (serving checks the same fields).
                ":engine": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.verified.neuron.engine")),
                ":cc": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.verified.neuron.neuronxCc")),
                ":runtime": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.verified.neuron.runtime")),
                ":image": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.validated.spec.image")),
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        on_error(register, mark_failed)
        announce = tasks.EventBridgePutEvents(
            self,
            "Announce",
            entries=[
                tasks.EventBridgePutEventsEntry(
                    source=EVENT_SOURCE,
                    detail_type=EVENT_DETAIL_TYPE,
                    detail=sfn.TaskInput.from_object(
                        {
                            "cacheKey": sfn.JsonPath.string_at("$.validated.cacheKey"),
                            "artifactsUrl": sfn.JsonPath.string_at("$.validated.artifactsUrl"),
                            "model": sfn.JsonPath.string_at("$.validated.modelName"),
                            "target": sfn.JsonPath.string_at("$.validated.spec.target"),
                        }
                    ),
                    event_bus=events.EventBus.from_event_bus_name(self, "DefaultBus", "default"),
                )
            ],
            result_path=sfn.JsonPath.DISCARD,
        )
        on_error(announce, mark_failed)
        done = sfn.Pass(
            self,
            "Compiled",
            parameters={
                "cacheHit": False,
                "cacheKey": sfn.JsonPath.string_at("$.validated.cacheKey"),
                "artifactsUrl": sfn.JsonPath.string_at("$.validated.artifactsUrl"),
                "files": sfn.JsonPath.object_at("$.promoted"),
            },
        )
        verify.next(promote_files).next(publish).next(register).next(announce).next(done)
        batch_steps = register_definition.next(compile_job).next(verify)
        compile_steps: sfn.IChainable = batch_steps
        if cluster_compile is not None:
            compile_steps = (
                sfn.Choice(self, "Where?")
                .when(
                    sfn.Condition.string_equals("$.validated.placement", "cluster"),
                    self._cluster_steps(cluster_compile, verify, mark_failed),
                )
                .otherwise(batch_steps)
            )
        definition = validate.next(look_up).next(
            sfn.Choice(self, "Cached?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.lookup.Item"),
                    sfn.Condition.string_equals("$.lookup.Item.status.S", STATUS_READY),
                ),
                cache_hit,
            )
            .otherwise(claim.next(compile_steps))
        )
        self.state_machine_logs = log_group("StateMachineLogs")
        # Step Functions assumes it for this account's state machines in this region only.
        self.state_machine_role = iam.Role(
            self,
            "StateMachineRole",
            assumed_by=iam.PrincipalWithConditions(
                iam.ServicePrincipal("states.amazonaws.com"),
                {
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:states:{stack.region}:{stack.account}:stateMachine:*"
                    },
                },
            ),
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            role=self.state_machine_role,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.seconds(job_timeout.to_seconds() * 3 + 3600),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.state_machine_logs, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
        )
        # registerJobDefinition passes the job role to Batch.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.job_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        # Publishing to the encrypted topic: SNS uses the key on the publisher's behalf, so the
        # role's policy and the key's policy both allow it, through SNS only.
        via_sns = {"StringEquals": {"kms:ViaService": f"sns.{stack.region}.amazonaws.com"}}
        topic_key_actions = ["kms:GenerateDataKey", "kms:Decrypt"]
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=topic_key_actions, resources=[self.topic_key.key_arn], conditions=via_sns)
        )
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CompileStateMachinePublishes",
                principals=[iam.ArnPrincipal(self.state_machine_role.role_arn)],
                actions=topic_key_actions,
                resources=["*"],
                conditions=via_sns,
            )
        )

        policy = self.state_machine.role.node.find_child("DefaultPolicy")
        assert isinstance(policy, iam.Policy)
        acknowledge_wildcard_resources(policy, _state_machine_wildcard_reason)
        for role in (self.job_role, self.verify_function.role, self.promote_role):
            role_policy = role.node.find_child("DefaultPolicy") if role is not None else None
            if isinstance(role_policy, iam.Policy):
                acknowledge_wildcard_resources(role_policy, _object_wildcard_reason)

    def _cluster_steps(
        self, cluster_compile: ClusterCompileTarget, verify: sfn.IChainable, mark_failed: sfn.IChainable
    ) -> sfn.IChainable:
        """Create the endpoint's compile Job on the cluster, then poll it until it ends."""
        function = lambda_.Function.from_function_name(self, "ClusterJobFunction", cluster_compile.function_name)

        def step(name: str, action: str, fields: dict[str, object], result_path: str) -> tasks.LambdaInvoke:
            task = tasks.LambdaInvoke(
                self,
                name,
                lambda_function=function,
                payload=sfn.TaskInput.from_object({"action": action, **fields}),
                payload_response_only=True,
                result_path=result_path,
                task_timeout=sfn.Timeout.duration(Duration.minutes(2)),
            )
            task.add_retry(errors=["Lambda.ServiceException", "Lambda.TooManyRequestsException"], max_attempts=3)
            task.add_catch(mark_failed, errors=[sfn.Errors.ALL], result_path="$.error")
            return task

        start = step(
            "StartClusterJob",
            "start",
            {
                "endpoint": sfn.JsonPath.string_at("$.validated.endpoint"),
                "spec": sfn.JsonPath.object_at("$.validated.spec"),
                "specJson": sfn.JsonPath.string_at("$.validated.specJson"),
                "cacheKey": sfn.JsonPath.string_at("$.validated.cacheKey"),
                # The run's staging prefix: the compile pod's role can write nothing else there.
                "outputUrl": sfn.JsonPath.string_at("$.validated.outputUrl"),
                "executionId": sfn.JsonPath.execution_id,
            },
            "$.clusterJob",
        )
        wait = sfn.Wait(self, "WaitForClusterJob", time=sfn.WaitTime.duration(Duration.seconds(60)))
        status = step(
            "ClusterJobStatus",
            "status",
            {"jobName": sfn.JsonPath.string_at("$.clusterJob.jobName")},
            "$.clusterJobStatus",
        )
        # A failed Job raises in the status step (its catch marks the entry failed); the Job's
        # activeDeadlineSeconds bounds a run that never ends.
        done = sfn.Choice(self, "ClusterJobDone?")
        done.when(sfn.Condition.string_equals("$.clusterJobStatus.state", "SUCCEEDED"), verify)
        done.otherwise(wait)
        return start.next(wait).next(status).next(done)


def _in_account(stack: Stack, account: str | None = None) -> dict[str, str]:
    """The bucket a statement names must belong to ``account`` (default: the stack's)."""
    return {"s3:ResourceAccount": account or stack.account}


def _via_s3(stack: Stack) -> dict[str, dict[str, str]]:
    return {"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}}


def grant_prefixes(
    role: iam.IRole, store: ArtifactStoreRef, prefixes: Sequence[str], *, write: bool, read: bool = True
) -> None:
    """Objects under ``prefixes`` (each ends in ``/``) of the store's bucket only, with the KMS
    calls SSE-KMS needs through S3 only (no action wildcards). ``write`` without ``read``: put
    objects, never read them back (multipart uploads to an SSE-KMS bucket need kms:Decrypt)."""
    stack = Stack.of(role)
    for prefix in prefixes:
        if not prefix.endswith("/"):
            raise ValueError(f"prefix {prefix!r} must end in '/': 'x*' would also match 'x-other/...'")
    actions = (["s3:GetObject"] if read else []) + (["s3:PutObject", "s3:AbortMultipartUpload"] if write else [])
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=actions,
            resources=[store.bucket.arn_for_objects(f"{p}*") for p in prefixes],
            conditions={"StringEquals": _in_account(stack)},
        )
    )
    if read:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[store.bucket.bucket_arn],
                conditions={
                    "StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]},
                    "StringEquals": _in_account(stack),
                },
            )
        )
    kms_actions = ["kms:Decrypt"] + (["kms:GenerateDataKey"] if write else [])
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=kms_actions, resources=[store.key.key_arn], conditions=_via_s3(stack))
    )


def grant_model_buckets(role: iam.IRole, names: Sequence[str], *, account: str | None = None) -> None:
    """Read the configured model buckets, only while ``account`` (default: the stack's) owns them:
    a bucket name in the configuration could otherwise be deleted and claimed by someone else."""
    if not names:
        return
    stack = Stack.of(role)
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:GetObject", "s3:ListBucket"],
            resources=[
                r for n in names for r in (f"arn:{stack.partition}:s3:::{n}", f"arn:{stack.partition}:s3:::{n}/*")
            ],
            conditions={"StringEquals": _in_account(stack, account)},
        )
    )


def grant_job_access(
    role: iam.IRole,
    store: ArtifactStoreRef,
    *,
    model_buckets: Sequence[str] = (),
    model_bucket_account: str | None = None,
    hf_token_secret_arn: str | None = None,
) -> None:
    """What a compile job may touch, on Batch or on the cluster: write its staging prefix (never
    artifacts/), read and write the Neuron cache, read the model buckets, read the one
    Hugging Face token secret."""
    grant_prefixes(role, store, [STAGING_PREFIX], write=True, read=False)
    grant_prefixes(role, store, [CACHE_PREFIX], write=True)
    grant_model_buckets(role, model_buckets, account=model_bucket_account)
    if hf_token_secret_arn:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[hf_token_secret_arn])
        )


def grant_promotion(role: iam.IRole, store: ArtifactStore) -> None:
    """The promote step: read staged versions, write and prune artifacts/, delete staged versions."""
    stack = Stack.of(store)
    in_account = {"StringEquals": _in_account(stack)}
    staged = store.bucket.arn_for_objects(f"{STAGING_PREFIX}*")
    promoted = store.bucket.arn_for_objects(f"{ARTIFACTS_PREFIX}*")
    for actions, resources in (
        (["s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObjectVersion"], [staged]),
        (["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"], [promoted]),
    ):
        role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=resources, conditions=in_account))
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket", "s3:ListBucketVersions"],
            resources=[store.bucket.bucket_arn],
            conditions={
                "StringLike": {"s3:prefix": [f"{STAGING_PREFIX}*", f"{ARTIFACTS_PREFIX}*"]},
                **in_account,
            },
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[store.key.key_arn], conditions=_via_s3(stack)
        )
    )


def _object_wildcard_reason(resource: str) -> str:
    return (
        f"{resource}: objects under one prefix of a bucket (the artifact bucket's staging, artifacts or Neuron "
        "cache prefix, or a configured model bucket); names are cache keys, runs and Neuron graph hashes that "
        "exist only at run time."
    )


def _state_machine_wildcard_reason(resource: str) -> str:
    if resource == "*":
        return "X-Ray trace segments and CloudWatch Logs log delivery have no resource-level permissions."
    if resource.endswith(":*") and ("Function" in resource or ":function:" in resource):
        return "Step Functions invokes the function's current version; CDK grants its qualified ARNs too."
    if "job-definition" in resource:
        return (
            "The pipeline registers one job definition name per project (a new revision per compile image) and "
            "submits the revision it just registered; revision numbers are not known at deploy time."
        )
    raise ValueError(f"unexpected wildcard in the compile state machine policy: {resource}")


# Library modules the Lambda steps import as siblings (standard library only).
LIBRARY_MODULES = (cache_key_module, spec_rules_module)


@jsii.implements(ILocalBundling)
class _WithCacheKey:
    """Copies the Lambda steps and this package's cache_key.py and spec_rules.py into one
    asset, in-process: the pipeline and the serving constructs must derive the same key from
    one function, and the pipeline and the CLI must apply the same spec rules.
    ``extra_files`` (name -> text) are written beside them (the cluster step's Job templates)."""

    def __init__(self, source: Path, extra_files: Mapping[str, str]) -> None:
        self._source = source
        self._extra = dict(extra_files)

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: object) -> bool:
        shutil.copytree(self._source, output_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        for module in LIBRARY_MODULES:
            shutil.copy2(Path(module.__file__ or ""), Path(output_dir) / Path(module.__file__ or "").name)
        for name, text in self._extra.items():
            (Path(output_dir) / name).write_text(text)
        return True


def lambda_step_code(source: Path, extra_files: Mapping[str, str] | None = None) -> lambda_.Code:
    """The pipeline's handlers plus ``cache_key.py`` and ``spec_rules.py`` (and ``extra_files``);
    hashed by content, no Docker."""
    extra = dict(extra_files or {})
    # The CDK caches a bundle by its source and bundling options: the extra files' digest
    # must be part of the options, or two bundles of one source would share an output.
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True).encode()).hexdigest()
    return lambda_.Code.from_asset(
        str(source),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            image=DockerImage.from_registry("unused-local-bundling"),
            local=_WithCacheKey(source, extra),
            environment={"EXTRA_FILES_SHA256": digest} if extra else None,
        ),
    )
