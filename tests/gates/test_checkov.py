"""checkov (offline) on every synthesized template: zero failed checks, every skip justified.

checkov lives in its own virtualenv (.venv-tools): installed next to aws-cdk-lib,
pip resolves it down to an old release.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, SynthesizedApp

CHECKOV = REPO / ".venv-tools" / "bin" / "checkov"


def _scan(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", "cloudformation", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    data = json.loads(result.stdout)
    reports = data if isinstance(data, list) else [data]
    return reports


@pytest.fixture(scope="module")
def scans(
    synthesized: dict[str, SynthesizedApp], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} missing: run `make bootstrap`")
    # One scan over a folder of all templates: checkov start-up costs seconds.
    folder = tmp_path_factory.mktemp("checkov")
    for app in synthesized.values():
        for template in app.outdir.glob("*.template.json"):
            (folder / f"{app.name}--{template.name}").write_text(template.read_text())
    (report,) = [r for r in _scan(folder) if r.get("check_type") == "cloudformation"]
    return {"all": report}


def test_no_failed_checks(scans: dict[str, dict[str, Any]]) -> None:
    report = scans["all"]
    failed = [(c["check_id"], c["file_path"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 0


def test_every_skip_is_justified(scans: dict[str, dict[str, Any]]) -> None:
    skipped = scans["all"]["results"]["skipped_checks"]
    assert skipped, "expected the documented skips on the CDK's default-SG handler"
    for check in skipped:
        comment = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(comment) >= 40, (check["check_id"], check["resource"], comment)


def test_checkov_gate_can_fail(tmp_path: Path) -> None:
    (tmp_path / "bad.template.json").write_text(
        json.dumps({"Resources": {"Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {}}}})
    )
    (report,) = _scan(tmp_path)
    failed = {c["check_id"] for c in report["results"]["failed_checks"]}
    assert {"CKV_AWS_66", "CKV_AWS_158"} <= failed  # no retention, no KMS key
