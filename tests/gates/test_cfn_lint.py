"""cfn-lint: zero errors on every synthesized template of every config."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import REPO, SynthesizedApp

CFN_LINT = REPO / ".venv" / "bin" / "cfn-lint"


def test_cfn_lint_reports_no_errors(synthesized: dict[str, SynthesizedApp]) -> None:
    templates = sorted(str(p) for app in synthesized.values() for p in app.outdir.glob("*.template.json"))
    assert len(templates) == sum(len(app.platform.stacks) for app in synthesized.values())
    result = subprocess.run(
        # W3005: the CDK adds DependsOn entries that are also implied by Ref/GetAtt.
        [str(CFN_LINT), "--non-zero-exit-code", "error", "--ignore-checks", "W3005", "--", *templates],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_gate_can_fail(tmp_path: Path) -> None:
    broken = tmp_path / "broken.template.json"
    broken.write_text(
        json.dumps({"Resources": {"Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": 10, "Bogus": True}}}})
    )
    result = subprocess.run(
        [str(CFN_LINT), "--non-zero-exit-code", "error", "--", str(broken)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "Bogus" in result.stdout
