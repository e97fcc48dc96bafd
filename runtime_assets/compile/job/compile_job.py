"""The compile job: fetch the model, compile it with the serving image's own engine, record, upload.

Runs in the compile image: the endpoint's serving image (same tag) plus this entrypoint,
nothing else. The engine that serves is the engine that compiles (``ENGINE``):

- ``vllm-nxdi`` (vLLM on NxD Inference, SDK <= 2.31): start the engine once with
  ``NEURON_COMPILED_ARTIFACTS`` pointing at an empty directory; vLLM compiles the model and
  saves ``neuron_config.json``, ``model.pt`` and the sharded weights there
  (``vllm_compile.py``). Needs a Neuron device: the pipeline runs it on the endpoint's pool.
- ``vllm-neuron`` (the vllm-neuron plugin, SDK >= 2.31 on trn2): the same, with the
  plugin's compile cache (``VLLM_CACHE_ROOT``) as the artifacts.
- ``optimum-neuron`` (the SageMaker Hugging Face image): ``optimum-cli export neuron``
  with ``--instance_type``, which compiles on a CPU-only machine.

Environment:

- ``SPEC_JSON``: the validated compile spec; ``CACHE_KEY``: its cache key.
- ``OUTPUT_URL``: ``s3://bucket/staging/<cache key>/<execution>/``, where the outputs go. The
  job's role can write nothing else but the Neuron cache: the pipeline's promote step checks
  every file's sha256 against the manifest and copies them to ``artifacts/<cache key>/``.
- ``ENGINE``: one of the engines above (default ``optimum-neuron``).
- ``EXPECTED_NEURONX_CC`` / ``EXPECTED_RUNTIME`` (optional): the compiler and runtime the
  spec's SDK ships (from the Neuron release manifest); the job refuses an image that
  carries others.
- ``NEURON_COMPILE_CACHE_URL``: the shared Neuron persistent cache (``s3://.../neuron-cache/``).
- ``WORK_DIR`` (default ``/work``): local scratch for the weights and the compiled model.
- ``HF_TOKEN_SECRET_ARN`` (optional): the Secrets Manager secret holding a Hugging Face token
  for gated models, read with the job's own role. The token goes to the download and
  nowhere else: not into the environment, not to the compiler (which runs with
  ``HF_HUB_OFFLINE=1`` on the downloaded files).

Exit codes say what failed, and the last line on stderr says why:
2 bad spec, 3 model not found (or an S3 key that would land outside the model directory),
4 compiler failed, 5 disk full, 6 upload failed, 7 the image's toolchain is not the spec's SDK.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXIT_BAD_SPEC = 2
EXIT_MODEL_NOT_FOUND = 3
EXIT_COMPILER_FAILED = 4
EXIT_DISK_FULL = 5
EXIT_UPLOAD_FAILED = 6
EXIT_WRONG_TOOLCHAIN = 7
MANIFEST = "manifest.json"
GIB = 1024**3
ENGINES = ("vllm-nxdi", "vllm-neuron", "optimum-neuron")
VLLM_COMPILE = Path(__file__).resolve().parent / "vllm_compile.py"
# vLLM artifacts: what the engine compiled under neuron/, the model's own files under model/
# (serving points --model there and runs offline). Sharded weights travel in neuron/ for
# NxD Inference, so model/ keeps only config and tokenizer files there.
COMPILED_SUBDIR = "neuron"
MODEL_SUBDIR = "model"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
# Hugging Face credentials never reach the compiler: it works on the downloaded files only.
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_SECRET_ARN")


class JobError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class S3Url:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Url:
        if not url.startswith("s3://") or "/" not in url[5:]:
            raise JobError(EXIT_BAD_SPEC, f"not an s3://bucket/prefix URL: {url!r}")
        bucket, _, prefix = url[5:].partition("/")
        return cls(bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/")


def export_command(spec: Mapping[str, Any], model_dir: Path, output_dir: Path) -> list[str]:
    """optimum-neuron's exporter with every shape fixed by the spec."""
    return [
        "optimum-cli",
        "export",
        "neuron",
        "--model",
        str(model_dir),
        "--task",
        str(spec["task"]),
        "--batch_size",
        str(spec["batch_size"]),
        "--sequence_length",
        str(spec["sequence_length"]),
        "--tensor_parallel_size",
        str(spec["tensor_parallel_size"]),
        "--torch_dtype",
        str(spec["dtype"]),
        "--instance_type",
        str(spec["target"]),
        str(output_dir),
    ]


