"""The promote step: only verified bytes reach artifacts/, exactly the versions that were hashed (moto S3)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import REPO
from tests.runtime_assets.compile.conftest import COMPILE, load

verify = load(COMPILE / "lambdas" / "verify.py", "compile_verify")
promote = load(COMPILE / "lambdas" / "promote.py", "compile_promote")
check = load(REPO / "runtime_assets" / "serve" / "check_artifacts.py", "serve_check_artifacts")

BUCKET = "artifacts-bucket"
STAGING = "staging/k/run-1/"
ARTIFACTS = "artifacts/k/"
ENV = {"STAGING_PREFIX": "staging/", "ARTIFACTS_PREFIX": "artifacts/"}
FILES = {"neuron/model.pt": b"PT" * 1000, "neuron/neuron_config.json": b"{}", "model/config.json": b'{"a": 1}'}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def _stage(s3: Any, files: dict[str, bytes], manifest_files: dict[str, bytes] | None = None) -> None:
    """What the compile job does: every file, then the manifest (of ``manifest_files``)."""
    for path, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=STAGING + path, Body=body)
    listed = files if manifest_files is None else manifest_files
    manifest = {
        "cache_key": "k",
        "neuron": {"engine": "vllm-nxdi", "sdk": "2.28.0", "image": "i", "neuronx_cc": "2.23.6484.0"},
        "files": [{"path": p, "sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for p, b in listed.items()],
    }
    s3.put_object(Bucket=BUCKET, Key=STAGING + "manifest.json", Body=json.dumps(manifest).encode())


def _body(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _keys(s3: Any, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def _item(entry: dict[str, Any]) -> dict[str, Any]:
    """One iteration of the PromoteFiles Map state."""
    return {"action": "file", "bucket": BUCKET, "stagingPrefix": STAGING, "artifactsPrefix": ARTIFACTS, "file": entry}


def _run_pipeline(s3: Any) -> dict[str, Any]:
    """Verify -> PromoteFiles (each file) -> Publish, as the state machine runs them."""
    verified = verify.verify(s3, BUCKET, STAGING, "k")
    promoted = [promote.promote_file(s3, _item(f), ENV) for f in verified["files"]]
    event = {
        "action": "publish",
        "bucket": BUCKET,
        "stagingPrefix": STAGING,
        "artifactsPrefix": ARTIFACTS,
        "manifestVersionId": verified["manifestVersionId"],
        "files": promoted,
    }
    return {"verified": verified, "promoted": promoted, "published": promote.publish(s3, event, ENV)}


def test_a_verified_run_is_promoted_and_staging_is_removed(s3: Any, tmp_path: Path) -> None:
    _stage(s3, FILES)
    staged_manifest = _body(s3, STAGING + "manifest.json")
    out = _run_pipeline(s3)
    assert _keys(s3, ARTIFACTS) == sorted([ARTIFACTS + p for p in FILES] + [ARTIFACTS + "manifest.json"])
    for path, body in FILES.items():
        assert _body(s3, ARTIFACTS + path) == body
    assert _body(s3, ARTIFACTS + "manifest.json") == staged_manifest
    # Every version of the run's staging objects is gone.
    assert s3.list_object_versions(Bucket=BUCKET, Prefix=STAGING).get("Versions") is None
    # The registry gets each promoted file with its version under artifacts/.
    by_path = {f["path"]: f for f in out["promoted"]}
    assert (
        by_path["neuron/model.pt"]["versionId"]
        == s3.head_object(Bucket=BUCKET, Key=ARTIFACTS + "neuron/model.pt")["VersionId"]
    )
    # What serving syncs passes serving's own check.
    local = tmp_path / "compiled"
    for key in _keys(s3, ARTIFACTS):
        target = local / key[len(ARTIFACTS) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_body(s3, key))
    assert check.main(["check", str(local)], {}, lambda: None) == 0


def test_a_file_whose_bytes_differ_from_the_manifest_is_not_promoted(s3: Any) -> None:
    """Issue 15: Verify used to compare sizes only. Same size, other bytes: refused, nothing promoted."""
    _stage(s3, FILES | {"neuron/model.pt": b"EV" * 1000}, manifest_files=FILES)
    verified = verify.verify(s3, BUCKET, STAGING, "k")  # sizes agree
    entry = next(f for f in verified["files"] if f["path"] == "neuron/model.pt")
    with pytest.raises(promote.PromotionFailed, match=r"neuron/model\.pt: staged version .* has sha256 .*not promoted"):
        promote.promote_file(s3, _item(entry), ENV)
    assert _keys(s3, ARTIFACTS) == []


def test_what_is_written_after_the_check_cannot_slip_through(s3: Any) -> None:
    """The job's role can still write staging after Verify read it: promotion hashes and copies the
    version Verify saw, so a later overwrite is never what lands in artifacts/."""
    _stage(s3, FILES)
    verified = verify.verify(s3, BUCKET, STAGING, "k")
    s3.put_object(Bucket=BUCKET, Key=STAGING + "neuron/model.pt", Body=b"EV" * 1000)  # after the check
    for entry in verified["files"]:
        promote.promote_file(s3, _item(entry), ENV)
    assert _body(s3, ARTIFACTS + "neuron/model.pt") == FILES["neuron/model.pt"]


def test_publish_removes_files_an_earlier_run_left_and_writes_the_manifest_last(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=ARTIFACTS + "neuron/stale.neff", Body=b"old")
    _stage(s3, FILES)
    calls: list[str] = []
    real_copy = s3.copy

    def copy(source: dict[str, str], bucket: str, key: str, **kwargs: Any) -> None:
        calls.append(key)
        real_copy(source, bucket, key, **kwargs)

    s3.copy = copy
    out = _run_pipeline(s3)
    assert calls[-1] == ARTIFACTS + "manifest.json"
    assert ARTIFACTS + "neuron/stale.neff" not in _keys(s3, ARTIFACTS)
    assert out["published"]["removedStale"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stagingPrefix": "artifacts/k/"}, "stagingPrefix: got 'artifacts/k/'; allowed: a key prefix under staging/"),
        (
            {"artifactsPrefix": "staging/x/"},
            "artifactsPrefix: got 'staging/x/'; allowed: a key prefix under artifacts/",
        ),
        ({"artifactsPrefix": "artifacts/../x/"}, "artifactsPrefix: got 'artifacts/../x/'"),
    ],
)
def test_promotion_stays_between_staging_and_artifacts(s3: Any, change: dict[str, str], message: str) -> None:
    _stage(s3, FILES)
    entry = verify.verify(s3, BUCKET, STAGING, "k")["files"][0]
    with pytest.raises(promote.PromotionFailed, match=message.replace(".", r"\.")):
        promote.promote_file(s3, _item(entry) | change, ENV)


def test_a_path_outside_the_prefix_is_refused_even_if_verify_were_bypassed(s3: Any) -> None:
    entry = {"path": "../other/model.pt", "sha256": "ab" * 32, "size": 1, "versionId": "v"}
    with pytest.raises(promote.PromotionFailed, match="leaves the artifact directory"):
        promote.promote_file(s3, _item(entry), ENV)


def test_unknown_actions_fail(s3: Any) -> None:
    with pytest.raises(promote.PromotionFailed, match="action: got 'copy'"):
        promote.handler({"action": "copy"}, None)
