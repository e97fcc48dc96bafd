"""The compile spec: one model, compiled once for fixed shapes on one Neuron target.

Plain Python (pydantic, no CDK). ``load_spec`` validates a YAML file the way the
platform configuration is validated (one line per problem: path, value, what is
allowed) and then checks the spec against the facts: the tensor-parallel degree the
target accepts, attention heads divisible by it, weights plus KV cache fitting in the
NeuronCores' memory, and the host memory the compile needs against the compile machines.
Serving extends :class:`CompileSpec` with replicas and exposure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from neuron_platform import facts
from neuron_platform.compile import spec_rules
from neuron_platform.compile.cache_key import cache_key
from neuron_platform.validation import ConfigError, Issue, StrictModel, format_error, read_yaml

GIB = 1024**3


def image_tag(image: str) -> str | None:
    """The tag of ``registry/repo:tag`` (None for a digest reference)."""
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


class ModelSource(StrictModel):
    """Where the weights come from: a Hugging Face repository at a fixed revision, or S3.

    The rules are :mod:`neuron_platform.compile.spec_rules`' (the pipeline applies the same)."""

    hf_id: str | None = Field(default=None, description="Hugging Face repository id, org/name.")
    revision: str | None = Field(default=None, description="Commit sha (40 hex) or a version tag; required with hf_id.")
    s3_uri: str | None = Field(default=None, description="s3://bucket/prefix/ of a bucket in compile.model_buckets.")

    @field_validator("hf_id")
    @classmethod
    def _hf_id(cls, value: str | None) -> str | None:
        return value if value is None else spec_rules.check_hf_id(value)

    @field_validator("s3_uri")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        return value if value is None else spec_rules.check_s3_uri(value)

    @model_validator(mode="after")
    def _one_source(self) -> ModelSource:
        problem = spec_rules.model_problem(self.hf_id, self.revision, self.s3_uri)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def name(self) -> str:
        return self.hf_id or str(self.s3_uri)


class Architecture(StrictModel):
    """For models missing from the facts table: what sizing needs from config.json."""

    parameters_billion: float = Field(gt=0, le=2000)
    layers: int = Field(ge=1, le=512)
    attention_heads: int = Field(ge=1, le=1024)
    kv_heads: int = Field(ge=1, le=1024)
    head_dim: int = Field(ge=8, le=1024)


class ModelShape(StrictModel):
    """A model and the fixed shapes it runs with on one target (shared by compile and serving specs)."""

    model: ModelSource
    architecture: Architecture | None = Field(default=None, description="Needed when the model is not in facts.")
    task: Literal["text-generation"] = "text-generation"
    target: facts.CompileTarget
    batch_size: int = Field(description="Sequences per batch (1-256).")
    sequence_length: int = Field(description="Tokens per sequence (128-131072).")
    tensor_parallel_size: int = Field(description="NeuronCores (ranks) the model is sharded over (1-128).")
    dtype: Literal["bfloat16", "float16"] = "bfloat16"
    compiler_flags: list[str] = Field(default_factory=list)

    # The value rules are spec_rules' (one copy, shared with the pipeline's Validate step);
    # pydantic checks the types first.
    @field_validator("target", mode="before")
    @classmethod
    def _target(cls, value: Any) -> Any:
        return facts.CompileTarget(spec_rules.check_choice(value, spec_rules.TARGETS))

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, value: Any) -> Any:
        return spec_rules.check_choice(value, spec_rules.TASKS) if isinstance(value, str) else value

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype(cls, value: Any) -> Any:
        return spec_rules.check_choice(value, spec_rules.DTYPES) if isinstance(value, str) else value

    @field_validator("batch_size", "sequence_length", "tensor_parallel_size")
    @classmethod
    def _bounds(cls, value: int, info: ValidationInfo) -> int:
        return spec_rules.check_integer(str(info.field_name), value)

    @field_validator("compiler_flags")
    @classmethod
    def _flags(cls, value: list[str]) -> list[str]:
        return spec_rules.check_flags(value)

    def resolved_architecture(self) -> facts.ModelArchitecture | None:
        if self.architecture is not None:
            return facts.ModelArchitecture(**self.architecture.model_dump())
        return facts.model_architecture(self.model.hf_id) if self.model.hf_id else None

    def shape_fields(self) -> dict[str, Any]:
        """The fields a compile spec shares with this shape (for deriving one from the other)."""
        return {name: getattr(self, name) for name in ModelShape.model_fields}


class CompileSpec(ModelShape):
    """What to compile, for which shapes, with which SDK, in which image."""

    sdk_version: str = Field(description="Neuron SDK release, e.g. 2.26.1.")
    image: str = Field(
        description="Compile image: the compile stack's ECR repository by digest, "
        "<account>.dkr.ecr.<region>.amazonaws.com/<project>-neuron@sha256:<digest> (make compile-image prints it)."
    )

    @field_validator("sdk_version")
    @classmethod
    def _sdk(cls, value: str) -> str:
        return spec_rules.check_sdk_version(value)

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        return spec_rules.check_image(value)

    def cache_key(self) -> str:
        """The registry key the pipeline files this spec's artifacts under."""
        return cache_key(self.pipeline_input())

    def pipeline_input(self) -> dict[str, Any]:
        """The spec as the pipeline receives it (without the sizing-only architecture)."""
        return self.model_dump(mode="json", exclude={"architecture"})


