"""The Neuron matrix: printed by `versions`, committed in docs/neuron-stack.md."""

from __future__ import annotations

import pytest

from neuron_platform.__main__ import main
from neuron_platform.config import load_config
from neuron_platform.neuron_matrix import matrix
from tests.conftest import REPO
from tests.neuron_matrix_docs import DOC, current


def test_the_committed_matrix_is_current() -> None:
    assert DOC.read_text() == current(), "regenerate with: make neuron-matrix"


def test_the_matrix_lists_every_pool_and_sagemaker_endpoint() -> None:
    config = load_config(REPO / "config" / "examples" / "inference-small.yaml")
    rows = matrix(config)
    assert [r.where for r in rows] == ["pool inf2-serving", "pool inf2-large", "endpoint llama3-8b-sm (sagemaker)"]
    assert all(r.verdict.startswith(("runs", "SageMaker")) for r in rows)
    assert rows[0].role == "serving+compile"


def test_versions_prints_the_matrix_and_the_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["versions", "--config", str(REPO / "config" / "examples" / "existing-vpc.yaml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["where", "family", "Neuron"]
    serving = next(line for line in out if line.startswith("pool trn2-serving"))
    assert "v20260714" in serving  # runtime 2.34 runs on driver 2.29...
    training = next(line for line in out if line.startswith("pool trn2-efa"))
    assert "v20260625" in training  # ...runtime 2.32 does not: one cluster, two AMIs
    assert (
        "rule: runtime-release-notes.rst:329: Neuron Driver 2.29 requires Neuron Runtime Library 2.33 or later" in out
    )


@pytest.mark.parametrize(
    ("args", "value"),
    [
        (["--pool", "trn1-efa", "--get", "nxdt-examples-ref"], "9169aa03f39efd4eb02da63891a7ed98defb1714"),
        (["--pool", "trn1-efa", "--get", "ami"], "v20260625"),
        (
            ["--pool", "trn1-efa", "--get", "training-image"],
            "public.ecr.aws/neuron/pytorch-training-neuronx:2.8.0-neuronx-py311-sdk2.26.1-ubuntu22.04",
        ),
    ],
)
def test_versions_get_prints_one_value_for_the_makefile(
    capsys: pytest.CaptureFixture[str], args: list[str], value: str
) -> None:
    config = str(REPO / "config" / "examples" / "training-multinode.yaml")
    assert main(["versions", "--config", config, *args]) == 0
    assert capsys.readouterr().out.strip() == value


def test_versions_get_says_what_a_pool_lacks(capsys: pytest.CaptureFixture[str]) -> None:
    config = str(REPO / "config" / "examples" / "training-multinode.yaml")
    assert main(["versions", "--config", config, "--pool", "trn1-dev", "--get", "nxdt-examples-ref"]) == 2
    assert capsys.readouterr().err.strip() == (
        "versions: --get: pool trn1-dev has no 'nxdt-examples-ref'; it has: sdk, ami, driver, training-image"
    )


def test_endpoint_values_for_the_compile_image(capsys: pytest.CaptureFixture[str]) -> None:
    config = str(REPO / "config" / "examples" / "inference-small.yaml")
    assert main(["versions", "--config", config, "--endpoint", "llama3-8b-sm", "--get", "base-image"]) == 0
    assert capsys.readouterr().out.strip() == (
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/huggingface-vllm-inference-neuronx:"
        "0.11.0-optimum0.4.5-neuronx-py310-sdk2.26.1-ubuntu22.04"
    )
