"""The pipeline's Lambda steps: spec checks, cache keys, artifact verification (moto S3)."""

from __future__ import annotations

import copy
import importlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.runtime_assets.compile.conftest import COMPILE, load

# In Lambda, cache_key.py sits beside the handlers (CompilePipeline bundles it from the library).
cache_key_module = importlib.import_module("neuron_platform.compile.cache_key")
sys.modules["cache_key"] = cache_key_module
validate = load(COMPILE / "lambdas" / "validate.py", "compile_validate")
verify = load(COMPILE / "lambdas" / "verify.py", "compile_verify")

SPEC: dict[str, Any] = {
    "model": {"hf_id": "meta-llama/Meta-Llama-3-8B-Instruct", "revision": "8afb486c1db24fe5011ec46dfbe5b5dccdb575c2"},
    "task": "text-generation",
    "target": "inf2",
    "batch_size": 4,
    "sequence_length": 4096,
    "tensor_parallel_size": 8,
    "dtype": "bfloat16",
    "compiler_flags": [],
    "sdk_version": "2.26.1",
    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/neuron-compile:inf2-sdk2.26.1",
}


# What the CLI sends beside the spec (from the Neuron data for SDK 2.26.1's optimum-neuron image).
NEURON = {"engine": "optimum-neuron", "neuronxCc": "2.21.33363.0", "runtime": "2.28.23.0"}
VLLM_NEURON = {"engine": "vllm-nxdi", "neuronxCc": "2.23.6484.0", "runtime": "2.30.51.0"}


