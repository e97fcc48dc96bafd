"""Step 1 of the compile pipeline: check the spec's shape and derive the cache key.

The CLI validates specs fully (pydantic and the facts) before it starts an execution;
this handler guards the state machine against anything else that starts one, so the
later steps can trust the fields they use. Raises ``InvalidSpec`` (the state machine
catches it and records the failure).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from cache_key import cache_key

TARGETS = ("inf2", "trn1", "trn2")
DTYPES = ("bfloat16", "float16")
ENGINES = ("vllm-nxdi", "vllm-neuron", "optimum-neuron")
VERSION = re.compile(r"^\d+(\.\d+){1,4}$")
# Without sizing from the CLI: enough for models up to about 8B parameters.
DEFAULT_MEMORY_GIB = 64
DEFAULT_VCPUS = 8
INTEGERS = {"batch_size": (1, 256), "sequence_length": (128, 131072), "tensor_parallel_size": (1, 128)}


class InvalidSpec(Exception):
    """The spec cannot be compiled as given."""


def check(spec: Any) -> list[str]:
    if not isinstance(spec, dict):
        return ["spec: expected a mapping"]
    problems: list[str] = []
    model = spec.get("model")
    if not isinstance(model, dict) or bool(model.get("hf_id")) == bool(model.get("s3_uri")):
        problems.append("model: give exactly one of hf_id (with revision) or s3_uri")
    elif model.get("hf_id") and not model.get("revision"):
        problems.append("model.revision: required with hf_id")
    if spec.get("task") != "text-generation":
        problems.append(f"task: got {spec.get('task')!r}; allowed: text-generation")
    if spec.get("target") not in TARGETS:
        problems.append(f"target: got {spec.get('target')!r}; allowed: {', '.join(TARGETS)}")
    if spec.get("dtype") not in DTYPES:
        problems.append(f"dtype: got {spec.get('dtype')!r}; allowed: {', '.join(DTYPES)}")
    for name, (low, high) in INTEGERS.items():
        value = spec.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            problems.append(f"{name}: got {value!r}; allowed: an integer from {low} to {high}")
    flags = spec.get("compiler_flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) and f.startswith("--") for f in flags):
        problems.append("compiler_flags: expected a list of --flags")
    for name in ("sdk_version", "image"):
        if not isinstance(spec.get(name), str) or not spec[name]:
            problems.append(f"{name}: required")
    image = spec.get("image")
    if (
        isinstance(image, str)
        and "@sha256:" not in image
        and image.rsplit("/", 1)[-1].partition(":")[2] in ("", "latest")
    ):
        problems.append("image: pin a tag or digest, not latest")
    return problems


def neuron(event: dict[str, Any], cluster_endpoints: list[str]) -> tuple[dict[str, str], str, str]:
    """The engine and toolchain the CLI derived from the Neuron data, and where the compile runs.

    vLLM engines compile on the cluster, for a configured endpoint (its Job template fixes
    the node and devices); optimum-neuron exports on Batch.
    """
    given = event.get("neuron")
    if not isinstance(given, dict):
        raise InvalidSpec("neuron: required: {engine, neuronxCc, runtime} (python -m neuron_platform compile submit)")
    engine = given.get("engine")
    if engine not in ENGINES:
        raise InvalidSpec(f"neuron.engine: got {engine!r}; allowed: {', '.join(ENGINES)}")
    for name in ("neuronxCc", "runtime"):
        if not isinstance(given.get(name), str) or not VERSION.match(given[name]):
            raise InvalidSpec(f"neuron.{name}: got {given.get(name)!r}; allowed: a version like 2.23.6484.0")
    endpoint = event.get("endpoint", "")
    if engine == "optimum-neuron":
        return {"engine": engine, "neuronxCc": given["neuronxCc"], "runtime": given["runtime"]}, "batch", ""
    if endpoint not in cluster_endpoints:
        raise InvalidSpec(
            f"endpoint: got {endpoint!r}; {engine} artifacts compile on an endpoint's pool: allowed: "
            f"{', '.join(cluster_endpoints) or 'none (no EKS endpoint with a vLLM engine is configured)'}"
        )
    return {"engine": engine, "neuronxCc": given["neuronxCc"], "runtime": given["runtime"]}, "cluster", endpoint


def resources(event: dict[str, Any], max_memory_gib: int) -> tuple[int, int]:
    """Memory (GiB) and vCPUs for the compile job: what the CLI sized from the facts, within bounds."""
    requested = event.get("resources") or {}
    memory = requested.get("memory_gib", DEFAULT_MEMORY_GIB)
    vcpus = requested.get("vcpus", DEFAULT_VCPUS)
    for name, value, high in (("memory_gib", memory, max_memory_gib), ("vcpus", vcpus, 192)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
            raise InvalidSpec(f"resources.{name}: got {value!r}; allowed: an integer from 1 to {high}")
    return memory, vcpus


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    spec = event.get("spec")
    problems = check(spec)
    if problems:
        raise InvalidSpec("; ".join(problems))
    assert isinstance(spec, dict)
    spec.setdefault("compiler_flags", [])
    key = cache_key(spec)
    bucket = os.environ["ARTIFACTS_BUCKET"]
    # MAX_MEMORY_GIB: what the largest compile machine can give one container (set by CompilePipeline).
    memory_gib, vcpus = resources(event, int(os.environ["MAX_MEMORY_GIB"]))
    cluster_endpoints = [e for e in os.environ.get("CLUSTER_ENDPOINTS", "").split(",") if e]
    toolchain, placement, endpoint = neuron(event, cluster_endpoints)
    return {
        "neuron": toolchain,
        "placement": placement,
        "endpoint": endpoint,
        "memoryMiB": str(memory_gib * 1024),
        "vcpus": str(vcpus),
        "cacheKey": key,
        "modelName": spec["model"].get("hf_id") or spec["model"]["s3_uri"],
        "spec": spec,
        "specJson": json.dumps(spec, sort_keys=True),
        "artifactsUrl": f"s3://{bucket}/{os.environ['ARTIFACTS_PREFIX']}{key}/",
        "artifactsPrefix": f"{os.environ['ARTIFACTS_PREFIX']}{key}/",
        "bucket": bucket,
    }
