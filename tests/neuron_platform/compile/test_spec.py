"""Compile specs: good ones load, impossible ones get one exact line each."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from neuron_platform import facts
from neuron_platform.compile.spec import estimate_memory, load_spec, memory_per_rank_gib, parse_spec, smallest_machine
from neuron_platform.config import ConfigError

REVISION = "8afb486c1db24fe5011ec46dfbe5b5dccdb575c2"
BASE: dict[str, Any] = {
    "model": {"hf_id": "meta-llama/Meta-Llama-3-8B-Instruct", "revision": REVISION},
    "target": "inf2",
    "batch_size": 4,
    "sequence_length": 4096,
    "tensor_parallel_size": 8,
    "sdk_version": "2.26.1",
    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/neuron-neuron@sha256:" + "1" * 64,
}
MACHINES = ["r7i.4xlarge", "r7i.8xlarge", "r7i.16xlarge"]


def spec(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def test_llama3_8b_tp8_on_inf2_fits() -> None:
    loaded = parse_spec(BASE, compile_machines=MACHINES)
    arch = loaded.resolved_architecture()
    assert arch is not None
    estimate = estimate_memory(loaded, arch)
    assert estimate.weights_gib == pytest.approx(14.96, abs=0.01)  # 8.03e9 x 2 bytes
    assert estimate.kv_cache_gib == pytest.approx(2.0, abs=0.01)  # 2 x 32 x 8 x 128 x 2 B x 4096 x 4
    assert estimate.device_budget_gib == pytest.approx(115.2)  # 8 x 16 GiB x 0.9
    assert estimate.compile_host_gib == 61
    machine = smallest_machine(estimate.compile_host_gib, MACHINES)
    assert machine is not None
    assert machine.name == "r7i.4xlarge"


def test_memory_per_rank_follows_the_target() -> None:
    assert memory_per_rank_gib(facts.CompileTarget.INF2) == 16
    assert memory_per_rank_gib(facts.CompileTarget.TRN1) == 16
    assert memory_per_rank_gib(facts.CompileTarget.TRN2) == 24  # 96 GiB per device, 4 logical cores at LNC=2


BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "tp-not-on-target",
        spec(tensor_parallel_size=16),
        "tensor_parallel_size: got 16; allowed on inf2: 1, 2, 4, 8, 24",
    ),
    (
        "heads-not-divisible",
        spec(tensor_parallel_size=24),
        "tensor_parallel_size: got 24; meta-llama/Meta-Llama-3-8B-Instruct has 32 attention heads, which must "
        "divide evenly (allowed: 1, 2, 4, 8)",
    ),
    (
        "weights-do-not-fit",
        spec(tensor_parallel_size=1),
        "tensor_parallel_size: weights 15.0 GiB + KV cache 2.0 GiB do not fit in 14.4 GiB (TP 1 x 16 GiB x 0.9); "
        "raise TP or lower batch_size or sequence_length",
    ),
    (
        "kv-cache-too-big",
        spec(batch_size=64, sequence_length=32768),
        "tensor_parallel_size: weights 15.0 GiB + KV cache 256.0 GiB do not fit in 115.2 GiB (TP 8 x 16 GiB x 0.9); "
        "raise TP or lower batch_size or sequence_length",
    ),
    (
        "moving-revision",
        spec(model={"hf_id": "a/b", "revision": "main"}),
        "model: revision: got 'main'; allowed: a 40-hex commit sha or a version tag (a branch like main moves, so the "
        "cache key would lie)",
    ),
    (
        "two-sources",
        spec(model={"hf_id": "a/b", "revision": REVISION, "s3_uri": "s3://my-models/llama/"}),
        "model: give exactly one of hf_id (with revision) or s3_uri",
    ),
    (
        "revision-with-s3",
        spec(model={"s3_uri": "s3://my-models/llama/", "revision": "v1"}),
        "model: revision: only applies to hf_id; version S3 sources by their prefix",
    ),
    (
        "latest-image",
        spec(image="public.ecr.aws/neuron/compile:latest"),
        "image: got 'public.ecr.aws/neuron/compile:latest'; allowed: an image of the compile stack's ECR repository "
        "by digest, <account>.dkr.ecr.<region>.amazonaws.com/<project>-neuron@sha256:<64 hex digits> "
        "(make compile-image prints it)",
    ),
    (
        "tagged-image",  # a tag can be re-pushed; only a digest names one image
        spec(image="123456789012.dkr.ecr.us-east-1.amazonaws.com/neuron-neuron:0.13.0"),
        "image: got '123456789012.dkr.ecr.us-east-1.amazonaws.com/neuron-neuron:0.13.0'; allowed: an image of the "
        "compile stack's ECR repository by digest, <account>.dkr.ecr.<region>.amazonaws.com/<project>-neuron@sha256:"
        "<64 hex digits> (make compile-image prints it)",
    ),
    ("sdk-not-a-release", spec(sdk_version="x"), "sdk_version: got 'x'; allowed: a Neuron SDK release like 2.26.1"),
    ("batch-out-of-range", spec(batch_size=0), "batch_size: got 0; allowed: an integer from 1 to 256"),
    (
        "shell-in-flag",
        spec(compiler_flags=["--optlevel=2; rm -rf /"]),
        "compiler_flags: got '--optlevel=2; rm -rf /'; allowed: flags like --optlevel=2 (letters, digits, -, =, ., :, /)",
    ),
    (
        "unknown-key",
        spec(shapes={}),
        "shapes: unknown key; allowed keys here: model, architecture, task, target, batch_size, sequence_length, "
        "tensor_parallel_size, dtype, compiler_flags, sdk_version, image",
    ),
    ("string-number", spec(batch_size="4"), "batch_size: got '4' (string); expected an integer"),
    ("bad-target", spec(target="inf1"), "target: got 'inf1'; allowed: inf2, trn1, trn2"),
]


@pytest.mark.parametrize(("data", "expected"), [(d, e) for _, d, e in BAD], ids=[i for i, _, _ in BAD])
def test_bad_specs_get_one_exact_line(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_spec(data, compile_machines=MACHINES)
    assert err.value.lines == [expected]


def test_70b_compile_needs_a_large_machine() -> None:
    data = spec(
        model={"hf_id": "meta-llama/Meta-Llama-3-70B-Instruct", "revision": REVISION},
        target="trn1",
        tensor_parallel_size=32,
    )
    with pytest.raises(ConfigError) as err:
        parse_spec(data, compile_machines=["r7i.4xlarge", "r7i.12xlarge"])
    assert err.value.lines == [
        "model: compiling needs about 411 GiB of host memory; the largest compile machine (r7i.12xlarge) has "
        "384 GiB; add a larger type to compile.instance_types"
    ]
    loaded = parse_spec(data, compile_machines=MACHINES)  # r7i.16xlarge has 512 GiB
    machine = smallest_machine(411, MACHINES)
    assert machine is not None
    assert machine.name == "r7i.16xlarge"
    assert loaded.tensor_parallel_size == 32


def test_unknown_model_needs_no_architecture_but_uses_one_when_given() -> None:
    unknown = spec(model={"s3_uri": "s3://my-models/custom-7b/"})
    assert parse_spec(unknown).resolved_architecture() is None
    sized = spec(
        model={"s3_uri": "s3://my-models/custom-7b/"},
        architecture={"parameters_billion": 7, "layers": 32, "attention_heads": 28, "kv_heads": 4, "head_dim": 128},
    )
    with pytest.raises(ConfigError, match="has 28 attention heads"):
        parse_spec(sized)


def test_load_spec_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert load_spec(path).batch_size == 4
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError) as err:
        load_spec(tmp_path / "empty.yaml")
    assert err.value.lines[0].startswith("file is empty; expected a mapping with keys: model, architecture, task")


def test_committed_example_specs_are_valid_for_the_example_config() -> None:
    from neuron_platform.compile.spec_rules import compile_image_problems
    from neuron_platform.config import load_config
    from tests.conftest import REPO

    config = load_config(REPO / "config" / "examples" / "inference-small.yaml")
    specs = sorted((REPO / "specs").glob("*.yaml"))
    assert specs
    for path in specs:
        loaded = load_spec(path, compile_machines=config.compile.instance_types)
        repository = f"{config.project.name}-neuron"
        assert compile_image_problems(loaded.image, repository_name=repository, region=config.project.region) == []


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/compile:inf2-sdk2.31.1", "inf2-sdk2.31.1"),
        ("registry.example.com:5000/team/compile:v1", "v1"),
        ("public.ecr.aws/neuron/compile@sha256:" + "a" * 64, None),
        ("registry.example.com:5000/team/compile", None),
    ],
)
def test_image_tags(image: str, tag: str | None) -> None:
    from neuron_platform.compile.spec import image_tag

    assert image_tag(image) == tag


def test_the_example_spec_is_what_the_sagemaker_endpoint_loads() -> None:
    """specs/llama3-8b-inf2-tp8.yaml compiles (on Batch, with optimum-neuron) exactly the
    artifacts the example config's SageMaker endpoint points at."""
    from neuron_platform.compile.spec import load_spec
    from neuron_platform.config import load_config
    from tests.conftest import REPO

    spec = load_spec(REPO / "specs" / "llama3-8b-inf2-tp8.yaml")
    config = load_config(REPO / "config" / "examples" / "inference-small.yaml")
    endpoint = config.endpoint("llama3-8b-sm")
    assert endpoint is not None
    served = config.plan_endpoint(endpoint)
    assert served.engine == "optimum-neuron"
    assert spec.cache_key() == served.cache_key()
