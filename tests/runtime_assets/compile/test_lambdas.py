"""The pipeline's Lambda steps: spec checks, cache keys, artifact verification (moto S3)."""

from __future__ import annotations

import copy
import importlib
import json
import re
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.runtime_assets.compile.conftest import COMPILE, load

# In Lambda, cache_key.py and spec_rules.py sit beside the handlers (CompilePipeline bundles
# them from the library).
cache_key_module = importlib.import_module("neuron_platform.compile.cache_key")
sys.modules["cache_key"] = cache_key_module
sys.modules["spec_rules"] = importlib.import_module("neuron_platform.compile.spec_rules")
validate = load(COMPILE / "lambdas" / "validate.py", "compile_validate")
verify = load(COMPILE / "lambdas" / "verify.py", "compile_verify")

REPOSITORY = "123456789012.dkr.ecr.us-east-1.amazonaws.com/neuron-neuron"
IMAGE = f"{REPOSITORY}@sha256:{'1' * 64}"
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
    "image": IMAGE,
}


# What the CLI sends beside the spec (from the Neuron data for SDK 2.26.1's optimum-neuron image).
NEURON = {"engine": "optimum-neuron", "neuronxCc": "2.21.33363.0", "runtime": "2.28.23.0"}
VLLM_NEURON = {"engine": "vllm-nxdi", "neuronxCc": "2.23.6484.0", "runtime": "2.30.51.0"}
EXECUTION = "compile-3f1c0a-1764316800"


def changed(**fields: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec.update(fields)
    return spec


def event(spec: Any = None, **fields: Any) -> dict[str, Any]:
    """The Validate step's payload: the execution input and the execution's name."""
    given = {"spec": copy.deepcopy(SPEC) if spec is None else spec, "neuron": NEURON, **fields}
    return {"input": given, "executionName": EXECUTION}


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
        {"image": f"{REPOSITORY}@sha256:{'2' * 64}"},
    ],
)
def test_every_artifact_changing_field_changes_the_key(change: dict[str, Any]) -> None:
    assert cache_key_module.cache_key(changed(**change)) != cache_key_module.cache_key(SPEC)


@pytest.mark.parametrize(
    "image",
    [
        f"210987654321.dkr.ecr.us-east-1.amazonaws.com/neuron-neuron@sha256:{'1' * 64}",  # another account
        f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/neuron-neuron@sha256:{'1' * 64}",  # another region
        f"123456789012.dkr.ecr.us-east-1.amazonaws.com/other-neuron@sha256:{'1' * 64}",  # another repository
    ],
)
def test_the_whole_image_reference_is_in_the_key(image: str) -> None:
    """Issue 15: the key used to drop the registry host, so attacker.example/<repo>:<tag> and the
    stack's own image shared a key. Every part of the reference now counts."""
    assert cache_key_module.cache_key(changed(image=image)) != cache_key_module.cache_key(SPEC)


def test_an_unpinned_key_is_never_a_compiled_key() -> None:
    unpinned = cache_key_module.unpinned_key(SPEC)
    assert unpinned == "meta-llama-3-8b-instruct-inf2-tp8-b4-s4096-unpinned"
    assert not re.fullmatch(r".*-[0-9a-f]{32}", unpinned)


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
    monkeypatch.setenv("STAGING_PREFIX", "staging/")
    monkeypatch.setenv("IMAGE_REPOSITORY", REPOSITORY)
    monkeypatch.setenv("MAX_MEMORY_GIB", "460")
    monkeypatch.setenv("CLUSTER_ENDPOINTS", "llama3-8b")


def test_validate_returns_key_and_locations(lambda_env: None) -> None:
    out = validate.handler(event(), None)
    key = cache_key_module.cache_key(SPEC)
    assert out["cacheKey"] == key
    # The job writes the run's staging prefix; only the promote step writes artifacts/.
    assert out["outputUrl"] == f"s3://artifacts-bucket/staging/{key}/{EXECUTION}/"
    assert out["stagingPrefix"] == f"staging/{key}/{EXECUTION}/"
    assert out["artifactsUrl"] == f"s3://artifacts-bucket/artifacts/{key}/"
    assert out["artifactsPrefix"] == f"artifacts/{key}/"
    assert json.loads(out["specJson"]) == SPEC
    assert (out["memoryMiB"], out["vcpus"]) == (str(64 * 1024), "8")  # defaults without sizing
    assert (out["neuron"], out["placement"], out["endpoint"]) == (NEURON, "batch", "")


