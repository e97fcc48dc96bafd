"""The compile job with a fake ``optimum-cli`` on PATH and moto S3."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.runtime_assets.compile.conftest import COMPILE, load

job = load(COMPILE / "job" / "compile_job.py", "compile_job")

SPEC: dict[str, Any] = {
    "model": {"s3_uri": "s3://models/llama-3-8b/"},
    "task": "text-generation",
    "target": "inf2",
    "batch_size": 4,
    "sequence_length": 4096,
    "tensor_parallel_size": 8,
    "dtype": "bfloat16",
    "compiler_flags": ["--optlevel=2"],
    "sdk_version": "2.26.1",
    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/neuron-neuron@sha256:" + "1" * 64,
}
STAGING = "staging/llama-3-8b-inf2-tp8-b4-s4096-0123/compile-run-1/"

PINNED_INF_SMALL = "123456789012.dkr.ecr.us-west-2.amazonaws.com/inf-small-neuron@sha256:" + "3" * 64
PINNED_NEURON = "123456789012.dkr.ecr.us-west-2.amazonaws.com/neuron-neuron@sha256:" + "4" * 64

FAKE_COMPILER = """#!/usr/bin/env python3
import json, os, sys
out = sys.argv[-1]
with open(os.environ["FAKE_RECORD"], "w") as f:
    json.dump({"argv": sys.argv, "cc_flags": os.environ.get("NEURON_CC_FLAGS"),
               "cache": os.environ.get("NEURON_COMPILE_CACHE_URL"),
               "hf": {k: v for k, v in os.environ.items() if k.startswith(("HF_", "HUGGING"))},
               "model_files": sorted(os.listdir(sys.argv[sys.argv.index("--model") + 1]))}, f)
mode = os.environ.get("FAKE_MODE", "ok")
if mode == "fail":
    print("ERROR: compilation failed: out of instruction memory", file=sys.stderr)
    sys.exit(70)
if mode == "nospace":
    print("OSError: [Errno 28] No space left on device", file=sys.stderr)
    sys.exit(1)
if mode == "empty":
    sys.exit(0)
os.makedirs(os.path.join(out, "compiled"), exist_ok=True)
open(os.path.join(out, "compiled", "model.neff"), "wb").write(b"NEFF" * 1000)
open(os.path.join(out, "neuron_config.json"), "w").write('{"tp_degree": 8}')
print("compiled", file=sys.stderr)
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    compiler = bin_dir / "optimum-cli"
    compiler.write_text(FAKE_COMPILER)
    compiler.chmod(compiler.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("models", "artifacts"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket="models", Key="llama-3-8b/config.json", Body=b"{}")
        s3.put_object(Bucket="models", Key="llama-3-8b/model-00001.safetensors", Body=b"w" * 10)
        yield {
            "s3": s3,
            "record": tmp_path / "record.json",
            "vars": {
                "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                "SPEC_JSON": json.dumps(SPEC),
                "CACHE_KEY": "llama-3-8b-inf2-tp8-b4-s4096-0123",
                "OUTPUT_URL": f"s3://artifacts/{STAGING}",
                "NEURON_COMPILE_CACHE_URL": "s3://artifacts/neuron-cache/",
                "WORK_DIR": str(tmp_path / "work"),
                "FAKE_RECORD": str(tmp_path / "record.json"),
            },
        }


def _run(env: dict[str, Any], **extra: str) -> int:
    logs: list[str] = []
    try:
        return int(job.run(env["vars"] | extra, env["s3"], log=logs.append))
    finally:
        env["logs"] = logs


def test_argument_mapping_from_the_spec(env: dict[str, Any], tmp_path: Path) -> None:
    assert _run(env) == 0
    record = json.loads(env["record"].read_text())
    argv = record["argv"][1:]
    assert argv[:2] == ["export", "neuron"]
    options = dict(zip(argv[2:-1:2], argv[3:-1:2], strict=True))
    assert options == {
        "--model": str(tmp_path / "work" / "model"),
        "--task": "text-generation",
        "--batch_size": "4",
        "--sequence_length": "4096",
        "--tensor_parallel_size": "8",
        "--torch_dtype": "bfloat16",
        "--instance_type": "inf2",
    }
    assert argv[-1] == str(tmp_path / "work" / "compiled")
    assert record["cc_flags"] == "--optlevel=2"
    assert record["cache"] == "s3://artifacts/neuron-cache/"
    assert record["model_files"] == ["config.json", "model-00001.safetensors"]


def test_manifest_with_sha256_uploaded_last(env: dict[str, Any]) -> None:
    assert _run(env) == 0
    s3 = env["s3"]
    prefix = STAGING
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="artifacts", Prefix=prefix)["Contents"])
    assert keys == [prefix + "compiled/model.neff", prefix + "manifest.json", prefix + "neuron_config.json"]
    manifest = json.loads(s3.get_object(Bucket="artifacts", Key=prefix + "manifest.json")["Body"].read())
    assert manifest["cache_key"] == "llama-3-8b-inf2-tp8-b4-s4096-0123"
    assert manifest["spec"] == SPEC
    neff = next(f for f in manifest["files"] if f["path"] == "compiled/model.neff")
    assert neff == {"path": "compiled/model.neff", "sha256": hashlib.sha256(b"NEFF" * 1000).hexdigest(), "size": 4000}


