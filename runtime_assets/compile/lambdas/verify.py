"""Step 4 of the compile pipeline: is what the job staged complete, and is it this run's?

The compile job uploads every file to its staging prefix (``staging/<cache key>/<execution
name>/``), then ``manifest.json`` last (its presence means the upload finished). This
handler reads the manifest, checks it belongs to this cache key and records the SDK, image
and engine this execution asked for (artifacts load only under the SDK line that compiled
them), that every listed path stays inside the prefix, and that every listed file exists
with the listed size. It returns each file with the S3 version it saw: the promote step
(``promote.py``) hashes exactly those versions and copies exactly those versions to
``artifacts/<cache key>/``, so nothing the job writes after this check can slip through.
Raises ``VerificationFailed`` with what is wrong.
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
from botocore.exceptions import ClientError

MANIFEST = "manifest.json"
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class VerificationFailed(Exception):
    """The artifacts are missing, incomplete or not the ones this execution compiled."""


def path_problem(path: Any) -> str | None:
    """Why ``path`` may not name a file of an artifact set (None: it may)."""
    if not isinstance(path, str) or not path:
        return f"{path!r}: not a file path"
    parts = path.split("/")
    if path.startswith("/") or path.endswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        return f"{path!r}: leaves the artifact directory (absolute, '.' or '..')"
    if path == MANIFEST:
        return f"{path!r}: the manifest does not list itself"
    if any(ord(c) < 32 for c in path):
        return f"{path!r}: control characters"
    return None


def check_entries(files: Any) -> list[str]:
    """Problems of the manifest's file list: paths, hashes, sizes, duplicates."""
    if not isinstance(files, list) or not files:
        return [f"{MANIFEST} lists no files"]
    problems, seen = [], set()
    for entry in files:
        if not isinstance(entry, dict):
            problems.append(f"{entry!r}: not a file entry")
            continue
        path = entry.get("path")
        problem = path_problem(path)
        if problem:
            problems.append(problem)
            continue
        if path in seen:
            problems.append(f"{path!r}: listed twice")
        seen.add(path)
        if not isinstance(entry.get("sha256"), str) or not SHA256.match(entry["sha256"]):
            problems.append(f"{path}: sha256 {entry.get('sha256')!r} is not 64 hex digits")
        size = entry.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            problems.append(f"{path}: size {size!r} is not a byte count")
    return problems


def _summary(problems: list[str]) -> str:
    return "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")


def verify(s3: Any, bucket: str, prefix: str, cache_key: str, expected: dict[str, str] | None = None) -> dict[str, Any]:
    """``prefix``: the run's staging prefix. ``expected``: the ``sdk``, ``image`` and ``engine``
    the manifest's ``neuron`` record must show."""
    try:
        response = s3.get_object(Bucket=bucket, Key=prefix + MANIFEST)
        body = response["Body"].read()
    except ClientError as err:
        raise VerificationFailed(f"s3://{bucket}/{prefix}{MANIFEST}: {err.response['Error']['Code']}") from None
    manifest_version = response.get("VersionId")
    if not manifest_version or manifest_version == "null":
        raise VerificationFailed(f"s3://{bucket}: not versioned; promotion copies the exact versions it checked")
    try:
        manifest = json.loads(body)
    except json.JSONDecodeError as err:
        raise VerificationFailed(f"{MANIFEST} is not JSON ({err.msg})") from None
    if not isinstance(manifest, dict):
        raise VerificationFailed(f"{MANIFEST} is not a JSON object")
    if manifest.get("cache_key") != cache_key:
        raise VerificationFailed(f"{MANIFEST} is for {manifest.get('cache_key')!r}, expected {cache_key!r}")
    neuron = manifest.get("neuron") or {}
    for field, wanted in sorted((expected or {}).items()):
        if neuron.get(field) != wanted:
            raise VerificationFailed(f"{MANIFEST} records {field} {neuron.get(field)!r}, this run compiles {wanted!r}")
    files = manifest.get("files")
    problems = check_entries(files)
    if problems:
        raise VerificationFailed(_summary(problems))
    checked = []
    for entry in files:
        try:
            head = s3.head_object(Bucket=bucket, Key=prefix + entry["path"])
        except ClientError:
            problems.append(f"{entry['path']}: missing")
            continue
        if head["ContentLength"] != entry["size"]:
            problems.append(f"{entry['path']}: {head['ContentLength']} bytes, manifest says {entry['size']}")
            continue
        checked.append(
            {"path": entry["path"], "sha256": entry["sha256"], "size": entry["size"], "versionId": head["VersionId"]}
        )
    if problems:
        raise VerificationFailed(_summary(problems))
    total = sum(f["size"] for f in checked)
    return {
        "files": checked,
        "manifestVersionId": manifest_version,
        "totalBytes": total,
        # DynamoDB numbers travel as strings through Step Functions' service integration.
        "totalBytesText": str(total),
        "compileSeconds": manifest.get("compile_seconds"),
        "compiler": manifest.get("compiler"),
        # Strings for DynamoDB; "unknown" where the image did not tell the job.
        "neuron": {
            "engine": str(neuron.get("engine") or "unknown"),
            "neuronxCc": str(neuron.get("neuronx_cc") or "unknown"),
            "runtime": str(neuron.get("runtime") or "unknown"),
        },
    }


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    expected = {"sdk": event["sdkVersion"], "image": event["image"], "engine": event["engine"]}
    return verify(boto3.client("s3"), event["bucket"], event["stagingPrefix"], event["cacheKey"], expected)