def compiler_env(spec: Mapping[str, Any], base: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in TOKEN_VARIABLES}
    env["HF_HUB_OFFLINE"] = "1"
    flags = " ".join(spec.get("compiler_flags") or [])
    if flags:
        env["NEURON_CC_FLAGS"] = f"{env['NEURON_CC_FLAGS']} {flags}".strip() if env.get("NEURON_CC_FLAGS") else flags
    return env


def vllm_arguments(spec: Mapping[str, Any], engine: str) -> dict[str, Any]:
    """vLLM engine arguments fixed by the spec. Serving passes the same ones (the platform's
    ``vllm_command``; a test holds the two together): the artifacts match only these."""
    arguments: dict[str, Any] = {
        "tensor_parallel_size": int(spec["tensor_parallel_size"]),
        "max_num_seqs": int(spec["batch_size"]),
        "max_model_len": int(spec["sequence_length"]),
        "dtype": str(spec["dtype"]),
    }
    if engine == "vllm-nxdi":
        # NxD Inference derives its Neuron config from these; without prefix caching or
        # chunked prefill the KV blocks must equal max_num_seqs (vLLM Neuron user guide).
        arguments |= {
            "num_gpu_blocks_override": int(spec["batch_size"]),
            "enable_prefix_caching": False,
            "enable_chunked_prefill": False,
        }
    return arguments


def compile_command(
    spec: Mapping[str, Any], engine: str, model_dir: Path, output_dir: Path, base: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """The command (and its environment) that compiles ``spec`` with ``engine`` into ``output_dir``."""
    env = compiler_env(spec, base)
    if engine == "optimum-neuron":
        return export_command(spec, model_dir, output_dir), env
    kwargs: dict[str, Any] = {"model": str(model_dir), **vllm_arguments(spec, engine)}
    if engine == "vllm-nxdi":
        env["NEURON_COMPILED_ARTIFACTS"] = str(output_dir)
        # Weights sharded once here, so serving loads them instead of resharding at start.
        kwargs["additional_config"] = {"override_neuron_config": {"save_sharded_checkpoint": True}}
    else:
        env["VLLM_CACHE_ROOT"] = str(output_dir)
    python = env.get("COMPILE_PYTHON") or sys.executable
    return [python, str(VLLM_COMPILE), json.dumps(kwargs, sort_keys=True)], env


def copy_model_files(model_dir: Path, destination: Path, *, weights: bool) -> None:
    """The model's files serving needs beside the compiled artifacts (config, tokenizer; weights if asked)."""
    for path in sorted(model_dir.rglob("*")):
        relative = path.relative_to(model_dir)
        if not path.is_file() or relative.parts[0].startswith("."):
            continue  # hub metadata such as .cache/
        if not weights and path.suffix in WEIGHT_SUFFIXES:
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def installed_toolchain() -> dict[str, str | None]:
    """The compiler (pip package ``neuronx-cc``) and runtime (deb ``aws-neuronx-runtime-lib``) in this image."""
    from importlib import metadata

    try:
        compiler: str | None = metadata.version("neuronx-cc").split("+")[0]
    except metadata.PackageNotFoundError:
        compiler = None
    try:
        query = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "aws-neuronx-runtime-lib"],
            capture_output=True,
            text=True,
            check=False,
        )
        runtime: str | None = query.stdout.strip().split("-")[0] or None if query.returncode == 0 else None
    except FileNotFoundError:
        runtime = None
    return {"neuronx_cc": compiler, "runtime": runtime}


def check_toolchain(found: Mapping[str, str | None], env: Mapping[str, str], sdk: str) -> None:
    """Artifacts load only on the compiler/runtime line that made them: refuse any other."""
    for name, variable in (("neuronx_cc", "EXPECTED_NEURONX_CC"), ("runtime", "EXPECTED_RUNTIME")):
        expected = env.get(variable)
        # The compiler must be there; a runtime the image does not register with dpkg is not held against it.
        missing_ok = name == "runtime" and found.get(name) is None
        if expected and found.get(name) != expected and not missing_ok:
            raise JobError(
                EXIT_WRONG_TOOLCHAIN,
                f"the image carries {name} {found.get(name) or 'none'}, Neuron SDK {sdk} ships {expected}: "
                "build the compile image FROM the endpoint's serving image (make compile-image)",
            )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


