"""Fine-grained assertions on the compile stack: state machine, IAM, storage."""

from __future__ import annotations

import json
import re
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
    assert path == [
        "RegisterJobDefinition",
        "Compile",
        "Verify",
        "PromoteFiles",
        "Publish",
        "Register",
        "Announce",
        "Compiled",
    ]
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


@pytest.mark.parametrize(
    ("state", "module", "function"),
    [
        ("StartClusterJob", "cluster_job", "start"),
        ("Verify", "verify", "handler"),
        ("PromoteFiles", "promote", "promote_file"),
        ("Publish", "promote", "publish"),
        ("Validate", "validate", "handler"),
    ],
)
def test_each_lambda_step_gets_what_its_handler_reads(
    definition: dict[str, Any], state: str, module: str, function: str
) -> None:
    """The state machine's payloads and the handlers' event keys agree (a renamed key fails here)."""
    import importlib
    import inspect
    import sys

    from tests.runtime_assets.compile.conftest import COMPILE, load

    # In Lambda the library's cache_key.py and spec_rules.py sit beside the handlers.
    for name in ("cache_key", "spec_rules"):
        sys.modules.setdefault(name, importlib.import_module(f"neuron_platform.compile.{name}"))
    source = inspect.getsource(getattr(load(COMPILE / "lambdas" / f"{module}.py", f"step_{module}"), function))
    read = set(re.findall(r'event\["(\w+)"\]', source))
    parameters = states(definition)[state]
    given = parameters.get("ItemSelector") or parameters["Parameters"]
    assert read <= {k.removesuffix(".$") for k in given}, read


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
    tasks = {name: state for name, state in states(definition).items() if state["Type"] in ("Task", "Map")}
    assert set(tasks) >= {
        "Validate",
        "LookUpCache",
        "Claim",
        "RegisterJobDefinition",
        "Compile",
        "Verify",
        "PromoteFiles",
        "Publish",
        "Register",
        "Announce",
    }
    for name, state in tasks.items():
        assert state.get("Catch"), name


def test_failures_are_recorded_then_notified(definition: dict[str, Any]) -> None:
    s = states(definition)
    before_claim = {"Validate", "LookUpCache"}
    after_claim = {"RegisterJobDefinition", "Compile", "Verify", "PromoteFiles", "Publish", "Register", "Announce"}
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
        "OUTPUT_URL": "$.validated.outputUrl",  # the run's staging prefix
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
    # No Hugging Face token is injected into the container (the job reads the secret itself).
    assert "Secrets" not in container
    assert "ExecutionRoleArn" not in container


def test_validate_sees_the_execution_and_the_stacks_repository(
    definition: dict[str, Any], inference_app: SynthesizedApp
) -> None:
    validate = states(definition)["Validate"]["Parameters"]
    assert validate == {"input.$": "$", "executionName.$": "$$.Execution.Name"}
    functions = resources(inference_app.template(inference_app.platform.compile), "AWS::Lambda::Function")  # type: ignore[arg-type]
    (function,) = [props(f) for f in functions.values() if props(f)["Handler"] == "validate.handler"]
    env = function["Environment"]["Variables"]
    assert env["STAGING_PREFIX"] == "staging/"
    assert "ArtifactsRepository" in json.dumps(env["IMAGE_REPOSITORY"])


def test_promotion_hashes_each_file_then_publishes_the_manifest(definition: dict[str, Any]) -> None:
    s = states(definition)
    promote = s["PromoteFiles"]
    assert promote["Type"] == "Map"
    assert promote["ItemsPath"] == "$.verified.files"
    assert promote["MaxConcurrency"] == 8
    assert promote["ItemSelector"] == {
        "action": "file",
        "bucket.$": "$.validated.bucket",
        "stagingPrefix.$": "$.validated.stagingPrefix",
        "artifactsPrefix.$": "$.validated.artifactsPrefix",
        "file.$": "$$.Map.Item.Value",
    }
    assert promote["ResultPath"] == "$.promoted"
    (inner,) = promote["ItemProcessor"]["States"].values()
    assert inner["TimeoutSeconds"] == 900
    publish = s["Publish"]["Parameters"]
    assert publish["action"] == "publish"
    assert publish["manifestVersionId.$"] == "$.verified.manifestVersionId"
    assert publish["files.$"] == "$.promoted"
    assert s["Verify"]["Parameters"]["stagingPrefix.$"] == "$.validated.stagingPrefix"


