"""app.py: the checks it runs before building anything."""

from __future__ import annotations

import runpy

import pytest

from neuron_platform import versions
from tests.conftest import REPO


def test_app_refuses_an_incompatible_version_combination(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A versions.py edit that breaks a known combination stops synthesis with one line."""
    monkeypatch.setattr(versions, "COMPILE_SDK_VERSIONS", {"inf2": "2.30.0", "trn1": "2.31.1", "trn2": "2.32.0"})
    original = versions.check_artifact_compatibility

    def with_patched_defaults(**kwargs: object) -> list[str]:
        return original(compile_sdks=versions.COMPILE_SDK_VERSIONS, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(versions, "check_artifact_compatibility", with_patched_defaults)
    module = runpy.run_path(str(REPO / "app.py"), run_name="not_main")
    assert module["main"]() == 2
    assert (
        capsys.readouterr().err.strip()
        == "versions error: inf2: serving image runs SDK 2.31.1 but compiles use SDK 2.30.0"
    )


def test_app_refuses_an_ami_older_than_the_images_need(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    original = versions.check_driver_compatibility

    def with_older_ami(**kwargs: object) -> list[str]:
        return original(ami_release="v20260801", **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(versions, "check_driver_compatibility", with_older_ami)
    module = runpy.run_path(str(REPO / "app.py"), run_name="not_main")
    assert module["main"]() == 2
    assert "versions error: serving trn2: Neuron SDK 2.32.0 needs Neuron driver 2.30.2.0" in capsys.readouterr().err