ENTRY_POINTS = {
    "vllm-nxdi": "vllm LLM() with NEURON_COMPILED_ARTIFACTS (NxD Inference)",
    "vllm-neuron": "vllm LLM() with VLLM_CACHE_ROOT (vllm-neuron)",
    "optimum-neuron": "optimum-cli export neuron",
}


def build_manifest(
    output_dir: Path,
    *,
    cache_key: str,
    spec: Mapping[str, Any],
    compile_seconds: float,
    engine: str = "optimum-neuron",
    toolchain: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    files = sorted(p for p in output_dir.rglob("*") if p.is_file() and p.name != MANIFEST)
    if not files:
        raise JobError(EXIT_COMPILER_FAILED, f"the compiler exited 0 but wrote nothing to {output_dir}")
    return {
        "cache_key": cache_key,
        "spec": dict(spec),
        "compiler": ENTRY_POINTS[engine],
        # What serving checks before it loads the artifacts: the SDK line that made them.
        "neuron": {
            "engine": engine,
            "sdk": spec.get("sdk_version"),
            "image": spec.get("image"),
            **dict(toolchain or {}),
        },
        "compile_seconds": round(compile_seconds, 1),
        "files": [
            {"path": p.relative_to(output_dir).as_posix(), "sha256": sha256_of(p), "size": p.stat().st_size}
            for p in files
        ],
    }


def model_file(target: Path, relative: str) -> Path:
    """Where an S3 object of the model goes: inside ``target``, or nowhere."""
    parts = relative.split("/")
    bad = not relative or relative.startswith("/") or "\\" in relative or any(p in ("", ".", "..") for p in parts)
    destination = (target / relative).resolve()
    if bad or not destination.is_relative_to(target.resolve()):
        raise JobError(EXIT_MODEL_NOT_FOUND, f"refusing S3 object {relative!r}: it would land outside {target}")
    return destination


def fetch_model(
    spec: Mapping[str, Any],
    target: Path,
    s3: Any,
    hf_download: Callable[..., str] | None = None,
    *,
    hf_token: str | None = None,
) -> Path:
    """Weights on local disk: a Hugging Face snapshot at the pinned revision, or an S3 prefix."""
    model = spec["model"]
    if model.get("hf_id"):
        if hf_download is None:
            from huggingface_hub import snapshot_download  # in the compile image

            hf_download = snapshot_download
        try:
            return Path(
                hf_download(repo_id=model["hf_id"], revision=model["revision"], local_dir=str(target), token=hf_token)
            )
        except Exception as err:  # huggingface_hub raises several not-found and auth errors
            raise JobError(
                EXIT_MODEL_NOT_FOUND,
                f"cannot download {model['hf_id']}@{model['revision']}: {type(err).__name__}: {err}",
            ) from None
    source = S3Url.parse(model["s3_uri"])
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=source.bucket, Prefix=source.prefix)
        for obj in page.get("Contents", [])
        if not obj["Key"].endswith("/")
    ]
    if not keys:
        raise JobError(EXIT_MODEL_NOT_FOUND, f"no objects under {model['s3_uri']}")
    # Every key checked before anything is written: one bad key refuses the whole source.
    destinations = {key: model_file(target, key[len(source.prefix) :]) for key in keys}
    for key, destination in destinations.items():
        destination.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(source.bucket, key, str(destination))
    return target


def upload(s3: Any, output_dir: Path, manifest: Mapping[str, Any], destination: S3Url) -> None:
    """Every file, then the manifest last: a manifest in S3 means a complete upload."""
    try:
        for entry in manifest["files"]:
            s3.upload_file(str(output_dir / entry["path"]), destination.bucket, destination.prefix + entry["path"])
        s3.put_object(
            Bucket=destination.bucket,
            Key=destination.prefix + MANIFEST,
            Body=json.dumps(manifest, indent=2).encode(),
            ContentType="application/json",
        )
    except Exception as err:  # boto3 raises ClientError, S3UploadFailedError, EndpointConnectionError, ...
        raise JobError(
            EXIT_UPLOAD_FAILED, f"upload to s3://{destination.bucket}/{destination.prefix} failed: {err}"
        ) from None


