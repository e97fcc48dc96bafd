"""Step 4 of the compile pipeline: are the artifacts the job reported really in S3?

The compile job uploads every file, then ``manifest.json`` last (its presence means the
upload finished). This handler reads the manifest, checks it belongs to this cache key
and records the SDK, image and engine this execution asked for (artifacts load only
under the SDK line that compiled them), and checks every listed file exists with the
listed size. It returns the file list and the toolchain the registry records. Raises
``VerificationFailed`` with what is wrong.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import ClientError

MANIFEST = "manifest.json"


class VerificationFailed(Exception):
    """The artifacts are missing, incomplete or not the ones this execution compiled."""


def verify(s3: Any, bucket: str, prefix: str, cache_key: str, expected: dict[str, str] | None = None) -> dict[str, Any]:
    """``expected``: the ``sdk``, ``image`` and ``engine`` the manifest's ``neuron`` record must show."""
    try:
        body = s3.get_object(Bucket=bucket, Key=prefix + MANIFEST)["Body"].read()
    except ClientError as err:
        raise VerificationFailed(f"s3://{bucket}/{prefix}{MANIFEST}: {err.response['Error']['Code']}") from None
    try:
        manifest = json.loads(body)
    except json.JSONDecodeError as err:
        raise VerificationFailed(f"{MANIFEST} is not JSON ({err.msg})") from None
    if manifest.get("cache_key") != cache_key:
        raise VerificationFailed(f"{MANIFEST} is for {manifest.get('cache_key')!r}, expected {cache_key!r}")
    neuron = manifest.get("neuron") or {}
    for field, wanted in sorted((expected or {}).items()):
        if neuron.get(field) != wanted:
            raise VerificationFailed(f"{MANIFEST} records {field} {neuron.get(field)!r}, this run compiles {wanted!r}")
    files = manifest.get("files") or []
    if not files:
        raise VerificationFailed(f"{MANIFEST} lists no files")
    problems = []
    for entry in files:
        try:
            head = s3.head_object(Bucket=bucket, Key=prefix + entry["path"])
        except ClientError:
            problems.append(f"{entry['path']}: missing")
            continue
        if head["ContentLength"] != entry["size"]:
            problems.append(f"{entry['path']}: {head['ContentLength']} bytes, manifest says {entry['size']}")
    if problems:
        raise VerificationFailed(
            "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        )
    return {
        "files": [{"path": f["path"], "sha256": f["sha256"], "size": f["size"]} for f in files],
        "totalBytes": sum(f["size"] for f in files),
        # DynamoDB numbers travel as strings through Step Functions' service integration.
        "totalBytesText": str(sum(f["size"] for f in files)),
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
    return verify(boto3.client("s3"), event["bucket"], event["artifactsPrefix"], event["cacheKey"], expected)
