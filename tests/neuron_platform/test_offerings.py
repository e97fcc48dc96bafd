"""Zone-level offering checks against EC2 (moto's offering data for us-east-1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from neuron_platform.__main__ import main
from neuron_platform.config import parse_config
from neuron_platform.offerings import check_offerings, offered_zones, zone_ids

# moto's us-east-1 data: trn1.32xlarge in 1b/1c/1f, trn1n.32xlarge in 1c, inf2.xlarge in 1a/1b/1c/1f.
BASE: dict[str, Any] = {
    "project": {"name": "neuron", "region": "us-east-1"},
    "network": {"zones": ["us-east-1a", "us-east-1c"]},
}


@pytest.fixture
def ec2(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.client("ec2", region_name="us-east-1")


def _config(*pools: dict[str, Any]) -> Any:
    return parse_config(BASE | {"pools": list(pools)})


EFA_POOL = {"name": "trn-efa", "purpose": "training", "instance_types": ["trn1.32xlarge"], "efa": True}


def test_efa_pool_in_a_zone_with_the_type_passes(ec2: Any) -> None:
    report = check_offerings(_config(EFA_POOL | {"zone": "us-east-1c"}), ec2)
    assert report.problems == []
    assert report.checked == [f"trn-efa: trn1.32xlarge in us-east-1c ({zone_ids(ec2)['us-east-1c']})"]


def test_efa_pool_in_a_zone_without_the_type_is_a_problem(ec2: Any) -> None:
    report = check_offerings(_config(EFA_POOL | {"zone": "us-east-1a"}), ec2)
    ids = zone_ids(ec2)
    (problem,) = report.problems
    assert problem == (
        f"pools[0].instance_types[0]: trn1.32xlarge is not offered in us-east-1a ({ids['us-east-1a']}) in this "
        f"account; offered in: us-east-1b ({ids['us-east-1b']}), us-east-1c ({ids['us-east-1c']}), "
        f"us-east-1f ({ids['us-east-1f']}) (set pools[0].zone to one of them that is in network.zones)"
    )


def test_multi_zone_pool_warns_for_zones_without_the_type(ec2: Any) -> None:
    pool = {"name": "trn", "purpose": "training", "instance_types": ["trn1.32xlarge"]}
    report = check_offerings(_config(pool), ec2)
    assert report.problems == []
    (warning,) = report.warnings
    assert "is not offered in us-east-1a" in warning
    assert "Karpenter launches it in us-east-1c" in warning


def test_type_in_none_of_the_zones_is_a_problem(ec2: Any) -> None:
    pool = {"name": "trn1n", "purpose": "training", "instance_types": ["trn1n.32xlarge"]}
    config = parse_config(BASE | {"network": {"zones": ["us-east-1a", "us-east-1b"]}, "pools": [pool]})
    (problem,) = check_offerings(config, ec2).problems
    assert "offered in none of network.zones" in problem


def test_offerings_follow_pagination() -> None:
    class Paged:
        def __init__(self) -> None:
            self.tokens: list[Any] = []

        def describe_instance_type_offerings(self, **kwargs: Any) -> dict[str, Any]:
            self.tokens.append(kwargs.get("NextToken"))
            if "NextToken" not in kwargs:
                return {"InstanceTypeOfferings": [{"InstanceType": "t", "Location": "z1"}], "NextToken": "n"}
            return {"InstanceTypeOfferings": [{"InstanceType": "t", "Location": "z2"}]}

        def describe_availability_zones(self, **kwargs: Any) -> dict[str, Any]:
            return {"AvailabilityZones": []}

    client = Paged()
    assert offered_zones(client, ["t"]) == {"t": {"z1", "z2"}}
    assert client.tokens == [None, "n"]


def test_cli_exit_codes_and_lines(ec2: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(BASE | {"pools": [EFA_POOL | {"zone": "us-east-1c"}]}))
    assert main(["config", "check-offerings", str(good)]) == 0
    assert capsys.readouterr().out.startswith("ok: trn-efa: trn1.32xlarge in us-east-1c")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(BASE | {"pools": [EFA_POOL | {"zone": "us-east-1a"}]}))
    assert main(["config", "check-offerings", str(bad)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"offering error: {bad}: pools[0].instance_types[0]: trn1.32xlarge is not offered")


def test_cli_without_credentials_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE | {"pools": [EFA_POOL | {"zone": "us-east-1a"}]}))
    assert main(["config", "check-offerings", str(path)]) == 2  # the user's to fix: docs/cli.md exit codes
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        "config check-offerings: no AWS credentials: pass --profile NAME, set AWS_PROFILE, or run 'aws configure' / "
        "'aws sso login'"
    )
