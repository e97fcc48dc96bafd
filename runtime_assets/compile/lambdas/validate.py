"""Step 1 of the compile pipeline: check the spec and derive the cache key and the run's locations.

The CLI validates specs fully (pydantic and the facts) before it starts an execution;
this handler guards the state machine against anything else that starts one, with the same
rules: ``spec_rules.py`` is the library's ``neuron_platform.compile.spec_rules``, copied
beside this file at synth (as ``cache_key.py`` is). Beyond the CLI it knows the pipeline's
own image repository (``IMAGE_REPOSITORY``): the spec's image must be in it, by digest.
Raises ``InvalidSpec`` (the state machine catches it and records the failure).

Event: ``{"input": <the execution input>, "executionName": <the execution's name>}``.
The job writes to ``staging/<cache key>/<execution name>/`` (``outputUrl``); only the
promote step, after checking every file's sha256, copies them to ``artifacts/<cache key>/``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from cache_key import cache_key
from spec_rules import spec_problems

ENGINES = ("vllm-nxdi", "vllm-neuron", "optimum-neuron")
VERSION = re.compile(r"^\d+(\.\d+){1,4}$")
EXECUTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
# Without sizing from the CLI: enough for models up to about 8B parameters.
DEFAULT_MEMORY_GIB = 64
DEFAULT_VCPUS = 8


class InvalidSpec(Exception):
    """The spec cannot be compiled as given."""


def check(spec: Any, repository: str | None = None) -> list[str]:
    """The library's rules (``spec_rules``), with the image held to ``repository``."""
    return spec_problems(spec, repository=repository)


def neuron(event: dict[str, Any], cluster_endpoints: list[str]) -> tuple[dict[str, str], str, str]:
    """The engine and toolchain the CLI derived from the Neuron data, and where the compile runs.

    vLLM engines compile on the cluster, for a configured endpoint (its Job template fixes
    the node, the devices and the image); optimum-neuron exports on Batch.
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
    if not isinstance(requested, dict):
        raise InvalidSpec(f"resources: got {requested!r}; expected a mapping")
    memory = requested.get("memory_gib", DEFAULT_MEMORY_GIB)
    vcpus = requested.get("vcpus", DEFAULT_VCPUS)
    for name, value, high in (("memory_gib", memory, max_memory_gib), ("vcpus", vcpus, 192)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
            raise InvalidSpec(f"resources.{name}: got {value!r}; allowed: an integer from 1 to {high}")
    return memory, vcpus


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    given = event.get("input")
    if not isinstance(given, dict):
        raise InvalidSpec("input: expected the execution input, a mapping with spec, neuron and resources")
    execution = str(event.get("executionName", ""))
    if not EXECUTION_NAME.match(execution):
        raise InvalidSpec(f"executionName: got {execution!r}; allowed: a Step Functions execution name")
    spec = given.get("spec")
    problems = check(spec, os.environ["IMAGE_REPOSITORY"])
    if problems:
        raise InvalidSpec("; ".join(problems))
    assert isinstance(spec, dict)
    spec.setdefault("compiler_flags", [])
    key = cache_key(spec)
    bucket = os.environ["ARTIFACTS_BUCKET"]
    # MAX_MEMORY_GIB: what the largest compile machine can give one container (set by CompilePipeline).
    memory_gib, vcpus = resources(given, int(os.environ["MAX_MEMORY_GIB"]))
    cluster_endpoints = [e for e in os.environ.get("CLUSTER_ENDPOINTS", "").split(",") if e]
    toolchain, placement, endpoint = neuron(given, cluster_endpoints)
    artifacts_prefix = f"{os.environ['ARTIFACTS_PREFIX']}{key}/"
    staging_prefix = f"{os.environ['STAGING_PREFIX']}{key}/{execution}/"
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
        "bucket": bucket,
        # Where the job writes (its role may write nothing else of the bucket but the Neuron cache).
        "outputUrl": f"s3://{bucket}/{staging_prefix}",
        "stagingPrefix": staging_prefix,
        # Where the promote step copies what it verified; serving reads only this.
        "artifactsUrl": f"s3://{bucket}/{artifacts_prefix}",
        "artifactsPrefix": artifacts_prefix,
    }
