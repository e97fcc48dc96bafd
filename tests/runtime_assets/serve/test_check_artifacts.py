"""The serving container's artifact check: same SDK line, or no vLLM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.runtime_assets.compile.conftest import load

SCRIPT = REPO / "runtime_assets" / "serve" / "check_artifacts.py"
check = load(SCRIPT, "serve_check_artifacts")

RECORD = {"engine": "vllm-nxdi", "sdk": "2.28.0", "image": "r/n:t", "neuronx_cc": "2.23.6484.0"}
ENV = {
    "NEURON_PLATFORM_SDK": "2.28.0",
    "NEURON_PLATFORM_ENGINE": "vllm-nxdi",
    "NEURON_PLATFORM_NEURONX_CC": "2.23.6484.0",
}


def _artifacts(tmp_path: Path, **record: Any) -> Path:
    (tmp_path / "manifest.json").write_text(json.dumps({"cache_key": "k", "neuron": RECORD | record}))
    return tmp_path


def test_matching_artifacts_pass_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["check", str(_artifacts(tmp_path))], ENV, lambda: "2.23.6484.0") == 0
    assert capsys.readouterr().out.strip() == (
        "artifacts: ok: k compiled by vllm-nxdi on Neuron SDK 2.28.0 (neuronx-cc 2.23.6484.0)"
    )


@pytest.mark.parametrize(
    ("record", "installed", "expected"),
    [
        ({"sdk": "2.31.1"}, "2.23.6484.0", "Neuron SDK: compiled with 2.31.1, serving with 2.28.0"),
        ({"engine": "vllm-neuron"}, "2.23.6484.0", "engine: compiled with vllm-neuron, serving with vllm-nxdi"),
        ({}, "2.21.33363.0", "neuronx-cc (this image): compiled with 2.23.6484.0, serving with 2.21.33363.0"),
    ],
)
def test_artifacts_of_another_line_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], record: dict[str, str], installed: str, expected: str
) -> None:
    assert check.main(["check", str(_artifacts(tmp_path, **record))], ENV, lambda: installed) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("artifacts: refusing to serve k: ")
    assert expected in line
    assert line.endswith("compile submit --endpoint NAME).")


def test_a_missing_manifest_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["check", str(tmp_path)], ENV, lambda: None) == 2
    assert "cannot read" in capsys.readouterr().err


def test_it_runs_with_the_standard_library_only(tmp_path: Path) -> None:
    """As the serving container runs it: python3 check_artifacts.py DIR (no neuronx-cc here)."""
    result = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(_artifacts(tmp_path, sdk="2.27.1"))],
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Neuron SDK: compiled with 2.27.1, serving with 2.28.0" in result.stderr
