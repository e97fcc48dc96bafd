"""The serving container's artifact check: the verified bytes of its own SDK line, or no vLLM."""

from __future__ import annotations

import hashlib
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

RECORD = {"engine": "vllm-nxdi", "sdk": "2.28.0", "image": "r/n@sha256:" + "a" * 64, "neuronx_cc": "2.23.6484.0"}
ENV = {
    "NEURON_PLATFORM_SDK": "2.28.0",
    "NEURON_PLATFORM_ENGINE": "vllm-nxdi",
    "NEURON_PLATFORM_NEURONX_CC": "2.23.6484.0",
}
FILES = {"neuron/model.pt": b"PT" * 500, "neuron/neuron_config.json": b"{}", "model/config.json": b'{"a": 1}'}


def _artifacts(tmp_path: Path, files: dict[str, bytes] | None = None, **record: Any) -> Path:
    """A synced artifact directory: the files and the manifest that lists them."""
    files = FILES if files is None else files
    for path, body in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(body)
    listed = [{"path": p, "sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for p, b in files.items()]
    (tmp_path / "manifest.json").write_text(json.dumps({"cache_key": "k", "neuron": RECORD | record, "files": listed}))
    return tmp_path


def test_matching_artifacts_pass_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["check", str(_artifacts(tmp_path))], ENV, lambda: "2.23.6484.0") == 0
    assert capsys.readouterr().out.strip() == (
        "artifacts: ok: k compiled by vllm-nxdi on Neuron SDK 2.28.0 (neuronx-cc 2.23.6484.0); 3 files match their "
        "sha256"
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


def test_the_manifest_must_be_the_endpoints_cache_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = ENV | {"NEURON_PLATFORM_CACHE_KEY": "other-key"}
    assert check.main(["check", str(_artifacts(tmp_path))], env, lambda: None) == 1
    assert "cache key: compiled with k, serving with other-key" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        # Issue 15: serving used to load whatever the bucket held. Same size, other bytes:
        (lambda d: (d / "neuron/model.pt").write_bytes(b"EV" * 500), "neuron/model.pt: sha256 differs"),
        (lambda d: (d / "neuron/model.pt").write_bytes(b"PT"), "neuron/model.pt: 2 bytes, the manifest says 1000"),
        (lambda d: (d / "model/config.json").unlink(), "model/config.json: missing"),
        (lambda d: (d / "neuron/extra.py").write_text("import os"), "neuron/extra.py: not in the manifest"),
    ],
)
def test_files_that_are_not_the_verified_ones_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tamper: Any, expected: str
) -> None:
    directory = _artifacts(tmp_path)
    tamper(directory)
    assert check.main(["check", str(directory)], ENV, lambda: "2.23.6484.0") == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("artifacts: refusing to serve k: the files are not the ones the pipeline verified: ")
    assert expected in line


@pytest.mark.parametrize("path", ["../outside.bin", "/etc/hostname", "a/../../b"])
def test_a_manifest_cannot_point_outside_the_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    directory = _artifacts(tmp_path / "compiled")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"].append({"path": path, "sha256": "ab" * 32, "size": 1})
    (directory / "manifest.json").write_text(json.dumps(manifest))
    assert check.main(["check", str(directory)], ENV, lambda: None) == 1
    assert "not a path inside the artifacts" in capsys.readouterr().err


def test_a_manifest_without_files_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["check", str(_artifacts(tmp_path, files={}))], ENV, lambda: None) == 1
    assert "the manifest lists no files" in capsys.readouterr().err


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