def test_register_records_files_and_ready(definition: dict[str, Any]) -> None:
    register = states(definition)["Register"]["Parameters"]
    assert register["ExpressionAttributeValues"][":ready"] == {"S": STATUS_READY}
    assert register["ExpressionAttributeValues"][":files"] == {"S.$": "States.JsonToString($.promoted)"}
    announce = states(definition)["Announce"]["Parameters"]["Entries"][0]
    assert announce["Source"] == "neuron-platform.compile"
    assert announce["DetailType"] == "Neuron artifacts registered"


def test_lambda_steps_have_short_timeouts(definition: dict[str, Any]) -> None:
    for name in ("Validate", "Verify"):
        assert states(definition)[name]["TimeoutSeconds"] == 120
    # Hashing streams a whole file: each promotion gets Lambda's 15 minutes.
    assert states(definition)["Publish"]["TimeoutSeconds"] == 900


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
    """The statements of the one policy whose logical id starts with ``prefix``, in the compile
    stack or the serving stack (which holds the on-pool compile)."""
    stacks = [s for s in (app.platform.compile, app.platform.serving) if s is not None]
    policies = {k: p for stack in stacks for k, p in resources(app.template(stack), "AWS::IAM::Policy").items()}
    (policy,) = [p for k, p in policies.items() if k.startswith(prefix)]
    return props(policy)["PolicyDocument"]["Statement"]  # type: ignore[no-any-return]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def _objects_resource(statement: dict[str, Any]) -> str:
    return json.dumps(statement["Resource"])


def test_job_role_writes_its_staging_prefix_and_the_cache_never_artifacts(inference_app: SynthesizedApp) -> None:
    """Issue 15: the job role could write all of artifacts/*."""
    statements = _statements(inference_app, "PipelineJobRoleDefaultPolicy")
    writes = [s for s in statements if "s3:PutObject" in _actions(s)]
    rendered = json.dumps([s["Resource"] for s in writes])
    assert "/staging/*" in rendered
    assert "/neuron-cache/*" in rendered
    assert "artifacts" not in json.dumps(statements)
    staging = next(s for s in writes if "/staging/*" in _objects_resource(s))
    assert sorted(_actions(staging)) == ["s3:AbortMultipartUpload", "s3:PutObject"]  # write, never read back
    listing = next(s for s in statements if _actions(s) == ["s3:ListBucket"])
    assert listing["Condition"]["StringLike"] == {"s3:prefix": ["neuron-cache/*"]}
    for statement in statements:
        assert all("*" not in action for action in _actions(statement)), statement


def test_every_grant_on_a_bucket_checks_its_owner_and_kms_goes_through_s3(inference_app: SynthesizedApp) -> None:
    for prefix in ("PipelineJobRole", "PipelineVerifyFunctionRole", "PipelinePromoteFunctionRole", "OnClusterPodRole"):
        for statement in _statements(inference_app, prefix + "DefaultPolicy"):
            actions = _actions(statement)
            if any(a.startswith("s3:") for a in actions):
                assert statement["Condition"]["StringEquals"]["s3:ResourceAccount"] == {"Ref": "AWS::AccountId"}
            if any(a.startswith("kms:") for a in actions):
                assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}}
            for pattern in re.findall(r"/([\w-]+)\*", json.dumps(statement.get("Resource"))):
                raise AssertionError(f"prefix {pattern}* without a trailing slash in {prefix}")


