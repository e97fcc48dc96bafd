"""The serving planner: table-driven plans, and every impossible spec with its message."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from neuron_platform import facts
from neuron_platform.__main__ import main
from neuron_platform.compile.cache_key import cache_key
from neuron_platform.serving.planner import PlanError, plan
from neuron_platform.serving.spec import ServingSpec

REVISION = "8afb486c1db24fe5011ec46dfbe5b5dccdb575c2"
LLAMA_8B = {"hf_id": "meta-llama/Meta-Llama-3-8B-Instruct", "revision": REVISION}
LLAMA_1B = {"hf_id": "meta-llama/Llama-3.2-1B-Instruct", "revision": REVISION}
LLAMA_70B = {"hf_id": "meta-llama/Meta-Llama-3-70B-Instruct", "revision": REVISION}
# An S3 model sized by its own architecture, with heads TP 24 divides.
CUSTOM_48_HEADS = {
    "model": {"s3_uri": "s3://my-models/custom-13b/"},
    "architecture": {"parameters_billion": 13, "layers": 40, "attention_heads": 48, "kv_heads": 8, "head_dim": 128},
}
INF2_POOL = ["inf2.xlarge", "inf2.8xlarge", "inf2.24xlarge", "inf2.48xlarge"]
BASE: dict[str, Any] = {
    "name": "llama",
    "backend": "eks",
    "pool": "inf2",
    "model": LLAMA_8B,
    "target": "inf2",
    "batch_size": 4,
    "sequence_length": 4096,
    "tensor_parallel_size": 8,
}


def spec(**changes: Any) -> ServingSpec:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return ServingSpec.model_validate(data)


PLANS: list[tuple[str, ServingSpec, list[str] | None, tuple[str, int, int, int]]] = [
    # (id, spec, pool types, (instance type, devices per replica, cores per replica, replicas per node))
    ("llama3-8b-tp8-three-per-inf2-48xl", spec(), INF2_POOL, ("inf2.48xlarge", 4, 8, 3)),
    (
        "tp24-whole-inf2-48xl",
        spec(tensor_parallel_size=24, **CUSTOM_48_HEADS),
        INF2_POOL,
        ("inf2.48xlarge", 12, 24, 1),
    ),
    ("llama3-1b-tp2-one-device", spec(tensor_parallel_size=2, model=LLAMA_1B), INF2_POOL, ("inf2.xlarge", 1, 2, 1)),
    ("pool-limits-the-choice", spec(), ["inf2.24xlarge"], ("inf2.24xlarge", 4, 8, 1)),
    (
        "llama3-70b-tp32-trn1",
        spec(model=LLAMA_70B, target="trn1", tensor_parallel_size=32, pool="trn1"),
        ["trn1.32xlarge"],
        ("trn1.32xlarge", 16, 32, 1),
    ),
    (
        "llama3-8b-tp16-two-per-trn1",
        spec(target="trn1", tensor_parallel_size=16, pool="trn1"),
        ["trn1.32xlarge"],
        ("trn1.32xlarge", 8, 16, 2),
    ),
    (
        "trn2-tp16-lnc2-four-devices",
        spec(target="trn2", tensor_parallel_size=16, pool="trn2"),
        ["trn2.48xlarge"],
        ("trn2.48xlarge", 4, 32, 4),
    ),
    (
        "sagemaker-one-copy-on-the-smallest-fit",
        spec(backend="sagemaker", pool=None),
        None,
        ("inf2.24xlarge", 4, 8, 1),
    ),
]


@pytest.mark.parametrize(
    ("serving", "pool", "expected"), [(s, p, e) for _, s, p, e in PLANS], ids=[i for i, *_ in PLANS]
)
def test_placements(serving: ServingSpec, pool: list[str] | None, expected: tuple[str, int, int, int]) -> None:
    placement = plan(serving, pool_types=pool).placement
    assert (
        placement.instance_type,
        placement.devices_per_replica,
        placement.cores_per_replica,
        placement.replicas_per_node,
    ) == expected


def test_llama3_8b_on_inf2_48xlarge_costs() -> None:
    result = plan(spec(replicas={"min": 3, "max": 7}), pool_types=INF2_POOL)
    assert (result.nodes_min, result.nodes_max) == (1, 3)
    assert result.usd_per_hour(3) == pytest.approx(12.98127)
    assert result.usd_per_hour(7) == pytest.approx(3 * 12.98127)
    assert result.tokens_per_second == pytest.approx(1226 / 3)
    # $12.98/h for three replicas at ~409 tokens/s each: $4.33 per replica-hour / 1.47M tokens.
    assert result.usd_per_million_tokens == pytest.approx(12.98127 / 3 / (1226 / 3 * 3600) * 1e6)
    # vLLM on NxD Inference loads the compiled directory and serves the model's own files offline.
    assert result.environment == {"NEURON_COMPILED_ARTIFACTS": "/models/compiled/neuron", "HF_HUB_OFFLINE": "1"}
    assert (result.engine, result.compile_placement) == ("vllm-nxdi", "cluster")


def test_spec_throughput_overrides_the_published_figure() -> None:
    assert plan(spec(tokens_per_second=500.0), pool_types=INF2_POOL).tokens_per_second == 500.0
    assert plan(spec(model={"s3_uri": "s3://my-models/custom/"}), pool_types=INF2_POOL).usd_per_million_tokens is None


def test_the_compile_spec_matches_the_shapes_and_backend_sdk() -> None:
    pinned = "123456789012.dkr.ecr.us-west-2.amazonaws.com/inf-small-neuron@sha256:" + "a" * 64
    eks = plan(spec(), pool_types=INF2_POOL, project="inf-small", compile_image=pinned)
    compile_spec = eks.compile_spec()
    assert compile_spec.shape_fields() == spec().shape_fields()
    # The compile image is built FROM the serving image with its tag, and pinned by digest.
    assert eks.serving_image.endswith(":" + eks.compile_image_tag)
    assert compile_spec.image == pinned
    assert compile_spec.sdk_version == eks.compile_sdk == "2.28.0"
    assert eks.cache_key() == cache_key(compile_spec.model_dump(mode="json", exclude={"architecture"}))
    sagemaker = plan(
        spec(backend="sagemaker", pool=None), project="inf-small", compile_image=pinned.replace("a" * 64, "b" * 64)
    )
    assert sagemaker.compile_sdk == "2.26.1"
    assert (sagemaker.engine, sagemaker.compile_placement) == ("optimum-neuron", "batch")
    assert sagemaker.cache_key() != eks.cache_key()
    assert sagemaker.instance_type == "ml.inf2.24xlarge"
    assert sagemaker.environment == {
        "SM_ON_MODEL": "/opt/ml/model",
        "SM_ON_BATCH_SIZE": "4",
        "SM_ON_SEQUENCE_LENGTH": "4096",
        "SM_ON_TENSOR_PARALLEL_SIZE": "8",
    }


IMPOSSIBLE: list[tuple[str, ServingSpec, list[str] | None, str]] = [
    (
        "model-does-not-fit",
        spec(tensor_parallel_size=1),
        INF2_POOL,
        "tensor_parallel_size: weights 15.0 GiB + KV cache 2.0 GiB do not fit in 14.4 GiB (TP 1 x 16 GiB x 0.9); "
        "raise TP or lower batch_size or sequence_length",
    ),
    (
        "tp-not-on-target",
        spec(tensor_parallel_size=16),
        INF2_POOL,
        "tensor_parallel_size: got 16; allowed on inf2: 1, 2, 4, 8, 24",
    ),
    (
        "more-devices-than-the-instance",
        spec(tensor_parallel_size=24, **CUSTOM_48_HEADS),
        ["inf2.24xlarge"],
        "tensor_parallel_size: got 24; inf2.24xlarge has 6 Neuron devices (12 cores); TP 24 needs 12",
    ),
    (
        "device-count-the-scheduler-cannot-place",
        spec(target="trn2", tensor_parallel_size=8, pool="trn2"),
        ["trn2.48xlarge"],
        "tensor_parallel_size: got 8; TP 8 needs 2 devices per replica on trn2.48xlarge; the Neuron scheduler "
        "places 1, 4, 8, 16",
    ),
    (
        "target-not-in-the-pool",
        spec(target="trn1", tensor_parallel_size=8),
        INF2_POOL,
        "target: got trn1; pool inf2 has no trn1 instance types",
    ),
    (
        "no-sagemaker-hosting-for-trn2",
        spec(backend="sagemaker", pool=None, target="trn2", tensor_parallel_size=16),
        None,
        "target: got trn2; SageMaker hosting has no trn2 instance types",
    ),
]


@pytest.mark.parametrize(
    ("serving", "pool", "message"), [(s, p, m) for _, s, p, m in IMPOSSIBLE], ids=[i for i, *_ in IMPOSSIBLE]
)
def test_impossible_specs_are_refused_with_one_line(serving: ServingSpec, pool: list[str] | None, message: str) -> None:
    with pytest.raises(PlanError) as err:
        plan(serving, pool_types=pool)
    assert str(err.value) == message


def test_seven_devices_never_place_on_trn1() -> None:
    placeable = facts.placeable_device_counts(facts.instance_type("trn1.32xlarge"))
    assert placeable == (1, 4, 8, 16)
    assert 7 not in placeable
    assert facts.placeable_device_counts(facts.instance_type("inf2.48xlarge")) == tuple(range(1, 13))


# --- the plan command --------------------------------------------------------------------------------


def test_plan_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE | {"replicas": {"min": 3, "max": 6}}))
    assert main(["plan", str(path), "--project", "inf-small"]) == 0
    rows = dict(
        line.split(None, 1) if "  " not in line else [p.strip() for p in line.split("  ", 1)]
        for line in capsys.readouterr().out.splitlines()
    )
    assert rows["instance type"] == "inf2.48xlarge"
    assert rows["replicas per node"] == "3"
    assert rows["per replica"] == "TP 8: 4 devices, 8 NeuronCores"
    assert rows["cost per hour"].startswith("$12.98 at min, $25.96 at max")
    assert rows["cost per 1M tokens"].startswith("$2.94")


def test_plan_refuses_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE | {"tensor_parallel_size": 16}))
    assert main(["plan", str(path)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"plan: {path}: tensor_parallel_size: got 16; allowed on inf2: 1, 2, 4, 8, 24"
    )


def test_plan_rejects_unknown_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE | {"replica": 3}))
    assert main(["plan", str(path)]) == 2
    assert "replica: unknown key; allowed keys here: model, architecture" in capsys.readouterr().err
