"""app.py: the checks it runs before building anything."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import yaml

from neuron_platform import versions
from tests.conftest import DEFAULT_CONFIG, REPO


def test_app_refuses_an_incompatible_version_combination(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A versions.py edit that breaks a known combination stops synthesis with one line."""
    original = versions.check_compatibility

    def with_older_karpenter(**kwargs: str) -> list[str]:
        return original(karpenter="1.12.0", **kwargs)

    monkeypatch.setattr(versions, "check_compatibility", with_older_karpenter)
    module = runpy.run_path(str(REPO / "app.py"), run_name="not_main")
    assert module["main"]() == 2
    assert capsys.readouterr().err.strip() == "versions error: Kubernetes 1.36 needs Karpenter >= 1.13.0, got 1.12.0"


def test_app_refuses_a_pool_whose_ami_breaks_its_runtime(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The combination the platform shipped before the Neuron data: driver 2.29 under runtime < 2.33."""
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["pools"][0]["ami_release"] = "v20260714"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(config))
    module = runpy.run_path(str(REPO / "app.py"), run_name="not_main")
    module["main"].__globals__["DEFAULT_CONFIG"] = path  # as `cdk synth -c config=<path>` would choose it
    assert module["main"]() == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(
        f"config error: {path}: pools[0].ami_release: got 'v20260714'; its Neuron driver 2.29.0.0 breaks runtime "
        "2.30.51.0 of the serving image 0.13.0-neuronx-py312-sdk2.28.0-ubuntu24.04 (runtime-release-notes.rst:329:"
    )