def test_only_the_promote_step_may_write_artifacts(inference_app: SynthesizedApp) -> None:
    policies = resources(inference_app.template(inference_app.platform.compile), "AWS::S3::BucketPolicy")  # type: ignore[arg-type]
    statements = [st for p in policies.values() for st in props(p)["PolicyDocument"]["Statement"]]
    (deny,) = [st for st in statements if st.get("Sid") == "OnlyThePromoteStepWritesArtifacts"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == {"AWS": "*"}
    assert sorted(deny["Action"]) == ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObject"]
    assert deny["Resource"]["Fn::Join"][1][-1] == "/artifacts/*"
    promote_role = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]["Fn::GetAtt"][0]
    assert promote_role.startswith("PipelinePromoteFunctionRole")
    # And no other role of the stack is even granted a write there.
    for key, policy in resources(inference_app.template(inference_app.platform.compile), "AWS::IAM::Policy").items():  # type: ignore[arg-type]
        for statement in props(policy)["PolicyDocument"]["Statement"]:
            writes = {"s3:PutObject", "s3:DeleteObject"} & set(_actions(statement))
            if writes and "/artifacts/" in _objects_resource(statement):
                assert key.startswith("PipelinePromoteFunctionRole"), key


def test_verify_function_reads_staging_only(inference_app: SynthesizedApp) -> None:
    statements = _statements(inference_app, "PipelineVerifyFunctionRoleDefaultPolicy")
    actions = sorted(a for s in statements for a in _actions(s))
    assert "s3:PutObject" not in actions
    assert "s3:GetObject" in actions
    assert "/staging/*" in json.dumps(statements)
    assert "/artifacts/" not in json.dumps(statements)
    assert all("*" not in a for a in actions)


def test_the_promote_function_copies_versions_from_staging_to_artifacts(inference_app: SynthesizedApp) -> None:
    statements = _statements(inference_app, "PipelinePromoteFunctionRoleDefaultPolicy")
    staged = next(s for s in statements if "/staging/*" in _objects_resource(s))
    assert sorted(_actions(staged)) == ["s3:DeleteObjectVersion", "s3:GetObject", "s3:GetObjectVersion"]
    promoted = next(s for s in statements if "/artifacts/*" in _objects_resource(s))
    assert sorted(_actions(promoted)) == ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    functions = resources(inference_app.template(inference_app.platform.compile), "AWS::Lambda::Function")  # type: ignore[arg-type]
    (function,) = [props(f) for f in functions.values() if props(f)["Handler"] == "promote.handler"]
    assert function["Timeout"] == 900
    assert function["Environment"]["Variables"] == {"ARTIFACTS_PREFIX": "artifacts/", "STAGING_PREFIX": "staging/"}


def test_state_machine_passes_only_the_job_role_to_ecs_tasks(inference_app: SynthesizedApp) -> None:
    statements = _statements(inference_app, "PipelineStateMachineRoleDefaultPolicy")
    pass_role = next(s for s in statements if _actions(s) == ["iam:PassRole"])
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert "JobRole" in json.dumps(pass_role["Resource"])
    assert "ExecutionRole" not in json.dumps(pass_role["Resource"])
    register = next(s for s in statements if _actions(s) == ["batch:RegisterJobDefinition"])
    assert "job-definition/inf-small-neuron-compile" in json.dumps(register["Resource"])