def test_vllm_engines_compile_on_a_configured_endpoints_pool(lambda_env: None) -> None:
    out = validate.handler(event(neuron=VLLM_NEURON, endpoint="llama3-8b"), None)
    assert (out["placement"], out["endpoint"]) == ("cluster", "llama3-8b")
    with pytest.raises(validate.InvalidSpec, match=r"endpoint: got 'other'; vllm-nxdi artifacts compile on an "):
        validate.handler(event(neuron=VLLM_NEURON, endpoint="other"), None)


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
        validate.handler(event(neuron=neuron), None)


def test_validate_takes_the_cli_sizing_within_bounds(lambda_env: None) -> None:
    out = validate.handler(event(resources={"memory_gib": 61, "vcpus": 16}), None)
    assert (out["memoryMiB"], out["vcpus"]) == (str(61 * 1024), "16")
    with pytest.raises(
        validate.InvalidSpec, match=r"resources\.memory_gib: got 600; allowed: an integer from 1 to 460"
    ):
        validate.handler(event(resources={"memory_gib": 600}), None)


def test_validate_needs_a_real_execution_name(lambda_env: None) -> None:
    with pytest.raises(validate.InvalidSpec, match="executionName"):
        validate.handler({**event(), "executionName": "../artifacts"}, None)


ALLOWED_IMAGE = (
    "allowed: an image of the compile stack's ECR repository by digest, "
    "<account>.dkr.ecr.<region>.amazonaws.com/<project>-neuron@sha256:<64 hex digits> (make compile-image prints it)"
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # Issue 15: each of these used to start a compile.
        ({"image": "docker.io/attacker/anything:1"}, f"image: got 'docker.io/attacker/anything:1'; {ALLOWED_IMAGE}"),
        (
            {"model": {"hf_id": "a/b", "revision": "main"}},
            "model: revision: got 'main'; allowed: a 40-hex commit sha or a version tag",
        ),
        ({"sdk_version": "x"}, "sdk_version: got 'x'; allowed: a Neuron SDK release like 2.26.1"),
        (
            {"image": f"{REPOSITORY}:0.13.0-neuronx"},
            f"image: got '{REPOSITORY}:0.13.0-neuronx'; {ALLOWED_IMAGE}",  # a tag moves; a digest does not
        ),
        (
            {"image": f"210987654321.dkr.ecr.us-east-1.amazonaws.com/neuron-neuron@sha256:{'1' * 64}"},
            f"allowed: {REPOSITORY}@sha256:<64 hex digits> (this pipeline's repository)",
        ),
        ({"target": "inf1"}, "target: got 'inf1'; allowed: inf2, trn1, trn2"),
        ({"batch_size": 0}, "batch_size: got 0; allowed: an integer from 1 to 256"),
        ({"batch_size": True}, "batch_size: got True (boolean); expected an integer"),
        ({"model": {"hf_id": "a/b"}}, "model: revision: got None; allowed: a 40-hex commit sha"),
        ({"model": {"hf_id": "a/b", "revision": "1", "s3_uri": "s3://b/p"}}, "model: give exactly one"),
        ({"model": {"s3_uri": "s3://models/../other/"}}, "model.s3_uri: got 's3://models/../other/'"),
        ({"compiler_flags": "--optlevel=1"}, "compiler_flags: got '--optlevel=1'; expected a list of strings"),
        ({"compiler_flags": ["--optlevel=1; rm -rf /"]}, "compiler_flags: got '--optlevel=1; rm -rf /'; allowed"),
        ({"extra": 1}, "extra: unknown key; allowed keys here: model, task, target"),
    ],
)
def test_validate_rejects_bad_specs(lambda_env: None, change: dict[str, Any], message: str) -> None:
    with pytest.raises(validate.InvalidSpec) as err:
        validate.handler(event(changed(**change)), None)
    assert message in str(err.value)


# --- verify -----------------------------------------------------------------------------------

STAGING = "staging/k/run-1/"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="artifacts-bucket")
        client.put_bucket_versioning(Bucket="artifacts-bucket", VersioningConfiguration={"Status": "Enabled"})
        yield client


def _upload(s3: Any, files: dict[str, bytes], manifest: dict[str, Any] | None, prefix: str = STAGING) -> None:
    for path, body in files.items():
        s3.put_object(Bucket="artifacts-bucket", Key=f"{prefix}{path}", Body=body)
    if manifest is not None:
        s3.put_object(Bucket="artifacts-bucket", Key=f"{prefix}manifest.json", Body=json.dumps(manifest).encode())


