"""The compile CLI: moto for CloudFormation and DynamoDB, a botocore stub for Step Functions."""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber
from moto import mock_aws

from neuron_platform.__main__ import main
from neuron_platform.compile import client
from neuron_platform.compile.spec import parse_spec

REVISION = "8afb486c1db24fe5011ec46dfbe5b5dccdb575c2"
SPEC: dict[str, Any] = {
    "model": {"hf_id": "meta-llama/Meta-Llama-3-8B-Instruct", "revision": REVISION},
    "target": "inf2",
    "batch_size": 4,
    "sequence_length": 4096,
    "tensor_parallel_size": 8,
    "sdk_version": "2.26.1",
    # The compile stack's repository, by digest (the fixture pushes images to moto's ECR).
    "image": "123456789012.dkr.ecr.us-west-2.amazonaws.com/inf-small-neuron@sha256:" + "1" * 64,
}
REPOSITORY = "123456789012.dkr.ecr.us-west-2.amazonaws.com/inf-small-neuron"
# Compile images carry their serving image's tag: the SageMaker optimum-neuron one, and vLLM 0.13.0 on SDK 2.28.0.
OPTIMUM_TAG = "0.11.0-optimum0.4.5-neuronx-py310-sdk2.26.1-ubuntu22.04"
VLLM_TAG = "0.13.0-neuronx-py312-sdk2.28.0-ubuntu24.04"
# What the Neuron data says SDK 2.26.1 ships (n2-manifest.json).
SDK_2_26_1 = {"engine": "optimum-neuron", "neuronxCc": "2.21.33363.0", "runtime": "2.28.23.0"}
CONFIG: dict[str, Any] = {
    "project": {"name": "inf-small", "region": "us-west-2"},
    "network": {"zones": ["us-west-2a", "us-west-2b"]},
    "compile": {"enabled": True, "instance_types": ["r7i.4xlarge", "r7i.8xlarge", "r7i.16xlarge"]},
}
MACHINE_ARN = "arn:aws:states:us-west-2:123456789012:stateMachine:compile"
EXECUTION_ARN = "arn:aws:states:us-west-2:123456789012:execution:compile:run-1"
KEY = "meta-llama-3-8b-instruct-inf2-tp8-b4-s4096-0123456789abcdef0123456789abcdef"


# --- sizing and outcomes (pure) ---------------------------------------------------------------


def test_jobs_are_sized_from_the_estimate_on_the_cheapest_machine() -> None:
    spec = parse_spec(SPEC)
    assert client.size_job(spec, ["r7i.4xlarge", "r7i.16xlarge"], 460) == {"memory_gib": 61, "vcpus": 16}
    seventy_b = parse_spec(
        SPEC
        | {
            "model": {"hf_id": "meta-llama/Meta-Llama-3-70B-Instruct", "revision": REVISION},
            "target": "trn1",
            "tensor_parallel_size": 32,
        }
    )
    assert client.size_job(seventy_b, ["r7i.4xlarge", "r7i.16xlarge"], 460) == {"memory_gib": 411, "vcpus": 64}
    with pytest.raises(
        client.CompileCliError, match="needs about 411 GiB; the pipeline's machines give a job at most 345"
    ):
        client.size_job(seventy_b, ["r7i.4xlarge", "r7i.12xlarge"], 345)


def test_unknown_architectures_get_the_default_size() -> None:
    spec = parse_spec(SPEC | {"model": {"s3_uri": "s3://my-models/custom/"}})
    assert client.size_job(spec, ["r7i.4xlarge"], 115) == {"memory_gib": 64, "vcpus": 16}