def test_the_state_machine_can_publish_to_its_encrypted_topic(inference_app: SynthesizedApp) -> None:
    """Issue 15: the topic used the logs key, which the state machine role could not use."""
    template = inference_app.template(inference_app.platform.compile)  # type: ignore[arg-type]
    _, topic = only(inference_app, "AWS::SNS::Topic")
    key_id = props(topic)["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert key_id.startswith("PipelineFailuresKey")
    key = resources(template, "AWS::KMS::Key")[key_id]
    assert props(key)["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"  # retain_data_on_destroy, like the stack's other keys
    via_sns = {"StringEquals": {"kms:ViaService": "sns.us-west-2.amazonaws.com"}}
    # The key policy lets the state machine's role use it through SNS ...
    (grant,) = [s for s in props(key)["KeyPolicy"]["Statement"] if s.get("Sid") == "CompileStateMachinePublishes"]
    assert grant["Principal"]["AWS"]["Fn::GetAtt"][0].startswith("PipelineStateMachineRole")
    assert sorted(grant["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert grant["Condition"] == via_sns
    # ... and the role's policy grants the same on this key, next to sns:Publish on the topic.
    statements = _statements(inference_app, "PipelineStateMachineRoleDefaultPolicy")
    kms = next(s for s in statements if "kms:GenerateDataKey" in _actions(s))
    assert kms["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert sorted(_actions(kms)) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert kms["Condition"] == via_sns
    publish = next(s for s in statements if _actions(s) == ["sns:Publish"])
    assert publish["Resource"] == {"Ref": only(inference_app, "AWS::SNS::Topic")[0]}


def test_service_roles_trust_only_this_account(inference_app: SynthesizedApp) -> None:
    roles = resources(inference_app.template(inference_app.platform.compile), "AWS::IAM::Role")  # type: ignore[arg-type]

    def trust(prefix: str) -> dict[str, Any]:
        (role,) = [r for k, r in roles.items() if k.startswith(prefix)]
        (statement,) = props(role)["AssumeRolePolicyDocument"]["Statement"]
        return statement  # type: ignore[no-any-return]

    account = {"Ref": "AWS::AccountId"}
    states_trust = trust("PipelineStateMachineRole")
    assert states_trust["Principal"] == {"Service": "states.amazonaws.com"}
    assert states_trust["Condition"]["StringEquals"] == {"aws:SourceAccount": account}
    assert states_trust["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1][-1] == ":stateMachine:*"
    job = trust("PipelineJobRole")
    assert job["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert job["Condition"]["StringEquals"] == {"aws:SourceAccount": account}
    assert job["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1] == ["arn:aws:ecs:us-west-2:", account, ":*"]


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
    steps = [
        f
        for f in functions.values()
        if props(f)["Handler"] in ("validate.handler", "verify.handler", "promote.handler")
    ]
    keys = {props(f)["Code"]["S3Key"] for f in steps}
    (key,) = keys  # both steps share one asset
    asset = inference_app.outdir / f"asset.{key.removesuffix('.zip')}"
    assert sorted(p.name for p in asset.iterdir()) == [
        "cache_key.py",
        "cluster_job.py",
        "promote.py",
        "spec_rules.py",
        "validate.py",
        "verify.py",
    ]
    from neuron_platform.compile import cache_key, spec_rules

    assert (asset / "cache_key.py").read_text() == Path(cache_key.__file__).read_text()
    assert (asset / "spec_rules.py").read_text() == Path(spec_rules.__file__).read_text()


# --- compiles on the cluster (vLLM endpoints): the pipeline here, the cluster side in the serving stack ---


def serving_json(app: SynthesizedApp) -> dict[str, Any]:
    assert app.platform.serving is not None
    return app.template_json(app.platform.serving)


def serving_only(app: SynthesizedApp, type_name: str) -> dict[str, Any]:
    assert app.platform.serving is not None
    (item,) = resources(app.template(app.platform.serving), type_name).values()
    return item


def test_the_pipeline_calls_the_cluster_step_by_its_fixed_name(
    inference_app: SynthesizedApp, definition: dict[str, Any]
) -> None:
    """By name, not by reference: the compile stack does not wait for the cluster."""
    functions = resources(inference_app.template(inference_app.platform.serving), "AWS::Lambda::Function")  # type: ignore[arg-type]
    (function,) = [props(f) for f in functions.values() if props(f)["Handler"] == "cluster_job.handler"]
    assert function["FunctionName"] == "inf-small-compile-on-cluster"
    for name in ("StartClusterJob", "ClusterJobStatus"):
        target = json.dumps(states(definition)[name]["Resource"])
        assert ":function:inf-small-compile-on-cluster" in target, target
    assert "OnCluster" not in json.dumps(compile_json(inference_app)["Resources"])


def test_only_the_cluster_step_carries_the_job_templates(inference_app: SynthesizedApp) -> None:
    functions = {
        k: f
        for stack in (inference_app.platform.compile, inference_app.platform.serving)
        for k, f in resources(inference_app.template(stack), "AWS::Lambda::Function").items()  # type: ignore[arg-type]
    }
    by_handler = {props(f)["Handler"]: props(f)["Code"]["S3Key"].removesuffix(".zip") for f in functions.values()}
    cluster_asset = inference_app.outdir / f"asset.{by_handler['cluster_job.handler']}"
    steps_asset = inference_app.outdir / f"asset.{by_handler['validate.handler']}"
    templates = json.loads((cluster_asset / "job_templates.json").read_text())
    assert sorted(templates) == ["llama3-8b"]  # the EKS endpoint; the SageMaker one compiles on Batch
    assert not (steps_asset / "job_templates.json").exists()
    # The Job runs the endpoint's pinned compile image and nothing else (None: it cannot start).
    endpoint = inference_app.config.endpoint("llama3-8b")
    assert endpoint is not None
    assert templates["llama3-8b"]["image"] == inference_app.config.plan_endpoint(endpoint).compile_image
    job = templates["llama3-8b"]["job"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["aws.amazon.com/neuron"] == "4"  # one replica's devices
    assert job["spec"]["template"]["spec"]["nodeSelector"]["neuron-platform/pool"] == "inf2-large"


def test_the_cluster_step_runs_in_the_vpc_with_the_cluster_security_group(inference_app: SynthesizedApp) -> None:
    functions = resources(inference_app.template(inference_app.platform.serving), "AWS::Lambda::Function")  # type: ignore[arg-type]
    (function,) = [props(f) for f in functions.values() if props(f)["Handler"] == "cluster_job.handler"]
    assert len(function["VpcConfig"]["SubnetIds"]) == 2
    (group,) = function["VpcConfig"]["SecurityGroupIds"]
    assert "ClusterSecurityGroupId" in json.dumps(group)
    env = function["Environment"]["Variables"]
    assert env["NAMESPACE"] == "neuron-compile"
    assert {"CLUSTER_NAME", "CLUSTER_ENDPOINT", "CLUSTER_CA", "IMAGE_REPOSITORY", "CACHE_URL"} <= set(env)


def test_the_cluster_step_may_only_edit_the_compile_namespace(inference_app: SynthesizedApp) -> None:
    entry = serving_only(inference_app, "AWS::EKS::AccessEntry")
    (policy,) = props(entry)["AccessPolicies"]
    assert policy["AccessScope"] == {"Type": "namespace", "Namespaces": ["neuron-compile"]}
    assert policy["PolicyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"


def test_the_compile_namespace_is_hardened(inference_app: SynthesizedApp) -> None:
    from tests.helpers import manifests

    objects = [
        o
        for o in manifests(serving_json(inference_app))
        if "neuron-compile" in (o["metadata"].get("namespace"), o["metadata"]["name"])
    ]
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert kinds == [
        ("Namespace", "neuron-compile"),
        ("NetworkPolicy", "allow-compile-egress"),
        ("NetworkPolicy", "allow-dns"),
        ("NetworkPolicy", "default-deny"),
        ("ServiceAccount", "neuron-compile"),
    ]
    (namespace,) = [o for o in objects if o["kind"] == "Namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_compile_pods_get_their_own_pod_identity(inference_app: SynthesizedApp) -> None:
    associations = resources(inference_app.template(inference_app.platform.serving), "AWS::EKS::PodIdentityAssociation")  # type: ignore[arg-type]
    (association,) = [a for a in associations.values() if props(a)["Namespace"] == "neuron-compile"]
    assert props(association)["ServiceAccount"] == "neuron-compile"
    assert "OnClusterPodRole" in json.dumps(props(association)["RoleArn"])


def test_configs_without_vllm_endpoints_have_no_cluster_step(synthesized: dict[str, SynthesizedApp]) -> None:
    for app in synthesized.values():
        if app.platform.compile is None or app.name == "inference-small":
            continue
        assert app.platform.compile.cluster_compile_target is None
        assert app.platform.serving is None or app.platform.serving.cluster_compile is None
