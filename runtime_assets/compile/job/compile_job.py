"""The compile job: fetch the model, run the Neuron compiler for the spec, record, upload.

Runs as a Kubernetes Job started by the compile pipeline's state machine, in the compile
image (the pinned Neuron SDK image plus optimum-neuron). Environment:

- ``SPEC_JSON``: the validated compile spec; ``CACHE_KEY``: its cache key.
- ``ARTIFACTS_URL``: ``s3://bucket/artifacts/<cache key>/``, where the outputs go.
- ``NEURON_COMPILE_CACHE_URL``: the shared Neuron persistent cache (``s3://.../neuron-cache/``).
- ``WORK_DIR`` (default ``/work``): local scratch for the weights and the compiled model.
- ``HF_TOKEN`` (optional): for gated Hugging Face models.

Exit codes say what failed, and the last line on stderr says why:
2 bad spec, 3 model not found, 4 compiler failed, 5 disk full, 6 upload failed.
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
MANIFEST = "manifest.json"
GIB = 1024**3


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
    env = dict(base)
    flags = " ".join(spec.get("compiler_flags") or [])
    if flags:
        env["NEURON_CC_FLAGS"] = f"{env['NEURON_CC_FLAGS']} {flags}".strip() if env.get("NEURON_CC_FLAGS") else flags
    return env


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(
    output_dir: Path, *, cache_key: str, spec: Mapping[str, Any], compile_seconds: float
) -> dict[str, Any]:
    files = sorted(p for p in output_dir.rglob("*") if p.is_file() and p.name != MANIFEST)
    if not files:
        raise JobError(EXIT_COMPILER_FAILED, f"the compiler exited 0 but wrote nothing to {output_dir}")
    return {
        "cache_key": cache_key,
        "spec": dict(spec),
        "compiler": "optimum-cli export neuron",
        "compile_seconds": round(compile_seconds, 1),
        "files": [
            {"path": p.relative_to(output_dir).as_posix(), "sha256": sha256_of(p), "size": p.stat().st_size}
            for p in files
        ],
    }


def fetch_model(spec: Mapping[str, Any], target: Path, s3: Any, hf_download: Callable[..., str] | None = None) -> Path:
    """Weights on local disk: a Hugging Face snapshot at the pinned revision, or an S3 prefix."""
    model = spec["model"]
    if model.get("hf_id"):
        if hf_download is None:
            from huggingface_hub import snapshot_download  # in the compile image

            hf_download = snapshot_download
        try:
            return Path(hf_download(repo_id=model["hf_id"], revision=model["revision"], local_dir=str(target)))
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
    for key in keys:
        destination = target / key[len(source.prefix) :]
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


def run(env: Mapping[str, str], s3: Any, *, hf_download: Callable[..., str] | None = None, log: Any = print) -> int:
    try:
        spec = json.loads(env["SPEC_JSON"])
        cache_key = env["CACHE_KEY"]
        destination = S3Url.parse(env["ARTIFACTS_URL"])
    except (KeyError, json.JSONDecodeError) as err:
        raise JobError(EXIT_BAD_SPEC, f"SPEC_JSON, CACHE_KEY and ARTIFACTS_URL are required ({err})") from None
    work = Path(env.get("WORK_DIR", "/work"))
    model_dir, output_dir = work / "model", work / "compiled"
    shutil.rmtree(output_dir, ignore_errors=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    model_dir.mkdir(parents=True, exist_ok=True)
    log(f"compile {cache_key}: fetching {spec['model'].get('hf_id') or spec['model'].get('s3_uri')}")
    try:
        local_model = fetch_model(spec, model_dir, s3, hf_download)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise JobError(EXIT_DISK_FULL, f"disk full in {work} while fetching the model") from None
        raise
    command = export_command(spec, local_model, output_dir)
    log("compile: " + " ".join(command))
    started = time.monotonic()
    result = subprocess.run(command, env=compiler_env(spec, env), check=False, stderr=subprocess.PIPE, text=True)
    elapsed = time.monotonic() - started
    tail = (result.stderr or "").strip().splitlines()[-20:]
    for line in tail:
        log(line)
    if result.returncode != 0:
        if any("No space left on device" in line for line in tail):
            raise JobError(EXIT_DISK_FULL, f"disk full in {work} while compiling")
        raise JobError(
            EXIT_COMPILER_FAILED, f"optimum-cli exited {result.returncode}: {tail[-1] if tail else 'no output'}"
        )
    manifest = build_manifest(output_dir, cache_key=cache_key, spec=spec, compile_seconds=elapsed)
    log(f"compile: {len(manifest['files'])} files in {elapsed:.0f} s; uploading to {env['ARTIFACTS_URL']}")
    upload(s3, output_dir, manifest, destination)
    log(f"compile {cache_key}: done")
    return 0


def main() -> int:
    import boto3

    try:
        return run(os.environ, boto3.client("s3"))
    except JobError as err:
        print(f"compile failed: {err}", file=sys.stderr)
        return err.code


if __name__ == "__main__":
    sys.exit(main())
