"""An endpoint's compile spec and cache key: from the compile image pinned for it, at synth, by digest."""

from __future__ import annotations

import dataclasses

import pytest

from neuron_platform.compile.cache_key import cache_key
from neuron_platform.config import load_config
from neuron_platform.serving.planner import PlanError, ServingPlan, plan, plan_table
from tests.conftest import REPO

CONFIG = load_config(REPO / "config" / "examples" / "inference-small.yaml")
REPOSITORY = "123456789012.dkr.ecr.us-west-2.amazonaws.com/inf-small-neuron"
PINNED = f"{REPOSITORY}@sha256:{'c' * 64}"


def _plan(name: str, image: str | None = PINNED) -> ServingPlan:
    spec = CONFIG.endpoint(name)
    assert spec is not None
    return dataclasses.replace(CONFIG.plan_endpoint(spec), compile_image=image)


def test_the_pinned_image_is_the_compile_specs_and_names_the_key() -> None:
    served = _plan("llama3-8b")
    compile_spec = served.compile_spec()
    assert compile_spec.image == PINNED
    assert compile_spec.sdk_version == served.compile_sdk == "2.28.0"
    assert compile_spec.shape_fields() == served.spec.shape_fields()
    assert served.cache_key() == cache_key(compile_spec.pipeline_input())
    # Another digest of the same repository and tag is another image: another key.
    assert _plan("llama3-8b", f"{REPOSITORY}@sha256:{'d' * 64}").cache_key() != served.cache_key()


def test_an_unpinned_endpoint_points_at_a_key_no_compile_produces() -> None:
    served = _plan("llama3-8b", None)
    assert not served.pinned
    assert served.cache_key() == "meta-llama-3-8b-instruct-inf2-tp8-b4-s4096-unpinned"
    with pytest.raises(PlanError, match="compile_image: endpoint llama3-8b has no pinned compile image"):
        served.compile_spec()
    rows = dict(line.split(None, 1) for line in plan_table(served) if line.startswith("cache"))
    assert "none until compile_image is pinned" in rows["cache"]


def test_plan_takes_the_pin_and_holds_it_to_the_projects_repository() -> None:
    spec = CONFIG.endpoint("llama3-8b-sm")
    assert spec is not None
    assert plan(spec, project="inf-small", compile_image=PINNED).compile_image == PINNED
    with pytest.raises(PlanError, match=r"compile_image: got .*allowed: an image of repository inf-small-neuron"):
        plan(spec, project="inf-small", compile_image=PINNED.replace("inf-small-neuron", "other-neuron"))
    with pytest.raises(PlanError, match=r"compile_image: got 'inf-small-neuron:0.11.0'"):
        plan(spec, project="inf-small", compile_image="inf-small-neuron:0.11.0")


def test_the_plan_table_shows_the_pinned_image() -> None:
    table = "\n".join(plan_table(_plan("llama3-8b-sm")))
    assert f"image {PINNED}, compiled on AWS Batch (CPU)" in table
    assert _plan("llama3-8b-sm").cache_key() in table
