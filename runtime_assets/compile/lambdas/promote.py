"""Step 5 of the compile pipeline: promote what the job staged, file by verified file.

Only this step's role may write ``artifacts/`` (its IAM policy, and a bucket policy that
denies every other principal); the compile job's roles write ``staging/`` and the Neuron
cache and nothing else. Two actions, called by the state machine:

- ``file`` (once per manifest entry, in a Map state): read the staged object at the exact
  version ``verify.py`` saw, compute its sha256 while streaming it, refuse it unless it is
  the manifest's, then copy that same version server-side to ``artifacts/<cache key>/``.
  Reading and copying one version makes the check and the copy see the same bytes.
- ``publish`` (after every file): remove objects under the artifact prefix the manifest
  does not list (left by an earlier failed run), copy the manifest, at the version checked,
  last (its presence means a complete, verified set), and delete the run's staging objects.

Environment: ``ARTIFACTS_PREFIX`` and ``STAGING_PREFIX`` (``artifacts/`` and ``staging/``).
Raises ``PromotionFailed`` with what is wrong.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from verify import MANIFEST, SHA256, path_problem

CHUNK = 8 * 1024 * 1024
# Server-side copies: one CopyObject up to 4 GiB, parallel part copies above.
COPY_CONFIG = TransferConfig(multipart_threshold=4 * 1024**3, multipart_chunksize=512 * 1024**2, max_concurrency=8)


class PromotionFailed(Exception):
    """A staged file is not what the manifest says, or the promotion could not finish."""


def _prefixes(event: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, str]:
    staging, artifacts = str(event["stagingPrefix"]), str(event["artifactsPrefix"])
    for name, value, root in (
        ("stagingPrefix", staging, env["STAGING_PREFIX"]),
        ("artifactsPrefix", artifacts, env["ARTIFACTS_PREFIX"]),
    ):
        rest = value.removeprefix(root)
        if not value.startswith(root) or not value.endswith("/") or path_problem(rest.rstrip("/")) is not None:
            raise PromotionFailed(f"{name}: got {value!r}; allowed: a key prefix under {root}")
    return staging, artifacts


def sha256_of_version(s3: Any, bucket: str, key: str, version: str) -> tuple[str, int]:
    """The sha256 and length of one object version, streamed (never held in memory)."""
    body = s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"]
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: body.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def promote_file(s3: Any, event: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    staging, artifacts = _prefixes(event, env)
    bucket, entry = str(event["bucket"]), event["file"]
    path, expected, size, version = entry["path"], entry["sha256"], entry["size"], entry["versionId"]
    problem = path_problem(path)
    if problem or not isinstance(expected, str) or not SHA256.match(expected):
        raise PromotionFailed(problem or f"{path}: sha256 {expected!r} is not 64 hex digits")
    actual, length = sha256_of_version(s3, bucket, staging + path, version)
    if (actual, length) != (expected, size):
        raise PromotionFailed(
            f"{path}: staged version {version} has sha256 {actual} ({length} bytes); the manifest says "
            f"{expected} ({size} bytes): not promoted"
        )
    source = {"Bucket": bucket, "Key": staging + path, "VersionId": version}
    s3.copy(source, bucket, artifacts + path, Config=COPY_CONFIG)
    head = s3.head_object(Bucket=bucket, Key=artifacts + path)
    if head["ContentLength"] != size:
        raise PromotionFailed(f"{path}: the promoted copy has {head['ContentLength']} bytes, expected {size}")
    return {"path": path, "sha256": expected, "size": size, "versionId": head.get("VersionId")}


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _delete(s3: Any, bucket: str, objects: list[dict[str, str]]) -> None:
    for start in range(0, len(objects), 1000):
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects[start : start + 1000], "Quiet": True})
        if response.get("Errors"):
            first = response["Errors"][0]
            raise PromotionFailed(f"cannot delete s3://{bucket}/{first['Key']}: {first.get('Code')}")


def publish(s3: Any, event: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    staging, artifacts = _prefixes(event, env)
    bucket, files = str(event["bucket"]), event["files"]
    listed = {artifacts + f["path"] for f in files}
    stale = [k for k in _keys(s3, bucket, artifacts) if k not in listed]
    _delete(s3, bucket, [{"Key": k} for k in stale])
    # Last: a manifest under artifacts/ means every file it lists was verified and copied.
    source = {"Bucket": bucket, "Key": staging + MANIFEST, "VersionId": str(event["manifestVersionId"])}
    s3.copy(source, bucket, artifacts + MANIFEST, Config=COPY_CONFIG)
    manifest_version = s3.head_object(Bucket=bucket, Key=artifacts + MANIFEST).get("VersionId")
    versions = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=staging)
    staged = [
        {"Key": v["Key"], "VersionId": v["VersionId"]}
        for page in versions
        for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
    ]
    _delete(s3, bucket, staged)
    return {"manifestVersionId": manifest_version, "removedStale": len(stale), "removedStaged": len(staged)}


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    s3 = boto3.client("s3")
    if event.get("action") == "file":
        return promote_file(s3, event, os.environ)
    if event.get("action") == "publish":
        return publish(s3, event, os.environ)
    raise PromotionFailed(f"action: got {event.get('action')!r}; allowed: file, publish")