def test_compiler_failure_is_exit_4_with_its_last_line(env: dict[str, Any]) -> None:
    with pytest.raises(job.JobError) as err:
        _run(env, FAKE_MODE="fail")
    assert err.value.code == job.EXIT_COMPILER_FAILED
    assert str(err.value) == "optimum-cli export neuron exited 70: ERROR: compilation failed: out of instruction memory"
    assert "manifest.json" not in str(env["s3"].list_objects_v2(Bucket="artifacts"))


def test_disk_full_while_compiling_is_exit_5(env: dict[str, Any]) -> None:
    with pytest.raises(job.JobError) as err:
        _run(env, FAKE_MODE="nospace")
    assert err.value.code == job.EXIT_DISK_FULL
    assert "disk full" in str(err.value)


def test_disk_full_while_fetching_is_exit_5(env: dict[str, Any]) -> None:
    def no_space(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    env["s3"].download_file = no_space
    with pytest.raises(job.JobError) as err:
        _run(env)
    assert err.value.code == job.EXIT_DISK_FULL


def test_compiler_that_writes_nothing_fails(env: dict[str, Any]) -> None:
    with pytest.raises(job.JobError, match="wrote nothing"):
        _run(env, FAKE_MODE="empty")


def test_missing_s3_model_is_exit_3(env: dict[str, Any]) -> None:
    spec = SPEC | {"model": {"s3_uri": "s3://models/nothing-here/"}}
    with pytest.raises(job.JobError) as err:
        _run(env, SPEC_JSON=json.dumps(spec))
    assert err.value.code == job.EXIT_MODEL_NOT_FOUND
    assert str(err.value) == "no objects under s3://models/nothing-here/"


def test_hugging_face_model_at_its_revision(env: dict[str, Any]) -> None:
    calls: list[dict[str, str]] = []

    def download(**kwargs: str) -> str:
        calls.append(kwargs)
        Path(kwargs["local_dir"], "config.json").write_text("{}")
        return kwargs["local_dir"]

    spec = SPEC | {"model": {"hf_id": "meta-llama/Meta-Llama-3-8B", "revision": "a" * 40}}
    logs: list[str] = []
    assert job.run(env["vars"] | {"SPEC_JSON": json.dumps(spec)}, env["s3"], hf_download=download, log=logs.append) == 0
    assert calls[0]["repo_id"] == "meta-llama/Meta-Llama-3-8B"
    assert calls[0]["revision"] == "a" * 40


def test_hugging_face_not_found_is_exit_3(env: dict[str, Any]) -> None:
    def download(**_kwargs: str) -> str:
        raise FileNotFoundError("404 Client Error: Repository Not Found")

    spec = SPEC | {"model": {"hf_id": "nobody/nothing", "revision": "b" * 40}}
    with pytest.raises(job.JobError) as err:
        job.run(env["vars"] | {"SPEC_JSON": json.dumps(spec)}, env["s3"], hf_download=download, log=lambda _: None)
    assert err.value.code == job.EXIT_MODEL_NOT_FOUND
    assert "nobody/nothing@" + "b" * 40 in str(err.value)


def test_missing_environment_is_exit_2(env: dict[str, Any]) -> None:
    with pytest.raises(job.JobError) as err:
        job.run({"PATH": env["vars"]["PATH"]}, env["s3"], log=lambda _: None)
    assert err.value.code == job.EXIT_BAD_SPEC


def test_main_prints_one_line_and_returns_the_code(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in (env["vars"] | {"FAKE_MODE": "fail", "AWS_DEFAULT_REGION": "us-east-1"}).items():
        monkeypatch.setenv(name, value)
    assert job.main() == job.EXIT_COMPILER_FAILED  # boto3 inside main() talks to moto here
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (
        "compile failed: optimum-cli export neuron exited 70: ERROR: compilation failed: out of instruction memory"
    )


# --- vLLM engines: the serving image's own vLLM compiles ---------------------------------------

# Stands in for the serving image's vLLM: like vLLM on Neuron, constructing LLM compiles the
# model for its engine arguments and saves what it compiled where the environment points.
FAKE_VLLM = """
import json, os

class LLM:
    def __init__(self, **kwargs):
        nxdi = "NEURON_COMPILED_ARTIFACTS" in os.environ
        target = os.environ["NEURON_COMPILED_ARTIFACTS"] if nxdi else os.environ["VLLM_CACHE_ROOT"]
        with open(os.environ["FAKE_RECORD"], "w") as f:
            json.dump({"kwargs": kwargs, "target": target, "nxdi": nxdi,
                       "model_files": sorted(os.listdir(kwargs["model"]))}, f)
        if os.environ.get("FAKE_MODE") == "nothing":
            return
        if nxdi:
            os.makedirs(os.path.join(target, "weights"), exist_ok=True)
            open(os.path.join(target, "neuron_config.json"), "w").write("{}")
            open(os.path.join(target, "model.pt"), "wb").write(b"PT" * 100)
            open(os.path.join(target, "weights", "tp0_sharded_checkpoint.safetensors"), "wb").write(b"W" * 10)
        else:
            cache = os.path.join(target, "neuron", "compile_cache", "abc123")
            os.makedirs(cache, exist_ok=True)
            open(os.path.join(cache, "model.neff"), "wb").write(b"NEFF")
"""

SPEC_2_28 = SPEC | {
    "sdk_version": "2.28.0",
    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/p-neuron@sha256:" + "2" * 64,
}


@pytest.fixture
def vllm(env: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    package = tmp_path / "fake-vllm" / "vllm"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_VLLM)
    env["vars"] |= {"PYTHONPATH": str(package.parent), "SPEC_JSON": json.dumps(SPEC_2_28)}
    return env


def _uploaded(env: dict[str, Any]) -> list[str]:
    prefix = STAGING
    return sorted(o["Key"][len(prefix) :] for o in env["s3"].list_objects_v2(Bucket="artifacts")["Contents"])


def test_vllm_nxdi_compiles_by_loading_the_engine_once(vllm: dict[str, Any], tmp_path: Path) -> None:
    assert _run(vllm, ENGINE="vllm-nxdi") == 0
    record = json.loads(vllm["record"].read_text())
    work = tmp_path / "work"
    assert record["nxdi"] is True
    assert record["target"] == str(work / "compiled" / "neuron")
    assert record["kwargs"] == {
        "model": str(work / "model"),
        "tensor_parallel_size": 8,
        "max_num_seqs": 4,
        "max_model_len": 4096,
        "dtype": "bfloat16",
        "num_gpu_blocks_override": 4,
        "enable_prefix_caching": False,
        "enable_chunked_prefill": False,
        "additional_config": {"override_neuron_config": {"save_sharded_checkpoint": True}},
    }
    # Compiled files under neuron/, the model's own files (weights stay out: they are sharded) under model/.
    assert _uploaded(vllm) == [
        "manifest.json",
        "model/config.json",
        "neuron/model.pt",
        "neuron/neuron_config.json",
        "neuron/weights/tp0_sharded_checkpoint.safetensors",
    ]


def test_vllm_neuron_keeps_its_compile_cache_and_the_weights(vllm: dict[str, Any]) -> None:
    assert _run(vllm, ENGINE="vllm-neuron") == 0
    record = json.loads(vllm["record"].read_text())
    assert record["nxdi"] is False
    assert "num_gpu_blocks_override" not in record["kwargs"]  # the plugin sizes its KV cache itself
    assert _uploaded(vllm) == [
        "manifest.json",
        "model/config.json",
        "model/model-00001.safetensors",
        "neuron/neuron/compile_cache/abc123/model.neff",
    ]


def test_an_engine_that_saves_nothing_fails(vllm: dict[str, Any]) -> None:
    with pytest.raises(job.JobError, match="saved nothing") as err:
        _run(vllm, ENGINE="vllm-nxdi", FAKE_MODE="nothing")
    assert err.value.code == job.EXIT_COMPILER_FAILED


def test_the_manifest_records_the_toolchain_serving_checks(vllm: dict[str, Any]) -> None:
    toolchain = {"neuronx_cc": "2.23.6484.0", "runtime": "2.30.51.0"}
    logs: list[str] = []
    code = job.run(
        vllm["vars"] | {"ENGINE": "vllm-nxdi", "EXPECTED_NEURONX_CC": "2.23.6484.0", "EXPECTED_RUNTIME": "2.30.51.0"},
        vllm["s3"],
        log=logs.append,
        toolchain=lambda: toolchain,
    )
    assert code == 0
    prefix = STAGING
    manifest = json.loads(vllm["s3"].get_object(Bucket="artifacts", Key=prefix + "manifest.json")["Body"].read())
    assert manifest["neuron"] == {
        "engine": "vllm-nxdi",
        "sdk": "2.28.0",
        "image": SPEC_2_28["image"],
        "neuronx_cc": "2.23.6484.0",
        "runtime": "2.30.51.0",
    }
    assert manifest["compiler"] == "vllm LLM() with NEURON_COMPILED_ARTIFACTS (NxD Inference)"


def test_an_image_with_another_compiler_is_exit_7(vllm: dict[str, Any]) -> None:
    """optimum-neuron 0.4.5 pins SDK 2.26.1's compiler: on a 2.28 image it would compile for another line."""
    with pytest.raises(job.JobError) as err:
        job.run(
            vllm["vars"] | {"ENGINE": "vllm-nxdi", "EXPECTED_NEURONX_CC": "2.23.6484.0"},
            vllm["s3"],
            log=lambda _: None,
            toolchain=lambda: {"neuronx_cc": "2.21.33363.0", "runtime": None},
        )
    assert err.value.code == job.EXIT_WRONG_TOOLCHAIN
    assert str(err.value).startswith("the image carries neuronx_cc 2.21.33363.0, Neuron SDK 2.28.0 ships 2.23.6484.0")


def test_an_unknown_engine_is_exit_2(env: dict[str, Any]) -> None:
    with pytest.raises(job.JobError, match="ENGINE: got 'tgi'") as err:
        _run(env, ENGINE="tgi")
    assert err.value.code == job.EXIT_BAD_SPEC


@pytest.mark.parametrize("endpoint", ["llama3-8b", "qwen-trn2"])
def test_compile_and_serving_pass_vllm_the_same_engine_arguments(endpoint: str) -> None:
    """Artifacts load only for the engine arguments that compiled them."""
    from neuron_platform.config import load_config
    from neuron_platform.k8s.serving import vllm_command, vllm_engine_arguments
    from neuron_platform.serving.planner import plan
    from neuron_platform.serving.spec import ServingSpec
    from tests.conftest import REPO

    if endpoint == "llama3-8b":
        config = load_config(REPO / "config" / "examples" / "inference-small.yaml")
        spec = config.endpoint(endpoint)
        assert spec is not None
        served = dataclasses.replace(config.plan_endpoint(spec), compile_image=PINNED_INF_SMALL)
    else:
        spec = ServingSpec.model_validate(
            {
                "name": endpoint,
                "backend": "eks",
                "pool": "trn2",
                "model": {"s3_uri": "s3://my-models/qwen/"},
                "target": "trn2",
                "batch_size": 8,
                "sequence_length": 8192,
                "tensor_parallel_size": 16,
            }
        )
        served = plan(spec, pool_types=["trn2.48xlarge"], compile_image=PINNED_NEURON)
    compile_spec = json.loads(served.compile_spec().model_dump_json())
    assert job.vllm_arguments(compile_spec, served.engine) == vllm_engine_arguments(served)
    command = vllm_command(served)
    for name, value in vllm_engine_arguments(served).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            assert (flag if value else flag.replace("--", "--no-", 1)) in command
        else:
            assert command[command.index(flag) + 1] == str(value)


# --- issue 15: model sources stay in the work directory; the token reaches the download only ----


@pytest.mark.parametrize(
    "key",
    [
        "llama-3-8b/../../escaped.txt",  # climbs out of the model directory
        "llama-3-8b//etc/cron.d/job",  # an absolute path once the prefix is cut
        "llama-3-8b/sub/./../../../x",
    ],
)
def test_s3_keys_that_escape_the_model_directory_are_refused(env: dict[str, Any], tmp_path: Path, key: str) -> None:
    env["s3"].put_object(Bucket="models", Key=key, Body=b"payload")
    with pytest.raises(job.JobError) as err:
        _run(env)
    assert err.value.code == job.EXIT_MODEL_NOT_FOUND
    assert "would land outside" in str(err.value)
    # Refused before anything was written, inside or outside the work directory.
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "work" / "model" / "config.json").exists()


def test_the_model_directory_check_keeps_ordinary_keys() -> None:
    target = Path("/work/model")
    assert job.model_file(target, "sub/dir/model.safetensors") == target / "sub" / "dir" / "model.safetensors"
    for bad in ("../x", "/x", "a//b", "a/./b", "", "a\\..\\b"):
        with pytest.raises(job.JobError):
            job.model_file(target, bad)


def test_the_token_goes_to_the_download_and_never_to_the_compiler(env: dict[str, Any]) -> None:
    seen: dict[str, Any] = {}

    def download(**kwargs: Any) -> str:
        seen.update(kwargs)
        Path(kwargs["local_dir"], "config.json").write_text("{}")
        return str(kwargs["local_dir"])

    spec = SPEC | {"model": {"hf_id": "meta-llama/Meta-Llama-3-8B", "revision": "a" * 40}}
    leaky = env["vars"] | {"SPEC_JSON": json.dumps(spec), "HF_TOKEN": "hf_leak", "HF_TOKEN_SECRET_ARN": "arn:x"}
    assert job.run(leaky, env["s3"], hf_download=download, log=lambda _: None, hf_token="hf_secret") == 0
    assert seen["token"] == "hf_secret"
    record = json.loads(env["record"].read_text())
    assert record["hf"] == {"HF_HUB_OFFLINE": "1"}  # the compiler sees no token and cannot reach the hub


def test_the_token_is_read_from_secrets_manager_with_the_jobs_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(Name="hf-token", SecretString="hf_abc\n")["ARN"]
        assert job.hugging_face_token({"HF_TOKEN_SECRET_ARN": arn}, secrets) == "hf_abc"
        assert job.hugging_face_token({}, secrets) is None
        with pytest.raises(job.JobError, match="cannot read the Hugging Face token secret"):
            job.hugging_face_token({"HF_TOKEN_SECRET_ARN": arn + "-gone"}, secrets)


def test_main_never_puts_the_token_in_the_environment(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, Any] = {}

    def fake_run(run_env: dict[str, str], _s3: Any, *, hf_token: str | None = None) -> int:
        calls.update(env=dict(run_env), token=hf_token)
        return 0

    monkeypatch.setattr(job, "run", fake_run)
    monkeypatch.setattr(job, "hugging_face_token", lambda _env, _client: "hf_secret")
    for name, value in (env["vars"] | {"AWS_DEFAULT_REGION": "us-east-1", "HF_TOKEN_SECRET_ARN": "arn:s"}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert job.main() == 0
    assert calls["token"] == "hf_secret"
    assert not {"HF_TOKEN", "HF_TOKEN_SECRET_ARN"} & set(calls["env"])
    assert "HF_TOKEN" not in os.environ  # the old main() exported the token for every child process
