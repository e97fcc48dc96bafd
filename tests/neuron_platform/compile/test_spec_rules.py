"""One set of spec rules: the CLI's model and the pipeline's Validate step say the same thing."""

from __future__ import annotations

import copy
import importlib
import sys
from typing import Any

import pytest

from neuron_platform import facts
from neuron_platform.compile import spec_rules
from neuron_platform.compile.spec import parse_spec
from neuron_platform.config import ConfigError
from tests.runtime_assets.compile.conftest import COMPILE, load

sys.modules["cache_key"] = importlib.import_module("neuron_platform.compile.cache_key")
sys.modules["spec_rules"] = spec_rules
validate = load(COMPILE / "lambdas" / "validate.py", "compile_validate")

REPOSITORY = "123456789012.dkr.ecr.us-west-2.amazonaws.com/inf-small-neuron"
GOOD: dict[str, Any] = {
    "model": {"hf_id": "meta-llama/Meta-Llama-3-8B-Instruct", "revision": "8afb486c1db24fe5011ec46dfbe5b5dccdb575c2"},
    "task": "text-generation",
    "target": "inf2",
    "batch_size": 4,
    "sequence_length": 4096,
    "tensor_parallel_size": 8,
    "dtype": "bfloat16",
    "compiler_flags": [],
    "sdk_version": "2.26.1",
    "image": f"{REPOSITORY}@sha256:{'a' * 64}",
}


def spec(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    data.update(changes)
    return data


BAD: list[tuple[str, dict[str, Any]]] = [
    ("foreign-image", spec(image="docker.io/attacker/anything:1")),
    ("tagged-image", spec(image=f"{REPOSITORY}:0.13.0")),
    ("short-digest", spec(image=f"{REPOSITORY}@sha256:abc")),
    ("moving-revision", spec(model={"hf_id": "a/b", "revision": "main"})),
    ("no-revision", spec(model={"hf_id": "a/b"})),
    ("two-sources", spec(model={"hf_id": "a/b", "revision": "1", "s3_uri": "s3://bucket/p/"})),
    ("revision-with-s3", spec(model={"s3_uri": "s3://bucket/p/", "revision": "1"})),
    ("bad-hf-id", spec(model={"hf_id": "no-slash", "revision": "1"})),
    ("s3-dot-dot", spec(model={"s3_uri": "s3://bucket/a/../b/"})),
    ("sdk", spec(sdk_version="x")),
    ("target", spec(target="inf1")),
    ("task", spec(task="summarization")),
    ("dtype", spec(dtype="float32")),
    ("batch", spec(batch_size=0)),
    ("sequence", spec(sequence_length=131073)),
    ("tp", spec(tensor_parallel_size=129)),
    ("flag", spec(compiler_flags=["--optlevel=2; rm -rf /"])),
]


@pytest.mark.parametrize("data", [d for _, d in BAD], ids=[i for i, _ in BAD])
def test_the_cli_and_the_pipeline_refuse_with_the_same_line(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as cli:
        parse_spec(data)
    lambda_lines = validate.check(data)
    assert lambda_lines == cli.value.lines
    assert len(lambda_lines) == 1


def test_a_good_spec_passes_both() -> None:
    parse_spec(GOOD)
    assert validate.check(GOOD, REPOSITORY) == []


def test_the_pipeline_also_holds_the_image_to_its_own_repository() -> None:
    other = spec(image=f"210987654321.dkr.ecr.us-west-2.amazonaws.com/inf-small-neuron@sha256:{'a' * 64}")
    parse_spec(other)  # well-formed: the CLI does not know the deployed repository ...
    (line,) = validate.check(other, REPOSITORY)  # ... the pipeline does
    assert line.endswith(f"allowed: {REPOSITORY}@sha256:<64 hex digits> (this pipeline's repository)")


def test_the_pipeline_checks_types_the_model_checks() -> None:
    lines = validate.check(spec(batch_size="4", model="meta-llama/x", compiler_flags="--x", extra=1))
    assert lines == [
        "extra: unknown key; allowed keys here: model, task, target, batch_size, sequence_length, "
        "tensor_parallel_size, dtype, compiler_flags, sdk_version, image",
        "model: got 'meta-llama/x' (string); expected a mapping",
        "batch_size: got '4' (string); expected an integer",
        "compiler_flags: got '--x'; expected a list of strings",
    ]
    assert validate.check([]) == ["spec: got a list; expected a mapping"]


def test_the_targets_are_the_facts_targets() -> None:
    assert tuple(t.value for t in facts.CompileTarget) == spec_rules.TARGETS


@pytest.mark.parametrize(
    ("image", "problems"),
    [
        (f"{REPOSITORY}@sha256:{'a' * 64}", []),
        (
            f"123456789012.dkr.ecr.us-west-2.amazonaws.com/other-neuron@sha256:{'a' * 64}",
            ["allowed: an image of repository inf-small-neuron (the compile stack's)"],
        ),
        (
            f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/inf-small-neuron@sha256:{'a' * 64}",
            ["allowed: an image in us-west-2 (the project's region)"],
        ),
        ("docker.io/attacker/anything:1", ["allowed: an image of the compile stack's ECR repository by digest"]),
    ],
)
def test_a_pinned_compile_image_belongs_to_the_project(image: str, problems: list[str]) -> None:
    found = spec_rules.compile_image_problems(image, repository_name="inf-small-neuron", region="us-west-2")
    assert len(found) == len(problems)
    for line, expected in zip(found, problems, strict=True):
        assert expected in line


def test_image_parts() -> None:
    assert spec_rules.image_parts(f"{REPOSITORY}@sha256:{'b' * 64}") == {
        "account": "123456789012",
        "region": "us-west-2",
        "name": "inf-small-neuron",
        "repository": REPOSITORY,
        "digest": "b" * 64,
    }


def test_every_key_a_spec_may_have_is_in_the_cache_key() -> None:
    """The integrity claim: whatever a caller may set changes the key its artifacts land
    under. The two lists live apart (each file is copied alone into the Lambda)."""
    from neuron_platform.compile.cache_key import KEY_FIELDS

    assert spec_rules.SPEC_KEYS == KEY_FIELDS
