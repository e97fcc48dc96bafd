"""The serving planner: from one :class:`ServingSpec`, everything else, consistently.

Plain Python over the facts. ``plan`` picks the instance type with the lowest cost per
replica among the candidates (an EKS pool's types, or SageMaker's hosting types of the
target family), places replicas the way the Neuron scheduler can (contiguous devices;
1, 4, 8 or 16 on trn), derives the compile spec whose artifacts the endpoint loads, the
container settings, and the cost. Impossible specs raise :class:`PlanError` with one
line that names the field, the value and what would work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from neuron_platform import facts
from neuron_platform.compile import spec_rules
from neuron_platform.compile.cache_key import unpinned_key
from neuron_platform.compile.spec import CompileSpec, estimate_memory, spec_issues
from neuron_platform.neuron_stack import (
    COMPILE_PLACEMENT,
    TARGET_FAMILY,
    Engine,
    NeuronStackError,
    Placement,
    PoolStack,
    resolve_pool,
    resolve_sagemaker,
    serving_engine,
)
from neuron_platform.serving.spec import ServingSpec

# Where the EKS init container puts the artifacts, and the port vLLM listens on. vLLM
# artifacts hold the model's own files (config, tokenizer) under model/ and what the engine
# compiled under neuron/, so a pod serves offline from what the pipeline verified.
ARTIFACTS_DIR = "/models/compiled"
MODEL_DIR = f"{ARTIFACTS_DIR}/model"
COMPILED_DIR = f"{ARTIFACTS_DIR}/neuron"
SERVING_PORT = 8000


class PlanError(ValueError):
    """The spec cannot be served as given (one line: field, value, what would work)."""


@dataclass(frozen=True)
class ReplicaPlacement:
    instance_type: str
    devices_per_replica: int
    cores_per_replica: int
    replicas_per_node: int
    usd_per_hour: float | None

    @property
    def usd_per_replica_hour(self) -> float | None:
        return None if self.usd_per_hour is None else self.usd_per_hour / self.replicas_per_node


@dataclass(frozen=True)
class ServingPlan:
    spec: ServingSpec
    placement: ReplicaPlacement
    nodes_min: int
    nodes_max: int
    compile_sdk: str
    compile_image_repository: str
    compile_image_tag: str
    # The image that serves (EKS: the pool's; SageMaker: ``repository:tag``, its registry is
    # per region) and what it carries; the compile image is built FROM it with the same tag.
    serving_image: str
    engine: Engine
    runtime: str
    compiler: str
    compile_placement: Placement
    weights_gib: float
    kv_cache_gib: float
    tokens_per_second: float | None
    environment: dict[str, str] = field(default_factory=dict)
    # The compile image pinned for this endpoint (``<repository uri>@sha256:...``, built FROM
    # the serving image by make compile-image); None until it is pinned.
    compile_image: str | None = None

    @property
    def instance_type(self) -> str:
        t = self.placement.instance_type
        return f"ml.{t}" if self.spec.backend == "sagemaker" else t

    @property
    def pinned(self) -> bool:
        return self.compile_image is not None

    def compile_spec(self) -> CompileSpec:
        """The compile spec whose artifacts this endpoint loads: its shapes, the serving image's
        SDK and the pinned compile image. Raises :class:`PlanError` while no image is pinned."""
        if self.compile_image is None:
            raise PlanError(
                f"compile_image: endpoint {self.spec.name} has no pinned compile image; build it with make "
                f"compile-image ENDPOINT={self.spec.name} (FROM {self.serving_image}) and set compile_image to the "
                "reference it prints"
            )
        return CompileSpec.model_validate(
            {**self.spec.shape_fields(), "sdk_version": self.compile_sdk, "image": self.compile_image}
        )

    def cache_key(self) -> str:
        """Where the endpoint's artifacts are: the key of :meth:`compile_spec`, computed here at
        synth from the pinned reference. Unpinned, a key no compile can produce (serving then
        reports missing artifacts instead of loading anything)."""
        if self.compile_image is None:
            return unpinned_key(
                self.spec.model_dump(
                    mode="json", include={"model", "target", "tensor_parallel_size", "batch_size", "sequence_length"}
                )
            )
        return self.compile_spec().cache_key()

    def usd_per_hour(self, replicas: int) -> float | None:
        price = self.placement.usd_per_hour
        return None if price is None else math.ceil(replicas / self.placement.replicas_per_node) * price

    @property
    def usd_per_million_tokens(self) -> float | None:
        per_replica = self.placement.usd_per_replica_hour
        if per_replica is None or not self.tokens_per_second:
            return None
        return per_replica / (self.tokens_per_second * 3600) * 1e6


def _placement(spec: ServingSpec, instance: facts.NeuronInstanceType) -> ReplicaPlacement | str:
    """Where one replica goes on ``instance``, or why it cannot go there."""
    ranks = spec.tensor_parallel_size
    cores_per_device = instance.neuron_cores // instance.neuron_devices
    logical_per_device = facts.logical_cores(instance) // instance.neuron_devices
    devices = math.ceil(ranks / logical_per_device)
    if devices > instance.neuron_devices:
        return (
            f"{instance.name} has {instance.neuron_devices} Neuron devices ({facts.logical_cores(instance)} cores); "
            f"TP {ranks} needs {devices}"
        )
    placeable = facts.placeable_device_counts(instance)
    if devices not in placeable:
        return (
            f"TP {ranks} needs {devices} devices per replica on {instance.name}; the Neuron scheduler places "
            f"{', '.join(map(str, placeable))}"
        )
    return ReplicaPlacement(
        instance_type=instance.name,
        devices_per_replica=devices,
        cores_per_replica=devices * cores_per_device,
        replicas_per_node=instance.neuron_devices // devices,
        usd_per_hour=instance.on_demand_usd_per_hour,
    )


def candidate_types(spec: ServingSpec, pool_types: Sequence[str] | None) -> list[facts.NeuronInstanceType]:
    if spec.backend == "sagemaker":
        names = [n for n in facts.INSTANCE_TYPES if n in facts.SAGEMAKER_HOSTING_TYPES]
    else:
        names = list(pool_types) if pool_types is not None else list(facts.INSTANCE_TYPES)
    return [facts.INSTANCE_TYPES[n] for n in names if facts.INSTANCE_TYPES[n].compile_target is spec.target]


def plan(
    spec: ServingSpec,
    *,
    pool_types: Sequence[str] | None = None,
    project: str = "neuron",
    pool_stack: PoolStack | None = None,
    compile_image: str | None = None,
) -> ServingPlan:
    """Plan ``spec``. EKS endpoints serve the ``pool_stack``'s image (without one: the default
    inference stack of the target's family); SageMaker endpoints the newest supported
    SageMaker image, or the one at ``spec.neuron_sdk``. ``compile_image``: the endpoint's
    pinned compile image (default: the spec's ``compile_image``, when it has one), an image
    of ``<project>-neuron`` by digest."""
    issues = list(spec_issues(spec, compile_machines=()))
    if issues:
        raise PlanError(str(issues[0]))
    repository = f"{project}-neuron"
    pinned = compile_image if compile_image is not None else getattr(spec, "compile_image", None)
    if pinned is not None:
        problems = spec_rules.compile_image_problems(pinned, repository_name=repository)
        if problems:
            raise PlanError(f"compile_image: {problems[0]}")
    candidates = candidate_types(spec, pool_types)
    if not candidates:
        where = "SageMaker hosting" if spec.backend == "sagemaker" else f"pool {spec.pool}"
        raise PlanError(f"target: got {spec.target}; {where} has no {spec.target} instance types")
    placements: list[ReplicaPlacement] = []
    reasons: list[str] = []
    for instance in candidates:
        placed = _placement(spec, instance)
        (reasons if isinstance(placed, str) else placements).append(placed)  # type: ignore[arg-type]
    if not placements:
        raise PlanError(f"tensor_parallel_size: got {spec.tensor_parallel_size}; {reasons[-1]}")
    if spec.backend == "sagemaker":
        # One model copy per SageMaker instance: the smallest type that holds it is cheapest.
        placements = [
            ReplicaPlacement(p.instance_type, p.devices_per_replica, p.cores_per_replica, 1, p.usd_per_hour)
            for p in placements
        ]
    best = min(placements, key=lambda p: (p.usd_per_replica_hour or math.inf, p.instance_type))
    arch = spec.resolved_architecture()
    estimate = estimate_memory(spec, arch) if arch else None
    tokens = spec.tokens_per_second or facts.PUBLISHED_TOKENS_PER_SECOND.get(
        (spec.model.name, spec.target, spec.tensor_parallel_size)
    )
    if spec.backend == "sagemaker":
        try:
            endpoint = resolve_sagemaker(spec.target, spec.neuron_sdk)
        except NeuronStackError as err:
            raise PlanError(f"{err.field}: {err}") from None
        image, runtime, sdk, compiler = endpoint.image, endpoint.runtime, endpoint.sdk, endpoint.compiler
        environment = {
            "SM_ON_MODEL": "/opt/ml/model",
            "SM_ON_BATCH_SIZE": str(spec.batch_size),
            "SM_ON_SEQUENCE_LENGTH": str(spec.sequence_length),
            "SM_ON_TENSOR_PARALLEL_SIZE": str(spec.tensor_parallel_size),
        }
    else:
        try:
            stack = pool_stack or resolve_pool(
                name=str(spec.pool), family=TARGET_FAMILY[spec.target], purpose="inference", sdk=spec.neuron_sdk
            )
        except NeuronStackError as err:
            raise PlanError(f"{err.field}: {err}") from None
        if spec.neuron_sdk is not None and spec.neuron_sdk != stack.sdk.version:
            raise PlanError(
                f"neuron_sdk: got {spec.neuron_sdk!r}; pool {stack.pool} runs Neuron SDK {stack.sdk.version} and "
                "artifacts load only under the SDK that compiled them; allowed: "
                f"{stack.sdk.version} (recompile with 'compile submit --endpoint {spec.name}' first)"
            )
        serving = stack.workload("serving")
        if serving is None:
            raise PlanError(f"pool: got {stack.pool!r}; it is a {stack.purpose} pool, not an inference pool")
        image, runtime, sdk = serving.image, serving.runtime, stack.sdk.version
        compiler = stack.sdk.compiler
    engine = serving_engine(image)
    if engine == "vllm-nxdi":
        environment = {"NEURON_COMPILED_ARTIFACTS": COMPILED_DIR, "HF_HUB_OFFLINE": "1"}
    elif engine == "vllm-neuron":
        # The plugin's compile cache holds the artifacts; a miss at start is fatal, never a compile.
        environment = {
            "VLLM_CACHE_ROOT": COMPILED_DIR,
            "VLLM_NEURON_DISABLE_WARMUP_COMPILE": "1",
            "HF_HUB_OFFLINE": "1",
        }
    return ServingPlan(
        spec=spec,
        placement=best,
        nodes_min=math.ceil(spec.replicas.min / best.replicas_per_node),
        nodes_max=math.ceil(spec.replicas.max / best.replicas_per_node),
        compile_sdk=sdk,
        compile_image_repository=repository,
        compile_image_tag=image.tag,
        serving_image=image.uri,
        engine=engine,
        runtime=runtime,
        compiler=compiler,
        compile_placement=COMPILE_PLACEMENT[engine],
        weights_gib=estimate.weights_gib if estimate else math.nan,
        kv_cache_gib=estimate.kv_cache_gib if estimate else math.nan,
        tokens_per_second=tokens,
        environment=environment,
        compile_image=pinned,
    )


def plan_table(p: ServingPlan) -> list[str]:
    """The plan as aligned ``key  value`` lines (``python -m neuron_platform plan``)."""

    # SageMaker bills ml.* hosting above the EC2 list price the facts carry: a floor there.
    floor = " or more (EC2 list price; ml.* hosting costs more)" if p.spec.backend == "sagemaker" else ""

    def money(value: float | None, unit: str) -> str:
        return "n/a (no list price)" if value is None else f"${value:,.2f}{unit}"

    spec, placement = p.spec, p.placement
    rows = [
        ("endpoint", f"{spec.name} ({spec.backend}, {spec.exposure})"),
        ("model", f"{spec.model.name}" + (f"@{spec.model.revision}" if spec.model.revision else "")),
        ("shapes", f"batch {spec.batch_size}, sequence {spec.sequence_length}, {spec.dtype}"),
        ("instance type", p.instance_type),
        (
            "per replica",
            f"TP {spec.tensor_parallel_size}: {placement.devices_per_replica} devices, {placement.cores_per_replica} NeuronCores",
        ),
        ("replicas per node", str(placement.replicas_per_node)),
        (
            "replicas",
            f"{spec.replicas.min}-{spec.replicas.max} (scale at {spec.target_in_flight} in-flight requests per replica)",
        ),
        ("instances" if spec.backend == "sagemaker" else "nodes", f"{p.nodes_min}-{p.nodes_max}"),
    ]
    if not math.isnan(p.weights_gib):
        rows.append(
            ("device memory", f"weights {p.weights_gib:.1f} GiB + KV cache {p.kv_cache_gib:.1f} GiB per replica")
        )
    rows += [
        ("serving image", f"{p.serving_image} ({p.engine}, runtime {p.runtime})"),
        (
            "compile spec",
            f"sdk {p.compile_sdk} (neuronx-cc {p.compiler}), image "
            f"{p.compile_image or f'{p.compile_image_repository}:{p.compile_image_tag} (not pinned)'}, "
            f"compiled on {'the pool' if p.compile_placement == 'cluster' else 'AWS Batch (CPU)'}",
        ),
        (
            "cache key",
            p.cache_key()
            if p.pinned
            else f"none until compile_image is pinned (make compile-image ENDPOINT={spec.name})",
        ),
        (
            "cost per hour",
            f"{money(p.usd_per_hour(spec.replicas.min), '')} at min, {money(p.usd_per_hour(spec.replicas.max), '')} at max",
        ),
    ]
    if p.tokens_per_second:
        rows.append(("throughput", f"~{p.tokens_per_second:,.0f} output tokens/s per replica"))
        rows.append(("cost per 1M tokens", money(p.usd_per_million_tokens, "") + f" at full load{floor}"))
    rows.append(("environment", ", ".join(f"{k}={v}" for k, v in p.environment.items())))
    width = max(len(k) for k, _ in rows)
    return [f"{k.ljust(width)}  {v}" for k, v in rows]