def changed(**fields: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec.update(fields)
    return spec


# --- cache keys --------------------------------------------------------------------------


def test_key_is_stable_and_readable() -> None:
    key = cache_key_module.cache_key(SPEC)
    assert key == cache_key_module.cache_key(copy.deepcopy(SPEC))
    assert key.startswith("meta-llama-3-8b-instruct-inf2-tp8-b4-s4096-")
    assert len(key.rsplit("-", 1)[1]) == 32


def test_key_ignores_dict_order_and_the_architecture_hint() -> None:
    reordered = dict(reversed(list(SPEC.items())))
    assert cache_key_module.cache_key(reordered) == cache_key_module.cache_key(SPEC)
    with_arch = changed(architecture={"parameters_billion": 8.03, "layers": 32})
    assert cache_key_module.cache_key(with_arch) == cache_key_module.cache_key(SPEC)


@pytest.mark.parametrize(
    "change",
    [
        {"model": {"hf_id": "meta-llama/Meta-Llama-3-8B-Instruct", "revision": "0" * 40}},
        {"target": "trn1"},
        {"batch_size": 8},
        {"sequence_length": 2048},
        {"tensor_parallel_size": 24},
        {"dtype": "float16"},
        {"compiler_flags": ["--optlevel=1"]},
        {"sdk_version": "2.27.0"},
        {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/neuron-compile:inf2-sdk2.27.0"},
    ],
)
def test_every_artifact_changing_field_changes_the_key(change: dict[str, Any]) -> None:
    assert cache_key_module.cache_key(changed(**change)) != cache_key_module.cache_key(SPEC)


def test_the_registry_host_does_not_change_the_key() -> None:
    elsewhere = changed(image="210987654321.dkr.ecr.eu-west-1.amazonaws.com/neuron-compile:inf2-sdk2.26.1")
    assert cache_key_module.cache_key(elsewhere) == cache_key_module.cache_key(SPEC)
    assert cache_key_module.image_identity("registry.example.com:5000/team/repo:v1") == "team/repo:v1"
    assert cache_key_module.image_identity("team/repo:v1") == "team/repo:v1"
    assert cache_key_module.image_identity("localhost/repo:v1") == "repo:v1"


def test_flag_order_matters() -> None:
    a = cache_key_module.cache_key(changed(compiler_flags=["--optlevel=1", "--verbose=info"]))
    b = cache_key_module.cache_key(changed(compiler_flags=["--verbose=info", "--optlevel=1"]))
    assert a != b


def test_s3_models_are_labelled_by_their_last_prefix() -> None:
    spec = changed(model={"s3_uri": "s3://models/llama/my-finetune/"})
    assert cache_key_module.cache_key(spec).startswith("my-finetune-inf2-")


# --- validate -------------------------------------------------------------------------------


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACTS_BUCKET", "artifacts-bucket")
    monkeypatch.setenv("ARTIFACTS_PREFIX", "artifacts/")
    monkeypatch.setenv("MAX_MEMORY_GIB", "460")
    monkeypatch.setenv("CLUSTER_ENDPOINTS", "llama3-8b")


def test_validate_returns_key_and_locations(lambda_env: None) -> None:
    out = validate.handler({"spec": copy.deepcopy(SPEC), "neuron": NEURON}, None)
    key = cache_key_module.cache_key(SPEC)
    assert out["cacheKey"] == key
    assert out["artifactsUrl"] == f"s3://artifacts-bucket/artifacts/{key}/"
    assert out["artifactsPrefix"] == f"artifacts/{key}/"
    assert json.loads(out["specJson"]) == SPEC
    assert (out["memoryMiB"], out["vcpus"]) == (str(64 * 1024), "8")  # defaults without sizing
    assert (out["neuron"], out["placement"], out["endpoint"]) == (NEURON, "batch", "")


def test_vllm_engines_compile_on_a_configured_endpoints_pool(lambda_env: None) -> None:
    out = validate.handler({"spec": copy.deepcopy(SPEC), "neuron": VLLM_NEURON, "endpoint": "llama3-8b"}, None)
    assert (out["placement"], out["endpoint"]) == ("cluster", "llama3-8b")
    with pytest.raises(validate.InvalidSpec, match=r"endpoint: got 'other'; vllm-nxdi artifacts compile on an "):
        validate.handler({"spec": copy.deepcopy(SPEC), "neuron": VLLM_NEURON, "endpoint": "other"}, None)


@pytest.mark.parametrize(
    ("neuron", "message"),
    [
        (None, "neuron: required"),
        ({**NEURON, "engine": "tgi"}, "neuron.engine: got 'tgi'; allowed: vllm-nxdi, vllm-neuron, optimum-neuron"),
        ({**NEURON, "neuronxCc": "latest"}, "neuron.neuronxCc: got 'latest'; allowed: a version"),
    ],
)
def test_validate_rejects_a_bad_toolchain(lambda_env: None, neuron: Any, message: str) -> None:
    with pytest.raises(validate.InvalidSpec, match=message):
        validate.handler({"spec": copy.deepcopy(SPEC), "neuron": neuron}, None)


def test_validate_takes_the_cli_sizing_within_bounds(lambda_env: None) -> None:
    out = validate.handler(
        {"spec": copy.deepcopy(SPEC), "resources": {"memory_gib": 61, "vcpus": 16}, "neuron": NEURON}, None
    )
    assert (out["memoryMiB"], out["vcpus"]) == (str(61 * 1024), "16")
    with pytest.raises(
        validate.InvalidSpec, match=r"resources\.memory_gib: got 600; allowed: an integer from 1 to 460"
    ):
        validate.handler({"spec": copy.deepcopy(SPEC), "resources": {"memory_gib": 600}, "neuron": NEURON}, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target": "inf1"}, "target: got 'inf1'; allowed: inf2, trn1, trn2"),
        ({"batch_size": 0}, "batch_size: got 0; allowed: an integer from 1 to 256"),
        ({"batch_size": True}, "batch_size: got True"),
        ({"model": {"hf_id": "a/b"}}, "model.revision: required with hf_id"),
        ({"model": {"hf_id": "a/b", "revision": "1", "s3_uri": "s3://b/p"}}, "model: give exactly one"),
        ({"image": "repo/compile:latest"}, "image: pin a tag or digest, not latest"),
        ({"image": "registry:5000/repo/compile"}, "image: pin a tag or digest, not latest"),
        ({"compiler_flags": "--optlevel=1"}, "compiler_flags: expected a list of --flags"),
    ],
)
def test_validate_rejects_bad_specs(lambda_env: None, change: dict[str, Any], message: str) -> None:
    with pytest.raises(validate.InvalidSpec, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate.handler({"spec": changed(**change)}, None)


# --- verify -----------------------------------------------------------------------------------


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="artifacts-bucket")
        yield client


def _upload(s3: Any, files: dict[str, bytes], manifest: dict[str, Any] | None) -> None:
    for path, body in files.items():
        s3.put_object(Bucket="artifacts-bucket", Key=f"artifacts/k/{path}", Body=body)
    if manifest is not None:
        s3.put_object(Bucket="artifacts-bucket", Key="artifacts/k/manifest.json", Body=json.dumps(manifest).encode())


RECORD = {"engine": "vllm-nxdi", "sdk": "2.28.0", "image": "r/neuron:tag", "neuronx_cc": "2.23.6484.0"}
EVENT = {
    "bucket": "artifacts-bucket",
    "artifactsPrefix": "artifacts/k/",
    "cacheKey": "k",
    "sdkVersion": "2.28.0",
    "image": "r/neuron:tag",
    "engine": "vllm-nxdi",
}


def _manifest(files: dict[str, bytes], key: str = "k", **neuron: Any) -> dict[str, Any]:
    return {
        "cache_key": key,
        "compile_seconds": 1234.5,
        "compiler": "vllm LLM() with NEURON_COMPILED_ARTIFACTS (NxD Inference)",
        "neuron": RECORD | neuron,
        "files": [{"path": p, "sha256": "ab" * 32, "size": len(b)} for p, b in files.items()],
    }


def test_verify_accepts_a_complete_upload(s3: Any) -> None:
    files = {"model.pt": b"x" * 100, "neuron_config.json": b"{}"}
    _upload(s3, files, _manifest(files))
    out = verify.handler(EVENT, None)
    assert out["totalBytes"] == 102
    assert [f["path"] for f in out["files"]] == ["model.pt", "neuron_config.json"]
    assert out["compileSeconds"] == 1234.5
    # The registry records what compiled them; a runtime the image did not tell is "unknown".
    assert out["neuron"] == {"engine": "vllm-nxdi", "neuronxCc": "2.23.6484.0", "runtime": "unknown"}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"sdk": "2.31.1"}, "records sdk '2.31.1', this run compiles '2.28.0'"),
        ({"image": "elsewhere/x:1"}, "records image 'elsewhere/x:1', this run compiles 'r/neuron:tag'"),
        ({"engine": "optimum-neuron"}, "records engine 'optimum-neuron', this run compiles 'vllm-nxdi'"),
    ],
)
def test_verify_refuses_artifacts_of_another_toolchain(s3: Any, record: dict[str, str], message: str) -> None:
    files = {"model.pt": b"x"}
    _upload(s3, files, _manifest(files, **record))
    with pytest.raises(verify.VerificationFailed, match=message):
        verify.handler(EVENT, None)


@pytest.mark.parametrize(
    ("files", "manifest", "message"),
    [
        ({"model.pt": b"x"}, None, "manifest.json: NoSuchKey"),
        ({"model.pt": b"x"}, _manifest({"model.pt": b"x"}, key="other"), "is for 'other', expected 'k'"),
        ({}, _manifest({"model.pt": b"x"}), "model.pt: missing"),
        ({"model.pt": b"xx"}, _manifest({"model.pt": b"x"}), "model.pt: 2 bytes, manifest says 1"),
        ({}, _manifest({}), "lists no files"),
    ],
)
def test_verify_names_what_is_wrong(s3: Any, files: dict[str, bytes], manifest: Any, message: str) -> None:
    _upload(s3, files, manifest)
    with pytest.raises(verify.VerificationFailed, match=message):
        verify.verify(s3, "artifacts-bucket", "artifacts/k/", "k")