def run(
    env: Mapping[str, str],
    s3: Any,
    *,
    hf_download: Callable[..., str] | None = None,
    log: Any = print,
    toolchain: Callable[[], Mapping[str, str | None]] = installed_toolchain,
    hf_token: str | None = None,
) -> int:
    try:
        spec = json.loads(env["SPEC_JSON"])
        cache_key = env["CACHE_KEY"]
        destination = S3Url.parse(env["OUTPUT_URL"])
    except (KeyError, json.JSONDecodeError) as err:
        raise JobError(EXIT_BAD_SPEC, f"SPEC_JSON, CACHE_KEY and OUTPUT_URL are required ({err})") from None
    engine = env.get("ENGINE", "optimum-neuron")
    if engine not in ENGINES:
        raise JobError(EXIT_BAD_SPEC, f"ENGINE: got {engine!r}; allowed: {', '.join(ENGINES)}")
    found = dict(toolchain())
    check_toolchain(found, env, str(spec.get("sdk_version")))
    work = Path(env.get("WORK_DIR", "/work"))
    model_dir, output_dir = work / "model", work / "compiled"
    shutil.rmtree(output_dir, ignore_errors=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    model_dir.mkdir(parents=True, exist_ok=True)
    log(f"compile {cache_key}: fetching {spec['model'].get('hf_id') or spec['model'].get('s3_uri')}")
    try:
        local_model = fetch_model(spec, model_dir, s3, hf_download, hf_token=hf_token)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise JobError(EXIT_DISK_FULL, f"disk full in {work} while fetching the model") from None
        raise
    compiled_dir = output_dir if engine == "optimum-neuron" else output_dir / COMPILED_SUBDIR
    compiled_dir.mkdir(parents=True, exist_ok=True)
    command, command_env = compile_command(spec, engine, local_model, compiled_dir, env)
    log(f"compile ({engine}): " + " ".join(command))
    started = time.monotonic()
    result = subprocess.run(command, env=command_env, check=False, stderr=subprocess.PIPE, text=True)
    elapsed = time.monotonic() - started
    tail = (result.stderr or "").strip().splitlines()[-20:]
    for line in tail:
        log(line)
    if result.returncode != 0:
        if any("No space left on device" in line for line in tail):
            raise JobError(EXIT_DISK_FULL, f"disk full in {work} while compiling")
        raise JobError(
            EXIT_COMPILER_FAILED,
            f"{ENTRY_POINTS[engine]} exited {result.returncode}: {tail[-1] if tail else 'no output'}",
        )
    if engine != "optimum-neuron":
        if not any(p.is_file() for p in compiled_dir.rglob("*")):
            raise JobError(EXIT_COMPILER_FAILED, f"{ENTRY_POINTS[engine]} exited 0 but saved nothing in {compiled_dir}")
        copy_model_files(local_model, output_dir / MODEL_SUBDIR, weights=engine == "vllm-neuron")
    manifest = build_manifest(
        output_dir, cache_key=cache_key, spec=spec, compile_seconds=elapsed, engine=engine, toolchain=found
    )
    log(f"compile: {len(manifest['files'])} files in {elapsed:.0f} s; uploading to {env['OUTPUT_URL']}")
    upload(s3, output_dir, manifest, destination)
    log(f"compile {cache_key}: done")
    return 0


def hugging_face_token(env: Mapping[str, str], secrets: Any) -> str | None:
    """The token in ``HF_TOKEN_SECRET_ARN``, read with the job's own role (None without one)."""
    arn = env.get("HF_TOKEN_SECRET_ARN")
    if not arn:
        return None
    try:
        return str(secrets.get_secret_value(SecretId=arn)["SecretString"]).strip()
    except Exception as err:  # botocore raises ClientError, EndpointConnectionError, ...
        raise JobError(EXIT_MODEL_NOT_FOUND, f"cannot read the Hugging Face token secret {arn}: {err}") from None


def main() -> int:
    import boto3

    try:
        # Batch and the pod pass the secret's ARN, never the token; the job's role reads it.
        token = (
            hugging_face_token(os.environ, boto3.client("secretsmanager"))
            if os.environ.get("HF_TOKEN_SECRET_ARN")
            else None
        )
        env = {k: v for k, v in os.environ.items() if k not in TOKEN_VARIABLES}
        return run(env, boto3.client("s3"), hf_token=token)
    except JobError as err:
        print(f"compile failed: {err}", file=sys.stderr)
        return err.code


if __name__ == "__main__":
    sys.exit(main())