@dataclass(frozen=True)
class MemoryEstimate:
    weights_gib: float
    kv_cache_gib: float
    device_budget_gib: float
    compile_host_gib: int

    @property
    def device_need_gib(self) -> float:
        return self.weights_gib + self.kv_cache_gib


def memory_per_rank_gib(target: facts.CompileTarget) -> float:
    """Device memory behind one tensor-parallel rank (a logical NeuronCore)."""
    largest = facts.cores_per_target(target)[-1]
    ranks = max(facts.tensor_parallel_degrees(target))
    return largest.device_memory_gib / ranks


def estimate_memory(spec: ModelShape, arch: facts.ModelArchitecture) -> MemoryEstimate:
    width = facts.DTYPE_BYTES[spec.dtype]
    weights = arch.parameters_billion * 1e9 * width / GIB
    # K and V per layer per token per KV head, for every sequence of the batch.
    kv = 2 * arch.layers * arch.kv_heads * arch.head_dim * width * spec.sequence_length * spec.batch_size / GIB
    budget = spec.tensor_parallel_size * memory_per_rank_gib(spec.target) * facts.DEVICE_MEMORY_USABLE_FRACTION
    host = int(facts.COMPILE_HOST_MEMORY_WEIGHT_COPIES * weights + facts.COMPILE_HOST_MEMORY_OVERHEAD_GIB + 0.999)
    return MemoryEstimate(round(weights, 2), round(kv, 2), round(budget, 2), host)


def spec_issues(spec: ModelShape, compile_machines: Sequence[str]) -> Iterable[Issue]:
    """Meaning checks against the facts; empty when the spec can compile and serve."""
    allowed = facts.tensor_parallel_degrees(spec.target)
    if spec.tensor_parallel_size not in allowed:
        yield Issue(
            "tensor_parallel_size",
            f"got {spec.tensor_parallel_size}; allowed on {spec.target}: {', '.join(map(str, allowed))}",
        )
    arch = spec.resolved_architecture()
    if arch is None:
        return
    if arch.attention_heads % spec.tensor_parallel_size:
        yield Issue(
            "tensor_parallel_size",
            f"got {spec.tensor_parallel_size}; {spec.model.name} has {arch.attention_heads} attention heads, "
            f"which must divide evenly (allowed: {', '.join(str(t) for t in allowed if arch.attention_heads % t == 0)})",
        )
    estimate = estimate_memory(spec, arch)
    if estimate.device_need_gib > estimate.device_budget_gib:
        yield Issue(
            "tensor_parallel_size",
            f"weights {estimate.weights_gib:.1f} GiB + KV cache {estimate.kv_cache_gib:.1f} GiB do not fit in "
            f"{estimate.device_budget_gib:.1f} GiB (TP {spec.tensor_parallel_size} x "
            f"{memory_per_rank_gib(spec.target):.0f} GiB x {facts.DEVICE_MEMORY_USABLE_FRACTION}); raise TP or "
            "lower batch_size or sequence_length",
        )
    largest = max((facts.compile_machine(m) for m in compile_machines), key=lambda m: m.host_memory_gib, default=None)
    if largest is not None and estimate.compile_host_gib > largest.host_memory_gib:
        yield Issue(
            "model",
            f"compiling needs about {estimate.compile_host_gib} GiB of host memory; the largest compile machine "
            f"({largest.name}) has {largest.host_memory_gib} GiB; add a larger type to compile.instance_types",
        )


def parse_spec(data: Mapping[str, Any], *, compile_machines: Sequence[str] = (), source: str = "<spec>") -> CompileSpec:
    try:
        spec = CompileSpec.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(source, [format_error(e, CompileSpec) for e in err.errors()]) from None
    issues = [str(i) for i in spec_issues(spec, compile_machines)]
    if issues:
        raise ConfigError(source, issues)
    return spec


def load_spec(path: str | Path, *, compile_machines: Sequence[str] = ()) -> CompileSpec:
    path = Path(path)
    return parse_spec(read_yaml(path, CompileSpec), compile_machines=compile_machines, source=str(path))


def smallest_machine(host_gib: int, compile_machines: Sequence[str]) -> facts.CompileMachine | None:
    """The cheapest configured compile machine with enough host memory."""
    fitting = [facts.compile_machine(m) for m in compile_machines]
    fitting = [m for m in fitting if m.host_memory_gib >= host_gib]
    return min(fitting, key=lambda m: m.on_demand_usd_per_hour, default=None)
