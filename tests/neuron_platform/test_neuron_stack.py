"""Per-pool Neuron stacks: derived from the data, and refused where the data says they break."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from neuron_platform.config import PlatformConfig, load_config, parse_config
from neuron_platform.facts import CompileTarget, Family
from neuron_platform.neuron_data import load, version_key
from neuron_platform.neuron_stack import (
    PURPOSE_ROLES,
    NeuronStackError,
    ami_problems,
    compile_toolchain,
    default_sdk,
    resolve_pool,
    resolve_sagemaker,
    serving_engine,
    supported_images,
    supported_sdks,
)
from tests.conftest import ALL_CONFIGS, DEFAULT_CONFIG, config_id


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=config_id)
def test_every_shipped_pool_runs_what_the_data_says_runs(path: Path) -> None:
    config = load_config(path)
    data = load()
    for pool in config.pools:
        stack = config.pool_stack(pool.name)
        assert data.ami(stack.ami.release, "1.36") == stack.ami  # the AMI is a row of the CSV
        assert stack.workloads, pool.name
        for workload in stack.workloads:
            assert data.image(workload.uri) == workload.image  # the image is a row of the DLC table
            assert workload.image.sdk == stack.sdk.version
            assert workload.runtime == data.release(stack.sdk.version).runtime
            assert data.image_problems(workload.image, stack.family) == []
        assert ami_problems(data, stack.ami, stack.workloads, stack.family) == []


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=config_id)
def test_every_shipped_endpoint_serves_an_image_of_its_pool_sdk(path: Path) -> None:
    config = load_config(path)
    for spec in config.serving.endpoints:
        plan = config.plan_endpoint(spec)
        if spec.backend == "eks":
            stack = config.pool_stack(str(spec.pool))
            assert plan.serving_image == stack.image("serving")
            assert plan.compile_sdk == stack.sdk.version
            assert plan.compiler == stack.sdk.compiler
        else:
            assert plan.serving_image in {i.uri for i in load().images_in("huggingface-vllm-inference-neuronx")}
        assert plan.compile_image_tag == plan.serving_image.rpartition(":")[2]


def test_the_combination_shipped_before_this_data_is_refused() -> None:
    """AMI v20260714 (driver 2.29) with the SDK 2.26.1 training image: nrt_init() fails."""
    with pytest.raises(NeuronStackError) as caught:
        resolve_pool(name="trn1-efa", family=Family.TRN1, purpose="training", sdk="2.26.1", ami_release="v20260714")
    assert caught.value.field == "ami_release"
    message = str(caught.value)
    assert "driver 2.29.0.0 breaks runtime 2.28.23.0" in message
    assert "runtime-release-notes.rst:329: Neuron Driver 2.29 requires Neuron Runtime Library 2.33 or later" in message
    assert message.endswith("allowed: v20260625, v20260618, v20260610")
    # The AMI the platform used to pin is not in the data at all.
    with pytest.raises(NeuronStackError, match=r"v20260903 for Kubernetes 1\.36 is not in eks-al2023"):
        resolve_pool(name="p", family=Family.TRN1, purpose="training", sdk="2.26.1", ami_release="v20260903")


def test_the_inf2_image_shipped_before_is_refused() -> None:
    """vLLM 0.16.0 on SDK 2.31.1 runs NxD Inference, which 2.29+ no longer supports on inf2."""
    with pytest.raises(NeuronStackError) as caught:
        resolve_pool(name="inf2", family=Family.INF2, purpose="inference", sdk="2.31.1")
    message = str(caught.value)
    assert caught.value.field == "neuron_sdk"
    assert "nxd-inference-release-notes.rst:61" in message
    assert "allowed: 2.28.0, 2.27.1, 2.26.1" in message


@pytest.mark.parametrize(
    ("family", "purpose"),
    [(Family.INF2, "inference"), (Family.TRN1, "inference"), (Family.TRN2, "inference"), (Family.TRN1, "training")],
)
def test_default_sdk_is_the_newest_release_with_supported_images(family: Family, purpose: str) -> None:
    data = load()
    chosen = default_sdk(family, purpose)
    for role in PURPOSE_ROLES[purpose]:
        assert supported_images(data, role, family, chosen)
    newer = [s for s in data.releases if version_key(s) > version_key(chosen)]
    for sdk in newer:
        assert not all(supported_images(data, role, family, sdk) for role in PURPOSE_ROLES[purpose]), sdk


def test_inf2_and_trn1_serving_stop_at_the_release_nxd_inference_pins() -> None:
    data = load()
    for family in (Family.INF2, Family.TRN1):
        assert version_key(supported_sdks(data, ("serving",), family)[0]) < version_key("2.29.0")
    assert version_key(default_sdk(Family.TRN2, "inference")) >= version_key("2.29.0")


def test_each_pool_gets_the_newest_ami_its_runtimes_run_on() -> None:
    trn2 = resolve_pool(name="trn2", family=Family.TRN2, purpose="inference")
    inf2 = resolve_pool(name="inf2", family=Family.INF2, purpose="inference")
    # Runtime 2.34 runs on driver 2.29; runtime 2.30 does not: pools of one cluster differ.
    assert (trn2.ami.release, inf2.ami.release) == ("v20260714", "v20260625")
    assert trn2.ami_alias == "al2023@v20260714"


def test_training_pools_get_the_examples_commit_of_their_nxd_training() -> None:
    pinned = resolve_pool(name="t", family=Family.TRN1, purpose="training", sdk="2.26.1")
    assert pinned.nxdt_version == "1.6.0"
    assert pinned.nxdt_examples is not None
    assert pinned.nxdt_examples.commit.startswith("9169aa03")
    inference = resolve_pool(name="i", family=Family.INF2, purpose="inference")
    assert (inference.nxdt_version, inference.nxdt_examples) == (None, None)


def test_engines_come_from_the_packages_the_data_lists() -> None:
    data = load()
    engines = {serving_engine(i) for i in supported_images(data, "serving", Family.TRN2)}
    assert engines == {"vllm-nxdi", "vllm-neuron"}
    assert serving_engine(resolve_sagemaker(CompileTarget.INF2).image) == "optimum-neuron"


def test_compile_toolchain_follows_the_image_tag() -> None:
    toolchain = compile_toolchain("0.13.0-neuronx-py312-sdk2.28.0-ubuntu24.04", "2.28.0")
    assert toolchain.as_input() == {"engine": "vllm-nxdi", "neuronxCc": "2.23.6484.0", "runtime": "2.30.51.0"}
    with pytest.raises(NeuronStackError, match=r"image tag .* is Neuron SDK 2\.28\.0; allowed: 2\.28\.0"):
        compile_toolchain("0.13.0-neuronx-py312-sdk2.28.0-ubuntu24.04", "2.31.1")
    with pytest.raises(NeuronStackError, match="carries the tag of a published Neuron serving image"):
        compile_toolchain("inf2-sdk2.31.1", "2.31.1")


# --- configuration: one line per problem -------------------------------------------------


def _config(**pool: Any) -> dict[str, Any]:
    base = load_config(DEFAULT_CONFIG).model_dump(mode="json", exclude_none=True)
    base["pools"] = [{"name": "p", "purpose": "inference", "instance_types": ["inf2.48xlarge"], **pool}]
    return base


def _lines(data: dict[str, Any]) -> list[str]:
    from neuron_platform.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.lines


def test_unknown_sdk_in_config_is_one_line() -> None:
    (line,) = _lines(_config(neuron_sdk="2.99.0"))
    assert line.startswith("pools[0].neuron_sdk: got '2.99.0'; Neuron SDK 2.99.0 is not in n2-manifest.json")
    assert "aws-neuron/aws-neuron-sdk src/helperscripts/n2-manifest.json" in line


def test_an_image_not_supported_for_the_family_is_one_line() -> None:
    (line,) = _lines(_config(neuron_sdk="2.32.0"))
    assert line.startswith("pools[0].neuron_sdk: got '2.32.0'; no pytorch-inference-vllm-neuronx image")
    assert "allowed: 2.28.0" in line


def test_an_ami_that_breaks_the_pool_is_one_line() -> None:
    (line,) = _lines(_config(ami_release="v20260714"))
    assert line.startswith("pools[0].ami_release: got 'v20260714'; its Neuron driver 2.29.0.0 breaks runtime")


def test_a_compatible_ami_pin_is_kept() -> None:
    config: PlatformConfig = parse_config(_config(ami_release="v20260610"))
    assert config.pool_stack("p").ami.release == "v20260610"


def test_an_endpoint_compiled_for_another_sdk_is_refused() -> None:
    data = load_config(REPO_INFERENCE).model_dump(mode="json", exclude_none=True)
    data["serving"]["endpoints"][0]["neuron_sdk"] = "2.27.1"
    (line,) = _lines(data)
    assert line.startswith("serving.endpoints[0]: neuron_sdk: got '2.27.1'; pool inf2-large runs Neuron SDK 2.28.0")
    data["serving"]["endpoints"][0]["neuron_sdk"] = "2.28.0"
    assert parse_config(data).plan_endpoint(parse_config(data).serving.endpoints[0]).compile_sdk == "2.28.0"


def test_a_sagemaker_endpoint_on_an_unpublished_sdk_is_refused() -> None:
    data = load_config(REPO_INFERENCE).model_dump(mode="json", exclude_none=True)
    data["serving"]["endpoints"][1]["neuron_sdk"] = "2.28.0"
    (line,) = _lines(data)
    assert line.startswith("serving.endpoints[1]: neuron_sdk: got '2.28.0'; no huggingface-vllm-inference-neuronx")
    assert line.endswith("allowed: 2.26.1")


REPO_INFERENCE = DEFAULT_CONFIG.parent / "examples" / "inference-small.yaml"