@pytest.mark.parametrize(
    ("execution", "code", "lines"),
    [
        (
            {
                "status": "SUCCEEDED",
                "output": json.dumps({"cacheHit": True, "cacheKey": KEY, "artifactsUrl": "s3://b/artifacts/k/"}),
            },
            0,
            [f"cache hit: {KEY}", "artifacts: s3://b/artifacts/k/"],
        ),
        (
            {
                "status": "SUCCEEDED",
                "output": json.dumps(
                    {"cacheHit": False, "cacheKey": KEY, "artifactsUrl": "s3://b/a/", "files": [{}, {}]}
                ),
            },
            0,
            [f"compiled: {KEY}", "artifacts: s3://b/a/", "files: 2"],
        ),
        (
            {"status": "FAILED", "error": "States.TaskFailed", "cause": "optimum-cli exited 70"},
            1,
            ["FAILED: States.TaskFailed: optimum-cli exited 70"],
        ),
    ],
)
def test_outcomes(execution: dict[str, Any], code: int, lines: list[str]) -> None:
    assert client.describe_outcome(execution) == (code, lines)


def test_follow_prints_each_step_once() -> None:
    sfn = boto3.client("stepfunctions", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")
    start = datetime.datetime(2026, 11, 28, tzinfo=datetime.UTC)
    with Stubber(sfn) as stub:
        for status, step in (
            ("RUNNING", "Validate"),
            ("RUNNING", "Compile"),
            ("RUNNING", "Compile"),
            ("SUCCEEDED", "Compiled"),
        ):
            stub.add_response(
                "describe_execution",
                {"executionArn": EXECUTION_ARN, "stateMachineArn": MACHINE_ARN, "status": status, "startDate": start},
                {"executionArn": EXECUTION_ARN},
            )
            stub.add_response(
                "get_execution_history",
                {
                    "events": [
                        {
                            "timestamp": start,
                            "type": "TaskStateEntered",
                            "id": 2,
                            "stateEnteredEventDetails": {"name": step},
                        }
                    ]
                },
                {"executionArn": EXECUTION_ARN, "reverseOrder": True, "maxResults": 25},
            )
        said: list[str] = []
        slept: list[float] = []
        final = client.follow(sfn, EXECUTION_ARN, poll_seconds=5, sleep=slept.append, say=said.append)
    assert final["status"] == "SUCCEEDED"
    assert said == ["  Validate", "  Compile", "  Compiled"]
    assert slept == [5, 5, 5]


# --- the CLI against moto ------------------------------------------------------------------------


class FakeCloudFormation:
    """describe_stacks for the deployed compile stack (moto's CloudFormation needs extra packages)."""

    def __init__(self, stacks: dict[str, dict[str, str]], region: str = "us-west-2") -> None:
        self.stacks = stacks
        self.meta = SimpleNamespace(region_name=region)

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        if StackName not in self.stacks:
            error = {"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}}
            raise ClientError(error, "DescribeStacks")
        outputs = [{"OutputKey": k, "OutputValue": v} for k, v in self.stacks[StackName].items()]
        return {"Stacks": [{"StackName": StackName, "Outputs": outputs}]}


OUTPUTS = {"StateMachineArn": MACHINE_ARN, "RegistryTableName": "registry", "MaxCompileMemoryGiB": "460"}


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    real_client = boto3.session.Session.client
    sfn_setup: list[Any] = []
    stubs: list[Stubber] = []

    def clients(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "cloudformation":
            return FakeCloudFormation({"inf-small-compile": OUTPUTS})
        made = real_client(self, name, *args, **kwargs)
        if name == "stepfunctions":
            stub = Stubber(made)
            for setup in sfn_setup:
                setup(stub)
            stub.activate()
            stubs.append(stub)
        return made

    monkeypatch.setattr(boto3.session.Session, "client", clients)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-west-2")
        dynamodb.create_table(
            TableName="registry",
            KeySchema=[{"AttributeName": "cache_key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "cache_key", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        images = _push_images(boto3.client("ecr", region_name="us-west-2"))
        _create_cluster_compile_function()
        spec.write_text(yaml.safe_dump(SPEC | {"image": images[OPTIMUM_TAG]}))
        yield {
            "config": str(config),
            "spec": str(spec),
            "dynamodb": dynamodb,
            "sfn_setup": sfn_setup,
            "stubs": stubs,
            "images": images,
        }


def _create_cluster_compile_function() -> None:
    """The serving stack's on-pool compile function, as deployed (moto's Lambda)."""
    import io
    import zipfile

    role = boto3.client("iam", region_name="us-west-2").create_role(
        RoleName="compile-on-cluster", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("cluster_job.py", "def handler(event, context):\n    return event\n")
    boto3.client("lambda", region_name="us-west-2").create_function(
        FunctionName=client.cluster_compile_function_name("inf-small"),
        Runtime="python3.12",
        Role=role,
        Handler="cluster_job.handler",
        Code={"ZipFile": code.getvalue()},
    )


def _push_images(ecr: Any) -> dict[str, str]:
    """The compile stack's repository in moto's ECR, with one compile image per serving tag."""
    ecr.create_repository(repositoryName="inf-small-neuron")
    images = {}
    for number, tag in enumerate((OPTIMUM_TAG, VLLM_TAG)):
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1,
                "digest": "sha256:" + "0" * 64,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 1,
                    "digest": "sha256:" + str(number + 1) * 64,
                }
            ],
        }
        image = ecr.put_image(repositoryName="inf-small-neuron", imageManifest=json.dumps(manifest), imageTag=tag)
        images[tag] = f"{REPOSITORY}@{image['image']['imageId']['imageDigest']}"
    return images


def test_find_pipeline_reads_the_stack_outputs() -> None:
    pipeline = client.find_pipeline(FakeCloudFormation({"s": OUTPUTS}), "s")
    assert pipeline == client.Pipeline(MACHINE_ARN, "registry", 460)
    with pytest.raises(client.CompileCliError, match="has no output StateMachineArn"):
        client.find_pipeline(FakeCloudFormation({"s": {"RegistryTableName": "r", "MaxCompileMemoryGiB": "1"}}), "s")


def _register(dynamodb: Any, key: str, status: str, started: str) -> None:
    dynamodb.put_item(
        TableName="registry",
        Item={
            "cache_key": {"S": key},
            "status": {"S": status},
            "model_name": {"S": "meta-llama/Meta-Llama-3-8B-Instruct"},
            "sdk_version": {"S": "2.26.1"},
            "started_at": {"S": started},
            "finished_at": {"S": started.replace("T10", "T11")},
            "spec_json": {"S": json.dumps(SPEC)},
            "files_json": {"S": json.dumps([{"path": "model.pt", "sha256": "ab" * 32, "size": 3}])},
            "total_bytes": {"N": "3"},
        },
    )


def test_list_shows_the_registry_newest_first(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    _register(aws["dynamodb"], "older-key", "READY", "2026-11-01T10:00:00Z")
    _register(aws["dynamodb"], "newer-key", "FAILED", "2026-11-20T10:00:00Z")
    assert main(["compile", "list", "--config", aws["config"]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["CACHE", "KEY", "STATUS", "MODEL", "SDK", "FINISHED"]
    assert [line.split()[0] for line in lines[1:]] == ["newer-key", "older-key"]
    assert lines[2].split()[1] == "READY"


def test_show_prints_spec_and_file_hashes(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    _register(aws["dynamodb"], KEY, "READY", "2026-11-01T10:00:00Z")
    assert main(["compile", "show", KEY, "--config", aws["config"]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "READY"
    assert shown["spec"] == SPEC
    assert shown["files"] == [{"path": "model.pt", "sha256": "ab" * 32, "size": 3}]
    assert shown["total_bytes"] == 3


def test_show_unknown_key_is_one_line(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", "show", "nope", "--config", aws["config"]]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "compile show: no registry entry 'nope'; 'compile list' shows the registered keys"
    )


def test_submit_starts_a_sized_run_and_reports_a_cache_hit(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    when = datetime.datetime(2026, 11, 28, tzinfo=datetime.UTC)
    sent: dict[str, Any] = {}

    def setup(stub: Stubber) -> None:
        stub.add_response(
            "start_execution",
            {"executionArn": EXECUTION_ARN, "startDate": when},
            {"stateMachineArn": MACHINE_ARN, "name": ANY, "input": ANY},
        )
        stub.add_response(
            "describe_execution",
            {
                "executionArn": EXECUTION_ARN,
                "stateMachineArn": MACHINE_ARN,
                "status": "SUCCEEDED",
                "startDate": when,
                "output": json.dumps({"cacheHit": True, "cacheKey": KEY, "artifactsUrl": f"s3://b/artifacts/{KEY}/"}),
            },
            {"executionArn": EXECUTION_ARN},
        )
        stub.add_response(
            "get_execution_history",
            {
                "events": [
                    {
                        "timestamp": when,
                        "type": "PassStateEntered",
                        "id": 5,
                        "stateEnteredEventDetails": {"name": "CacheHit"},
                    }
                ]
            },
            {"executionArn": EXECUTION_ARN, "reverseOrder": True, "maxResults": 25},
        )

        def capture(**kwargs: Any) -> None:
            sent.update(kwargs.get("params", {}))

        stub.client.meta.events.register("provide-client-params.stepfunctions.StartExecution", capture)

    aws["sfn_setup"].append(setup)
    assert main(["compile", "submit", aws["spec"], "--config", aws["config"], "--poll-seconds", "0"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"started {EXECUTION_ARN}",
        "  sized: 61 GiB, 16 vCPUs",
        "  CacheHit",
        f"cache hit: {KEY}",
        f"artifacts: s3://b/artifacts/{KEY}/",
    ]
    (stub,) = aws["stubs"]
    stub.assert_no_pending_responses()
    payload = json.loads(sent["input"])
    assert payload["resources"] == {"memory_gib": 61, "vcpus": 16}
    assert payload["spec"]["model"] == SPEC["model"]
    assert payload["spec"]["compiler_flags"] == []
    assert payload["neuron"] == SDK_2_26_1
    assert "endpoint" not in payload  # optimum-neuron exports on Batch
    assert sent["name"].startswith("compile-")


def test_submit_refuses_a_vllm_spec_without_its_endpoint(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vllm = tmp_path / "vllm.yaml"
    image = aws["images"][VLLM_TAG]
    vllm.write_text(yaml.safe_dump(SPEC | {"sdk_version": "2.28.0", "image": image}))
    assert main(["compile", "submit", str(vllm), "--config", aws["config"]]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"compile: {vllm}: image: got '{image}'; vllm-nxdi artifacts compile on an endpoint's")


def test_submit_refuses_an_image_tag_of_another_sdk(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(SPEC | {"sdk_version": "2.28.0", "image": aws["images"][OPTIMUM_TAG]}))
    assert main(["compile", "submit", str(other), "--config", aws["config"]]) == 2
    assert capsys.readouterr().err.strip() == (
        f"compile: {other}: sdk_version: got '2.28.0'; image tag "
        "0.11.0-optimum0.4.5-neuronx-py310-sdk2.26.1-ubuntu22.04 is Neuron SDK 2.26.1; allowed: 2.26.1"
    )


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (
            f"{REPOSITORY}@sha256:{'9' * 64}",
            f"compile submit: image: {REPOSITORY}@sha256:{'9' * 64} is not in {REPOSITORY}: build and push it with "
            "make compile-image, then use the reference it prints",
        ),
        (
            f"210987654321.dkr.ecr.us-west-2.amazonaws.com/inf-small-neuron@sha256:{'9' * 64}",
            "compile submit: image: got '210987654321.dkr.ecr.us-west-2.amazonaws.com/inf-small-neuron@sha256:"
            f"{'9' * 64}'; these credentials are account 123456789012's, whose pipeline compiles only images of its "
            "own repository",
        ),
        (
            f"123456789012.dkr.ecr.us-west-2.amazonaws.com/other-neuron@sha256:{'9' * 64}",
            "compile submit: image: got '123456789012.dkr.ecr.us-west-2.amazonaws.com/other-neuron@sha256:"
            f"{'9' * 64}'; allowed: an image of repository inf-small-neuron (the compile stack's)",
        ),
    ],
)
def test_submit_refuses_an_image_the_pipeline_would_not_run(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], image: str, message: str
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(SPEC | {"image": image}))
    assert main(["compile", "submit", str(other), "--config", aws["config"]]) == 2
    assert capsys.readouterr().err.strip() == message


def test_status_of_a_running_compile(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    when = datetime.datetime(2026, 11, 28, 10, tzinfo=datetime.UTC)

    def setup(stub: Stubber) -> None:
        stub.add_response(
            "describe_execution",
            {"executionArn": EXECUTION_ARN, "stateMachineArn": MACHINE_ARN, "status": "RUNNING", "startDate": when},
            {"executionArn": EXECUTION_ARN},
        )
        stub.add_response(
            "get_execution_history",
            {
                "events": [
                    {
                        "timestamp": when,
                        "type": "TaskStateEntered",
                        "id": 9,
                        "stateEnteredEventDetails": {"name": "Compile"},
                    }
                ]
            },
            {"executionArn": EXECUTION_ARN, "reverseOrder": True, "maxResults": 25},
        )

    aws["sfn_setup"].append(setup)
    assert main(["compile", "status", EXECUTION_ARN, "--config", aws["config"]]) == 0
    assert capsys.readouterr().out.strip() == f"RUNNING: Compile (since {when})"


def test_submit_rejects_a_bad_spec_before_touching_aws(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(SPEC | {"tensor_parallel_size": 16}))
    assert main(["compile", "submit", str(bad), "--config", aws["config"]]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"config error: {bad}: tensor_parallel_size: got 16; allowed on inf2: 1, 2, 4, 8, 24"
    )


def test_missing_stack_is_one_line(aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(CONFIG | {"project": {"name": "elsewhere", "region": "us-west-2"}}))
    assert main(["compile", "list", "--config", str(other)]) == 3
    assert capsys.readouterr().err.strip() == (
        "compile list: stack elsewhere-compile does not exist in us-west-2: deploy it, or pass the --config you "
        "deployed"
    )


def test_disabled_pipeline_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG | {"compile": {"enabled": False}}))
    assert main(["compile", "list", "--config", str(config)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"compile list: --config: {config} has compile.enabled false; enable it and deploy the compile stack"
    )


def test_the_submitted_spec_gets_the_key_the_library_computes() -> None:
    """The pipeline keys what the CLI sends; serving derives the same key at synth."""
    from neuron_platform.compile.cache_key import cache_key

    class Recorder:
        def __init__(self) -> None:
            self.sent: dict[str, Any] = {}

        def start_execution(self, **kwargs: Any) -> dict[str, str]:
            self.sent.update(kwargs)
            return {"executionArn": EXECUTION_ARN}

    spec = parse_spec(
        SPEC
        | {
            "architecture": {
                "parameters_billion": 8.03,
                "layers": 32,
                "attention_heads": 32,
                "kv_heads": 8,
                "head_dim": 128,
            }
        }
    )
    recorder = Recorder()
    client.start(
        recorder,
        client.Pipeline(MACHINE_ARN, "registry", 460),
        spec,
        {"memory_gib": 61, "vcpus": 16},
        now=0,
        neuron=SDK_2_26_1,
    )
    assert cache_key(json.loads(recorder.sent["input"])["spec"]) == spec.cache_key()


def _pin(monkeypatch: pytest.MonkeyPatch, images: dict[str, str]) -> None:
    """Pin the example endpoints' compile images (configuration wiring of issue 15 pending)."""
    from neuron_platform.config import PlatformConfig

    real = PlatformConfig.plan_endpoint

    def pinned(self: PlatformConfig, spec: Any) -> Any:
        served = real(self, spec)
        return dataclasses.replace(served, compile_image=images[served.compile_image_tag])

    monkeypatch.setattr(PlatformConfig, "plan_endpoint", pinned)


def test_submit_an_endpoints_compile_spec(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """compile submit --endpoint compiles exactly what the endpoint's deployment will load."""
    from neuron_platform.config import load_config
    from tests.conftest import REPO

    _pin(monkeypatch, aws["images"])
    example = str(REPO / "config" / "examples" / "inference-small.yaml")
    config = load_config(example)
    spec = config.endpoint("llama3-8b")
    assert spec is not None
    expected_key = config.plan_endpoint(spec).cache_key()
    sent: dict[str, Any] = {}

    def setup(stub: Stubber) -> None:
        stub.add_response(
            "start_execution",
            {"executionArn": EXECUTION_ARN, "startDate": datetime.datetime(2026, 11, 28, tzinfo=datetime.UTC)},
            {"stateMachineArn": MACHINE_ARN, "name": ANY, "input": ANY},
        )
        stub.client.meta.events.register(
            "provide-client-params.stepfunctions.StartExecution", lambda params, **_: sent.update(params)
        )

    aws["sfn_setup"].append(setup)
    assert main(["compile", "submit", "--endpoint", "llama3-8b", "--config", example, "--no-wait"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"endpoint llama3-8b: compiling on pool inf2-large for cache key {expected_key}"
    payload = json.loads(sent["input"])
    submitted = payload["spec"]
    # The endpoint's pinned compile image (vLLM 0.13.0 on SDK 2.28.0, NxD Inference on inf2), by digest.
    assert submitted["image"] == aws["images"][VLLM_TAG]
    assert submitted["sdk_version"] == "2.28.0"
    assert payload["neuron"] == {"engine": "vllm-nxdi", "neuronxCc": "2.23.6484.0", "runtime": "2.30.51.0"}
    assert payload["endpoint"] == "llama3-8b"  # it compiles on that endpoint's pool
    from neuron_platform.compile.cache_key import cache_key

    assert cache_key(submitted) == expected_key


def test_an_on_pool_compile_needs_the_serving_stack_first(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function lives in the serving stack (so the compile stack deploys beside the
    cluster): without it, say what to deploy instead of starting a run that fails."""
    from tests.conftest import REPO

    _pin(monkeypatch, aws["images"])
    boto3.client("lambda", region_name="us-west-2").delete_function(FunctionName="inf-small-compile-on-cluster")
    example = str(REPO / "config" / "examples" / "inference-small.yaml")
    assert main(["compile", "submit", "--endpoint", "llama3-8b", "--config", example, "--no-wait"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        "compile submit: the on-pool compile function inf-small-compile-on-cluster does not exist in us-west-2: "
        "deploy the serving stack (inf-small-serving) first, then submit again"
    )


def test_an_unpinned_endpoint_says_how_to_pin_it(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import REPO

    data = yaml.safe_load((REPO / "config" / "examples" / "inference-small.yaml").read_text())
    for endpoint in data["serving"]["endpoints"]:
        endpoint.pop("compile_image", None)
    example = tmp_path / "unpinned.yaml"
    example.write_text(yaml.safe_dump(data))
    assert main(["compile", "submit", "--endpoint", "llama3-8b", "--config", str(example)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(
        "compile: llama3-8b: compile_image: endpoint llama3-8b has no pinned compile image; build it with make "
        "compile-image ENDPOINT=llama3-8b (FROM "
    )


def test_an_endpoint_pinned_to_another_serving_tag_is_refused(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SageMaker endpoint pinned to the vLLM compile image: a digest of the right repository, the wrong image."""
    from tests.conftest import REPO

    swapped = {OPTIMUM_TAG: aws["images"][VLLM_TAG], VLLM_TAG: aws["images"][OPTIMUM_TAG]}
    _pin(monkeypatch, swapped)
    example = str(REPO / "config" / "examples" / "inference-small.yaml")
    assert main(["compile", "submit", "--endpoint", "llama3-8b-sm", "--config", example]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"compile: llama3-8b-sm: compile_image: got '{aws['images'][VLLM_TAG]}', tagged {VLLM_TAG}")


def test_submit_needs_a_spec_or_an_endpoint(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", "submit", "--config", aws["config"]]) == 2
    assert "give a spec file or --endpoint NAME" in capsys.readouterr().err