RECORD = {"engine": "vllm-nxdi", "sdk": "2.28.0", "image": IMAGE, "neuronx_cc": "2.23.6484.0"}
EVENT = {
    "bucket": "artifacts-bucket",
    "stagingPrefix": STAGING,
    "cacheKey": "k",
    "sdkVersion": "2.28.0",
    "image": IMAGE,
    "engine": "vllm-nxdi",
}


def _manifest(files: dict[str, bytes], key: str = "k", **neuron: Any) -> dict[str, Any]:
    import hashlib

    return {
        "cache_key": key,
        "compile_seconds": 1234.5,
        "compiler": "vllm LLM() with NEURON_COMPILED_ARTIFACTS (NxD Inference)",
        "neuron": RECORD | neuron,
        "files": [{"path": p, "sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for p, b in files.items()],
    }


def test_verify_accepts_a_complete_upload_and_names_the_versions_it_saw(s3: Any) -> None:
    files = {"model.pt": b"x" * 100, "neuron_config.json": b"{}"}
    _upload(s3, files, _manifest(files))
    out = verify.handler(EVENT, None)
    assert out["totalBytes"] == 102
    assert [f["path"] for f in out["files"]] == ["model.pt", "neuron_config.json"]
    head = s3.head_object(Bucket="artifacts-bucket", Key=f"{STAGING}model.pt")
    assert out["files"][0]["versionId"] == head["VersionId"]
    assert (
        out["manifestVersionId"]
        == s3.head_object(Bucket="artifacts-bucket", Key=f"{STAGING}manifest.json")["VersionId"]
    )
    assert out["compileSeconds"] == 1234.5
    # The registry records what compiled them; a runtime the image did not tell is "unknown".
    assert out["neuron"] == {"engine": "vllm-nxdi", "neuronxCc": "2.23.6484.0", "runtime": "unknown"}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"sdk": "2.31.1"}, "records sdk '2.31.1', this run compiles '2.28.0'"),
        ({"image": "elsewhere/x:1"}, f"records image 'elsewhere/x:1', this run compiles '{IMAGE}'"),
        ({"engine": "optimum-neuron"}, "records engine 'optimum-neuron', this run compiles 'vllm-nxdi'"),
    ],
)
def test_verify_refuses_artifacts_of_another_toolchain(s3: Any, record: dict[str, str], message: str) -> None:
    files = {"model.pt": b"x"}
    _upload(s3, files, _manifest(files, **record))
    with pytest.raises(verify.VerificationFailed, match=re.escape(message)):
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
        verify.verify(s3, "artifacts-bucket", STAGING, "k")


@pytest.mark.parametrize(
    "path",
    ["../../artifacts/other-key/model.pt", "/etc/passwd", "a/./b", "dir/", "manifest.json", "a\\..\\b", ""],
)
def test_verify_refuses_paths_that_leave_the_artifact_directory(s3: Any, path: str) -> None:
    """A manifest naming ../other-key/... would otherwise be promoted next to another key's files,
    and serving's sync would write it outside its directory."""
    manifest = _manifest({"model.pt": b"x"})
    manifest["files"].append({"path": path, "sha256": "ab" * 32, "size": 1})
    _upload(s3, {"model.pt": b"x"}, manifest)
    with pytest.raises(
        verify.VerificationFailed, match=r"not a file path|leaves the artifact directory|does not list itself"
    ):
        verify.verify(s3, "artifacts-bucket", STAGING, "k")


def test_verify_refuses_duplicates_and_malformed_hashes(s3: Any) -> None:
    manifest = _manifest({"model.pt": b"x"})
    manifest["files"] += [dict(manifest["files"][0]), {"path": "b.bin", "sha256": "nope", "size": -1}]
    _upload(s3, {"model.pt": b"x", "b.bin": b"y"}, manifest)
    with pytest.raises(verify.VerificationFailed) as err:
        verify.verify(s3, "artifacts-bucket", STAGING, "k")
    assert "'model.pt': listed twice" in str(err.value)
    assert "b.bin: sha256 'nope' is not 64 hex digits" in str(err.value)
    assert "b.bin: size -1 is not a byte count" in str(err.value)


def test_verify_needs_a_versioned_bucket(s3: Any) -> None:
    s3.create_bucket(Bucket="plain")
    s3.put_object(Bucket="plain", Key=f"{STAGING}manifest.json", Body=b"{}")
    with pytest.raises(verify.VerificationFailed, match="not versioned"):
        verify.verify(s3, "plain", STAGING, "k")
