"""The real CLI path: `cdk synth` with no AWS credentials and no lookups."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

CDK = REPO / "node_modules" / ".bin" / "cdk"

pytestmark = pytest.mark.cli


def _cdk_synth(config: str, outdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", "--output", str(outdir), "-c", f"config={config}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("config", "stacks"),
    [
        ("config/examples/training-multinode.yaml", ["trn-train-network", "trn-train-cluster", "trn-train-operations"]),
        # Every optional stack, and the compile Lambda asset bundled in-process.
        (
            "config/examples/inference-small.yaml",
            [
                "inf-small-network",
                "inf-small-cluster",
                "inf-small-compile",
                "inf-small-serving",
                "inf-small-sagemaker",
                "inf-small-operations",
            ],
        ),
    ],
)
def test_cli_synth_without_credentials_has_no_missing_lookups(
    tmp_path: Path, clean_aws_env: dict[str, str], config: str, stacks: list[str]
) -> None:
    # make test turns the built-in CloudFormation validation on; the everyday synth skips it.
    result = _cdk_synth(config, tmp_path, clean_aws_env | {"CDK_VALIDATION": "true"})
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest.get("missing", []) == []
    assert sorted(p.name for p in tmp_path.glob("*.template.json")) == sorted(f"{s}.template.json" for s in stacks)
    # The built-in CloudFormation validation and cdk-nag both ran and passed.
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert {r["pluginName"] for r in report["pluginReports"]} == {"AwsSolutions", "CloudFormation Validate"}
    assert all(r["conclusion"] == "success" for r in report["pluginReports"])


def test_cli_synth_of_a_bad_config_prints_one_line_and_fails(tmp_path: Path, clean_aws_env: dict[str, str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "project: {name: neuron, region: us-east-1}\nnetwork: {zones: [us-east-1a, us-east-1b], nat_gateway: 1}\n"
    )
    result = _cdk_synth(str(bad), tmp_path / "out", clean_aws_env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("config error:")]
    assert ours == [
        f"config error: {bad}: network.nat_gateway: unknown key; allowed keys here: zones, vpc_cidr, "
        "private_subnet_prefix, public_subnet_prefix, nat_gateways, interface_endpoints, flow_log_retention_days, "
        "secondary_cidr, secondary_subnet_prefix, existing_vpc"
    ]
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_everyday_synth_skips_only_the_builtin_validation(tmp_path: Path, clean_aws_env: dict[str, str]) -> None:
    """cdk-nag still fails synthesis on every synth; the CloudFormation checks run in make test."""
    result = _cdk_synth("config/default.yaml", tmp_path, clean_aws_env)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert [r["pluginName"] for r in report["pluginReports"]] == ["AwsSolutions"]
