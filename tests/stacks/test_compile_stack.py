"""Fine-grained assertions on the compile stack: state machine, IAM, storage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from neuron_platform.compile.artifact_store import STATUS_COMPILING, STATUS_FAILED, STATUS_READY
from tests.conftest import SynthesizedApp
from tests.helpers import props, render_json, resources


def compile_json(app: SynthesizedApp) -> dict[str, Any]:
    assert app.platform.compile is not None
    return app.template_json(app.platform.compile)


def only(app: SynthesizedApp, type_name: str) -> tuple[str, dict[str, Any]]:
    assert app.platform.compile is not None
    (item,) = resources(app.template(app.platform.compile), type_name).items()
    return item


@pytest.fixture(scope="module")
def definition(inference_app: SynthesizedApp) -> dict[str, Any]:
    _, machine = only(inference_app, "AWS::StepFunctions::StateMachine")
    return render_json(props(machine)["DefinitionString"], compile_json(inference_app))  # type: ignore[no-any-return]


def states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return definition["States"]  # type: ignore[no-any-return]


# --- the state machine ---------------------------------------------------------------------


def test_states_in_order(definition: dict[str, Any]) -> None:
    s = states(definition)
    assert definition["StartAt"] == "Validate"
    path = ["Validate"]
    while "Next" in s[path[-1]]:
        path.append(s[path[-1]]["Next"])
    assert path == ["Validate", "LookUpCache", "Cached?"]
    assert s["Cached?"]["Default"] == "Claim"
    assert s["Claim"]["Next"] == "Where?"
    # Batch (optimum-neuron exports on CPU) by default; vLLM endpoints compile on their pool.
    assert s["Where?"]["Default"] == "RegisterJobDefinition"
    (rule,) = s["Where?"]["Choices"]
    assert rule == {"Variable": "$.validated.placement", "StringEquals": "cluster", "Next": "StartClusterJob"}
    path = ["RegisterJobDefinition"]
    while "Next" in s[path[-1]]:
        path.append(s[path[-1]]["Next"])
    assert path == ["RegisterJobDefinition", "Compile", "Verify", "Register", "Announce", "Compiled"]
    assert s["Compiled"].get("End") is True
    path = ["StartClusterJob"]
    while "Next" in s[path[-1]]:
        path.append(s[path[-1]]["Next"])
    assert path == ["StartClusterJob", "WaitForClusterJob", "ClusterJobStatus", "ClusterJobDone?"]
    (done,) = s["ClusterJobDone?"]["Choices"]
    assert (done["Variable"], done["StringEquals"], done["Next"]) == (
        "$.clusterJobStatus.state",
        "SUCCEEDED",
        "Verify",
    )
    assert s["ClusterJobDone?"]["Default"] == "WaitForClusterJob"


def test_cache_hit_ends_without_compiling(definition: dict[str, Any]) -> None:
    choice = states(definition)["Cached?"]
    (rule,) = choice["Choices"]
    assert rule["Next"] == "CacheHit"
    conditions = rule["And"]
    assert {"Variable": "$.lookup.Item", "IsPresent": True} in conditions
    assert {"Variable": "$.lookup.Item.status.S", "StringEquals": STATUS_READY} in conditions
    assert states(definition)["CacheHit"]["Type"] == "Pass"
    assert states(definition)["CacheHit"].get("End") is True
    look_up = states(definition)["LookUpCache"]
    assert look_up["Resource"].endswith(":states:::dynamodb:getItem")
    assert look_up["Parameters"]["ConsistentRead"] is True


def test_every_task_has_a_catch(definition: dict[str, Any]) -> None:
    tasks = {name: state for name, state in states(definition).items() if state["Type"] == "Task"}
    assert set(tasks) >= {
        "Validate",
        "LookUpCache",
        "Claim",
        "RegisterJobDefinition",
        "Compile",
        "Verify",
        "Register",
        "Announce",
    }
    for name, state in tasks.items():
        assert state.get("Catch"), name


def test_failures_are_recorded_then_notified(definition: dict[str, Any]) -> None:
    s = states(definition)
    before_claim = {"Validate", "LookUpCache"}
    after_claim = {"RegisterJobDefinition", "Compile", "Verify", "Register", "Announce"}
    for name in before_claim:
        assert [c["Next"] for c in s[name]["Catch"]] == ["NotifyFailure"], name
    for name in after_claim:
        assert [c["Next"] for c in s[name]["Catch"]] == ["MarkFailed"], name
    assert s["MarkFailed"]["Next"] == "NotifyFailure"
    assert s["MarkFailed"]["Catch"][0]["Next"] == "NotifyFailure"
    assert s["MarkFailed"]["Parameters"]["ExpressionAttributeValues"][":failed"] == {"S": STATUS_FAILED}
    assert s["NotifyFailure"]["Resource"].endswith(":states:::sns:publish")
    assert s["NotifyFailure"]["Next"] == "CompileFailed"
    assert s["CompileFailed"]["Type"] == "Fail"


def test_claim_is_conditional_and_a_busy_key_is_its_own_failure(definition: dict[str, Any]) -> None:
    claim = states(definition)["Claim"]
    assert claim["Parameters"]["ConditionExpression"] == "attribute_not_exists(#k) OR #s = :failed"
    assert claim["Parameters"]["Item"]["status"] == {"S": STATUS_COMPILING}
    first, *rest = claim["Catch"]
    assert first["ErrorEquals"] == ["DynamoDB.ConditionalCheckFailedException"]
    assert first["Next"] == "AlreadyCompiling"
    assert rest[0]["ErrorEquals"] == ["States.ALL"]


def test_compile_runs_the_batch_job_to_completion_with_retries_and_timeout(definition: dict[str, Any]) -> None:
    job = states(definition)["Compile"]
    assert job["Resource"].endswith(":states:::batch:submitJob.sync")
    # Each attempt: the job definition's 240 min; the whole run: the state machine's timeout.
    assert "Timeout" not in job["Parameters"]
    assert definition["TimeoutSeconds"] == 240 * 60 * 3 + 3600
    (retry,) = job["Retry"]
    assert retry["ErrorEquals"] == ["Batch.ServerException", "Batch.AWSBatchException"]
    assert retry["BackoffRate"] == 2
    assert retry["MaxAttempts"] == 3
    env = {e["Name"]: e["Value.$"] for e in job["Parameters"]["ContainerOverrides"]["Environment"]}
    assert env == {
        "SPEC_JSON": "$.validated.specJson",
        "CACHE_KEY": "$.validated.cacheKey",
        "ARTIFACTS_URL": "$.validated.artifactsUrl",
        "ENGINE": "$.validated.neuron.engine",
        "EXPECTED_NEURONX_CC": "$.validated.neuron.neuronxCc",
        "EXPECTED_RUNTIME": "$.validated.neuron.runtime",
    }
    assert job["Parameters"]["JobDefinition.$"] == "$.jobDefinition.arn"


def test_job_definition_uses_the_spec_image_and_retries_only_host_failures(definition: dict[str, Any]) -> None:
    params = states(definition)["RegisterJobDefinition"]["Parameters"]
    container = params["ContainerProperties"]
    assert container["Image.$"] == "$.validated.spec.image"
    requirements = {r["Type"]: r["Value.$"] for r in container["ResourceRequirements"]}
    assert requirements == {"MEMORY": "$.validated.memoryMiB", "VCPU": "$.validated.vcpus"}
    assert params["Timeout"] == {"AttemptDurationSeconds": 240 * 60}
    strategy = params["RetryStrategy"]
    assert strategy["Attempts"] == 3
    assert strategy["EvaluateOnExit"][-1] == {"OnReason": "*", "Action": "EXIT"}
    assert {"OnStatusReason": "Host EC2*", "Action": "RETRY"} in strategy["EvaluateOnExit"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["NEURON_COMPILE_CACHE_URL"].endswith("/neuron-cache/")


def test_register_records_files_and_ready(definition: dict[str, Any]) -> None:
    register = states(definition)["Register"]["Parameters"]
    assert register["ExpressionAttributeValues"][":ready"] == {"S": STATUS_READY}
    assert register["ExpressionAttributeValues"][":files"] == {"S.$": "States.JsonToString($.verified.files)"}
    announce = states(definition)["Announce"]["Parameters"]["Entries"][0]
    assert announce["Source"] == "neuron-platform.compile"
    assert announce["DetailType"] == "Neuron artifacts registered"


def test_lambda_steps_have_short_timeouts(definition: dict[str, Any]) -> None:
    for name in ("Validate", "Verify"):
        assert states(definition)[name]["TimeoutSeconds"] == 120


def test_state_machine_logs_everything_encrypted_and_traces(inference_app: SynthesizedApp) -> None:
    _, machine = only(inference_app, "AWS::StepFunctions::StateMachine")
    logging = props(machine)["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is True
    assert props(machine)["TracingConfiguration"] == {"Enabled": True}
    groups = resources(inference_app.template(inference_app.platform.compile), "AWS::Logs::LogGroup")  # type: ignore[arg-type]
    assert groups
    assert all("KmsKeyId" in props(g) for g in groups.values())


# --- IAM -----------------------------------------------------------------------------------------


def _statements(app: SynthesizedApp, prefix: str) -> list[dict[str, Any]]:
    policies = resources(app.template(app.platform.compile), "AWS::IAM::Policy")  # type: ignore[arg-type]
    (policy,) = [p for k, p in policies.items() if k.startswith(prefix)]
    return props(policy)["PolicyDocument"]["Statement"]  # type: ignore[no-any-return]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def test_job_role_reaches_its_prefixes_only(inference_app: SynthesizedApp) -> None:
    statements = _statements(inference_app, "PipelineJobRoleDefaultPolicy")
    objects = next(s for s in statements if "s3:PutObject" in _actions(s))
    assert sorted(_actions(objects)) == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    rendered = json.dumps(objects["Resource"])
    assert "/artifacts/*" in rendered
    assert "/neuron-cache/*" in rendered
    listing = next(s for s in statements if _actions(s) == ["s3:ListBucket"])
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["artifacts/*", "neuron-cache/*"]}}
    for statement in statements:
        assert all("*" not in action for action in _actions(statement)), statement


def test_verify_function_reads_artifacts_only(inference_app: SynthesizedApp) -> None:
    statements = _statements(inference_app, "PipelineVerifyFunctionRoleDefaultPolicy")
    actions = sorted(a for s in statements for a in _actions(s))
    assert "s3:PutObject" not in actions
    assert "s3:GetObject" in actions
    assert all("*" not in a for a in actions)


def test_state_machine_passes_only_the_job_role_to_ecs_tasks(inference_app: SynthesizedApp) -> None:
    statements = _statements(inference_app, "PipelineStateMachineRoleDefaultPolicy")
    pass_role = next(s for s in statements if _actions(s) == ["iam:PassRole"])
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert "JobRole" in json.dumps(pass_role["Resource"])
    register = next(s for s in statements if _actions(s) == ["batch:RegisterJobDefinition"])
    assert "job-definition/inf-small-neuron-compile" in json.dumps(register["Resource"])


# --- compute and storage ---------------------------------------------------------------------------


def test_compute_environment_scales_to_zero_on_the_configured_machines(inference_app: SynthesizedApp) -> None:
    _, environment = only(inference_app, "AWS::Batch::ComputeEnvironment")
    resources_ = props(environment)["ComputeResources"]
    assert resources_["MinvCpus"] == 0
    assert resources_["MaxvCpus"] == 128
    assert sorted(resources_["InstanceTypes"]) == ["r7i.16xlarge", "r7i.4xlarge", "r7i.8xlarge"]
    assert resources_["Type"] == "EC2"


def test_compile_machines_use_imdsv2_hop_1_and_an_encrypted_large_root(inference_app: SynthesizedApp) -> None:
    _, template = only(inference_app, "AWS::EC2::LaunchTemplate")
    data = props(template)["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    (device,) = data["BlockDeviceMappings"]
    assert device["Ebs"] == {"DeleteOnTermination": True, "Encrypted": True, "VolumeSize": 500, "VolumeType": "gp3"}


def test_registry_has_pitr_kms_and_survives_destroy(inference_app: SynthesizedApp) -> None:
    _, table = only(inference_app, "AWS::DynamoDB::GlobalTable")
    assert props(table)["KeySchema"] == [{"AttributeName": "cache_key", "KeyType": "HASH"}]
    (replica,) = props(table)["Replicas"]
    assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert replica["DeletionProtectionEnabled"] is True
    assert props(table)["SSESpecification"]["SSEType"] == "KMS"
    assert table["DeletionPolicy"] == "Retain"


def test_repository_is_immutable_scanned_encrypted_and_retained(inference_app: SynthesizedApp) -> None:
    _, repository = only(inference_app, "AWS::ECR::Repository")
    assert props(repository)["ImageTagMutability"] == "IMMUTABLE"
    assert props(repository)["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert props(repository)["EncryptionConfiguration"]["EncryptionType"] == "KMS"
    assert repository["DeletionPolicy"] == "Retain"


def test_artifact_bucket_is_kms_versioned_logged_and_retained(inference_app: SynthesizedApp) -> None:
    buckets = resources(inference_app.template(inference_app.platform.compile), "AWS::S3::Bucket")  # type: ignore[arg-type]
    (artifacts,) = [b for b in buckets.values() if "LoggingConfiguration" in props(b)]
    encryption = props(artifacts)["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert encryption["BucketKeyEnabled"] is True
    assert props(artifacts)["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(b["DeletionPolicy"] == "Retain" for b in buckets.values())


def test_failure_topic_is_encrypted_with_the_configured_subscription(inference_app: SynthesizedApp) -> None:
    _, topic = only(inference_app, "AWS::SNS::Topic")
    assert "KmsMasterKeyId" in props(topic)
    _, subscription = only(inference_app, "AWS::SNS::Subscription")
    assert props(subscription)["Protocol"] == "email"
    assert props(subscription)["Endpoint"] == "ml-platform@example.com"


def test_outputs_the_cli_reads(inference_app: SynthesizedApp) -> None:
    outputs = compile_json(inference_app)["Outputs"]
    assert {
        "StateMachineArn",
        "RegistryTableName",
        "ArtifactsBucketName",
        "RepositoryUri",
        "MaxCompileMemoryGiB",
    } <= set(outputs)
    assert outputs["MaxCompileMemoryGiB"]["Value"] == "460"  # 90 % of r7i.16xlarge's 512 GiB


def test_no_compile_stack_unless_enabled(synthesized: dict[str, SynthesizedApp]) -> None:
    for name, app in synthesized.items():
        assert (app.platform.compile is not None) == app.config.compile.enabled, name


def test_lambda_asset_carries_the_library_cache_key(inference_app: SynthesizedApp) -> None:
    functions = resources(inference_app.template(inference_app.platform.compile), "AWS::Lambda::Function")  # type: ignore[arg-type]
    steps = [f for f in functions.values() if props(f)["Handler"] in ("validate.handler", "verify.handler")]
    keys = {props(f)["Code"]["S3Key"] for f in steps}
    (key,) = keys  # both steps share one asset
    asset = inference_app.outdir / f"asset.{key.removesuffix('.zip')}"
    assert sorted(p.name for p in asset.iterdir()) == ["cache_key.py", "cluster_job.py", "validate.py", "verify.py"]
    from neuron_platform.compile import cache_key

    assert (asset / "cache_key.py").read_text() == Path(cache_key.__file__).read_text()


# --- compiles on the cluster (vLLM endpoints) ----------------------------------------------------


def test_only_the_cluster_step_carries_the_job_templates(inference_app: SynthesizedApp) -> None:
    functions = resources(inference_app.template(inference_app.platform.compile), "AWS::Lambda::Function")  # type: ignore[arg-type]
    by_handler = {props(f)["Handler"]: props(f)["Code"]["S3Key"].removesuffix(".zip") for f in functions.values()}
    cluster_asset = inference_app.outdir / f"asset.{by_handler['cluster_job.handler']}"
    steps_asset = inference_app.outdir / f"asset.{by_handler['validate.handler']}"
    templates = json.loads((cluster_asset / "job_templates.json").read_text())
    assert sorted(templates) == ["llama3-8b"]  # the EKS endpoint; the SageMaker one compiles on Batch
    assert not (steps_asset / "job_templates.json").exists()
    job = templates["llama3-8b"]["job"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["aws.amazon.com/neuron"] == "4"  # one replica's devices
    assert job["spec"]["template"]["spec"]["nodeSelector"]["neuron-platform/pool"] == "inf2-large"


def test_the_cluster_step_runs_in_the_vpc_with_the_cluster_security_group(inference_app: SynthesizedApp) -> None:
    functions = resources(inference_app.template(inference_app.platform.compile), "AWS::Lambda::Function")  # type: ignore[arg-type]
    (function,) = [props(f) for f in functions.values() if props(f)["Handler"] == "cluster_job.handler"]
    assert len(function["VpcConfig"]["SubnetIds"]) == 2
    (group,) = function["VpcConfig"]["SecurityGroupIds"]
    assert "ClusterSecurityGroupId" in json.dumps(group)
    env = function["Environment"]["Variables"]
    assert env["NAMESPACE"] == "neuron-compile"
    assert {"CLUSTER_NAME", "CLUSTER_ENDPOINT", "CLUSTER_CA", "IMAGE_REPOSITORY", "CACHE_URL"} <= set(env)


def test_the_cluster_step_may_only_edit_the_compile_namespace(inference_app: SynthesizedApp) -> None:
    _, entry = only(inference_app, "AWS::EKS::AccessEntry")
    (policy,) = props(entry)["AccessPolicies"]
    assert policy["AccessScope"] == {"Type": "namespace", "Namespaces": ["neuron-compile"]}
    assert policy["PolicyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"


def test_compile_pods_get_their_own_pod_identity(inference_app: SynthesizedApp) -> None:
    _, association = only(inference_app, "AWS::EKS::PodIdentityAssociation")
    assert (props(association)["Namespace"], props(association)["ServiceAccount"]) == (
        "neuron-compile",
        "neuron-compile",
    )


def test_configs_without_vllm_endpoints_have_no_cluster_step(synthesized: dict[str, SynthesizedApp]) -> None:
    for app in synthesized.values():
        if app.platform.compile is None or app.name == "inference-small":
            continue
        assert app.platform.compile.cluster_compile is None
