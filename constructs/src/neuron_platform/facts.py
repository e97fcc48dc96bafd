"""Facts about AWS Neuron instance types, regions and zones.

Plain Python, no CDK import: configuration validation, constructs and (later) the
serving planner all read these tables, and unit tests pin them.

Sources (checked 2026-11):
- [NEURON-ARCH] Neuron documentation, "Amazon EC2 Inf2 Architecture", "Trn1/Trn1n
  Architecture" and "Trn2 Architecture" pages (awsdocs-neuron.readthedocs-hosted.com,
  about-neuron/arch/neuron-hardware/*): devices, vCPU, host memory, device memory.
- [EC2-NET] EC2 User Guide, "Maximum network interfaces" / EFA supported instance
  types: network cards (= EFA interfaces Karpenter attaches, one per card).
- [KARPENTER-PRICE] karpenter-provider-aws pkg/providers/pricing/zz_generated.pricing_aws.go
  (static us-east-1 on-demand list, generated 2026-01/07): on-demand $/hour.
- [EC2-REGIONS] EC2 "instance types by Region" tables and the AWS What's New
  announcements for each family; verify for your account with
  ``aws ec2 describe-instance-type-offerings --location-type region``.
- [NXD-TP] Neuron docs, NxD Inference / transformers-neuronx tensor-parallel guidance,
  plus FIELD-NOTES: TP degrees a target accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Family(StrEnum):
    """Neuron instance families this platform manages."""

    INF2 = "inf2"
    TRN1 = "trn1"
    TRN1N = "trn1n"
    TRN2 = "trn2"


class CompileTarget(StrEnum):
    """Neuron compiler targets. inf2 and trn1/trn1n share NeuronCore-v2 (one target)."""

    INF2 = "inf2"
    TRN1 = "trn1"
    TRN2 = "trn2"


@dataclass(frozen=True)
class NeuronInstanceType:
    """Hardware facts for one instance type.

    ``neuron_cores`` counts physical NeuronCores; on trn2 the default logical
    NeuronCore size (LNC=2) exposes half as many logical cores to workloads.
    """

    name: str
    family: Family
    neuron_devices: int
    neuron_cores: int
    device_memory_gib: int
    vcpu: int
    host_memory_gib: int
    efa_interfaces: int
    on_demand_usd_per_hour: float | None
    instance_store: bool

    @property
    def efa_capable(self) -> bool:
        return self.efa_interfaces > 0

    @property
    def compile_target(self) -> CompileTarget:
        return _FAMILY_TARGET[self.family]

    @property
    def device_memory_per_core_gib(self) -> float:
        return self.device_memory_gib / self.neuron_cores


_FAMILY_TARGET = {
    Family.INF2: CompileTarget.INF2,
    Family.TRN1: CompileTarget.TRN1,
    Family.TRN1N: CompileTarget.TRN1,
    Family.TRN2: CompileTarget.TRN2,
}

# Devices/cores/memory/vCPU: [NEURON-ARCH]. EFA interfaces: [EC2-NET] (trn1.32xlarge
# 8 network cards, trn1n.32xlarge and trn2.48xlarge 16; inf2 and trn1.2xlarge have no
# EFA). Price: [KARPENTER-PRICE] us-east-1; trn2 is sold through Capacity Blocks and
# has no on-demand list price there (None). Instance store: trn1/trn1n/trn2 carry local
# NVMe (7.6 TB trn1/trn1n) [NEURON-ARCH]; inf2 has none.
INSTANCE_TYPES: dict[str, NeuronInstanceType] = {
    t.name: t
    for t in (
        NeuronInstanceType("inf2.xlarge", Family.INF2, 1, 2, 32, 4, 16, 0, 0.7582, False),
        NeuronInstanceType("inf2.8xlarge", Family.INF2, 1, 2, 32, 32, 128, 0, 1.96786, False),
        NeuronInstanceType("inf2.24xlarge", Family.INF2, 6, 12, 192, 96, 384, 0, 6.49063, False),
        NeuronInstanceType("inf2.48xlarge", Family.INF2, 12, 24, 384, 192, 768, 0, 12.98127, False),
        NeuronInstanceType("trn1.2xlarge", Family.TRN1, 1, 2, 32, 8, 32, 0, 1.34375, True),
        NeuronInstanceType("trn1.32xlarge", Family.TRN1, 16, 32, 512, 128, 512, 8, 21.50, True),
        NeuronInstanceType("trn1n.32xlarge", Family.TRN1N, 16, 32, 512, 128, 512, 16, 24.78, True),
        NeuronInstanceType("trn2.48xlarge", Family.TRN2, 16, 128, 1536, 192, 2048, 16, None, True),
    )
}

# Regions offering each family [EC2-REGIONS]. Conservative: a region missing here
# is rejected by config validation with this list in the message; add it (with its
# source) when AWS launches the family there.
FAMILY_REGIONS: dict[Family, tuple[str, ...]] = {
    Family.INF2: (
        "ap-northeast-1",
        "ap-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "eu-central-1",
        "eu-north-1",
        "eu-west-1",
        "eu-west-3",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-2",
    ),
    Family.TRN1: (
        "ap-northeast-1",
        "ap-south-1",
        "eu-north-1",
        "us-east-1",
        "us-east-2",
        "us-west-2",
    ),
    Family.TRN1N: ("us-east-1", "us-west-2"),
    Family.TRN2: ("us-east-2",),
}

# Availability Zone name suffixes per region that offers any Neuron family. New
# accounts do not get ap-northeast-1b or ca-central-1c, so they are left out.
# Source: EC2 "Regions and Zones" documentation.
REGION_ZONE_SUFFIXES: dict[str, str] = {
    "ap-northeast-1": "acd",
    "ap-south-1": "abc",
    "ap-southeast-1": "abc",
    "ap-southeast-2": "abc",
    "eu-central-1": "abc",
    "eu-north-1": "abc",
    "eu-west-1": "abc",
    "eu-west-3": "abc",
    "sa-east-1": "abc",
    "us-east-1": "abcdef",
    "us-east-2": "abc",
    "us-west-2": "abcd",
}

# Tensor-parallel degrees each compile target accepts [NXD-TP]. trn2 counts logical
# NeuronCores at the default LNC=2 (64 per trn2.48xlarge).
TENSOR_PARALLEL_DEGREES: dict[CompileTarget, tuple[int, ...]] = {
    CompileTarget.INF2: (1, 2, 4, 8, 24),
    CompileTarget.TRN1: (1, 2, 8, 16, 32),
    CompileTarget.TRN2: (1, 2, 4, 8, 16, 32, 64),
}


class UnknownInstanceType(ValueError):
    """Raised for an instance type that is not a Neuron type we know."""


def instance_type(name: str) -> NeuronInstanceType:
    """Return the facts for ``name`` or raise :class:`UnknownInstanceType`."""
    try:
        return INSTANCE_TYPES[name]
    except KeyError:
        raise UnknownInstanceType(f"got {name!r}; allowed: {', '.join(INSTANCE_TYPES)}") from None


def family_of(name: str) -> Family:
    """Family of an instance type name such as ``trn1.32xlarge``."""
    return instance_type(name).family


def regions_offering(family: Family) -> tuple[str, ...]:
    return FAMILY_REGIONS[family]


def is_offered(family: Family, region: str) -> bool:
    return region in FAMILY_REGIONS[family]


def known_regions() -> tuple[str, ...]:
    return tuple(sorted(REGION_ZONE_SUFFIXES))


def zones_of(region: str) -> tuple[str, ...]:
    """Availability Zone names of a region we know, e.g. ``us-east-2a``."""
    return tuple(f"{region}{s}" for s in REGION_ZONE_SUFFIXES.get(region, ""))


def tensor_parallel_degrees(target: CompileTarget) -> tuple[int, ...]:
    return TENSOR_PARALLEL_DEGREES[target]


# --- compile machines ------------------------------------------------------------------
# Neuron compilation (neuronx-cc) runs on the CPU and needs no Neuron device; it is bound
# by host memory (FIELD-NOTES "Images and compilation": an 8B model was killed on a 32 GiB
# host; 70B compiles asked for 300-465 GiB). So compile jobs run on memory-optimized
# x86 instances. Memory and vCPU: EC2 instance type pages; price: us-east-1 on-demand
# Linux list price (r7i.large $0.1323/h, doubling with each size step).


@dataclass(frozen=True)
class CompileMachine:
    name: str
    vcpu: int
    host_memory_gib: int
    on_demand_usd_per_hour: float


COMPILE_MACHINES: dict[str, CompileMachine] = {
    m.name: m
    for m in (
        CompileMachine("r7i.2xlarge", 8, 64, 0.5292),
        CompileMachine("r7i.4xlarge", 16, 128, 1.0584),
        CompileMachine("r7i.8xlarge", 32, 256, 2.1168),
        CompileMachine("r7i.12xlarge", 48, 384, 3.1752),
        CompileMachine("r7i.16xlarge", 64, 512, 4.2336),
        CompileMachine("r7i.24xlarge", 96, 768, 6.3504),
    )
}

# Host memory a compile needs: three copies of the weights (checkpoint, traced model,
# compiler working set) plus 16 GiB for the compiler and OS. Anchored on the observations
# above: 8B bf16 (15 GiB) -> 61 GiB (>32 GiB that failed), 70B (131 GiB) -> 410 GiB
# (inside 300-465 GiB).
COMPILE_HOST_MEMORY_WEIGHT_COPIES = 3
COMPILE_HOST_MEMORY_OVERHEAD_GIB = 16
# Share of device memory a model may plan for; the Neuron runtime and scratch take the rest.
DEVICE_MEMORY_USABLE_FRACTION = 0.9


# --- model architectures -----------------------------------------------------------------
# From each model's Hugging Face config.json (hidden_size, num_hidden_layers,
# num_attention_heads, num_key_value_heads; head_dim = hidden / heads) and model card
# (parameter count). Used to check TP against attention heads and to size weights and KV
# cache; a model missing here can pass its architecture in the spec.


@dataclass(frozen=True)
class ModelArchitecture:
    parameters_billion: float
    layers: int
    attention_heads: int
    kv_heads: int
    head_dim: int


MODEL_ARCHITECTURES: dict[str, ModelArchitecture] = {
    "meta-llama/Llama-3.2-1B": ModelArchitecture(1.24, 16, 32, 8, 64),
    "meta-llama/Llama-3.2-1B-Instruct": ModelArchitecture(1.24, 16, 32, 8, 64),
    "meta-llama/Meta-Llama-3-8B": ModelArchitecture(8.03, 32, 32, 8, 128),
    "meta-llama/Meta-Llama-3-8B-Instruct": ModelArchitecture(8.03, 32, 32, 8, 128),
    "meta-llama/Llama-3.1-8B": ModelArchitecture(8.03, 32, 32, 8, 128),
    "meta-llama/Llama-3.1-8B-Instruct": ModelArchitecture(8.03, 32, 32, 8, 128),
    "meta-llama/Meta-Llama-3-70B": ModelArchitecture(70.6, 80, 64, 8, 128),
    "meta-llama/Meta-Llama-3-70B-Instruct": ModelArchitecture(70.6, 80, 64, 8, 128),
    "meta-llama/Llama-3.1-70B-Instruct": ModelArchitecture(70.6, 80, 64, 8, 128),
    "mistralai/Mistral-7B-Instruct-v0.3": ModelArchitecture(7.25, 32, 32, 8, 128),
}

DTYPE_BYTES = {"bfloat16": 2, "float16": 2}


def model_architecture(model_id: str) -> ModelArchitecture | None:
    return MODEL_ARCHITECTURES.get(model_id)


def compile_machine(name: str) -> CompileMachine:
    try:
        return COMPILE_MACHINES[name]
    except KeyError:
        raise UnknownInstanceType(f"got {name!r}; allowed: {', '.join(COMPILE_MACHINES)}") from None


def cores_per_target(target: CompileTarget) -> tuple[NeuronInstanceType, ...]:
    """Instance types a compile target runs on, smallest first."""
    return tuple(
        sorted((t for t in INSTANCE_TYPES.values() if t.compile_target is target), key=lambda t: t.neuron_cores)
    )


# --- serving ---------------------------------------------------------------------------------
# Device counts one container may request [NEURON-SCHED] (Neuron docs, "Neuron scheduler
# extension"): Inf2's ring topology takes any contiguous count; Trn1/Trn1n's 2D torus only
# 1, 4, 8 or all 16. Trn2 is wired as a 2D torus as well; the same rule is applied.
TORUS_DEVICE_COUNTS = (1, 4, 8, 16)


def placeable_device_counts(instance: NeuronInstanceType) -> tuple[int, ...]:
    if instance.family is Family.INF2:
        return tuple(range(1, instance.neuron_devices + 1))
    return tuple(n for n in TORUS_DEVICE_COUNTS if n <= instance.neuron_devices)


def logical_cores(instance: NeuronInstanceType) -> int:
    """NeuronCores a workload addresses (tensor-parallel ranks): LNC=2 halves trn2's count."""
    return instance.neuron_cores // 2 if instance.family is Family.TRN2 else instance.neuron_cores


# SageMaker real-time hosting instance types for Neuron (SageMaker pricing page, "Real-time
# inference"); trn2 hosting is not offered there.
SAGEMAKER_HOSTING_TYPES = frozenset(
    {"inf2.xlarge", "inf2.8xlarge", "inf2.24xlarge", "inf2.48xlarge", "trn1.2xlarge", "trn1.32xlarge"}
)

# Published output throughput per replica, tokens/s (FIELD-NOTES "Published serving figures":
# Llama-3-8B on inf2.48xlarge with vLLM, three TP8 replicas, ~1226 tokens/s in total).
# Keyed by model, target and TP; used for cost per million tokens when a spec gives none.
PUBLISHED_TOKENS_PER_SECOND: dict[tuple[str, CompileTarget, int], float] = {
    ("meta-llama/Meta-Llama-3-8B-Instruct", CompileTarget.INF2, 8): 1226 / 3,
    ("meta-llama/Meta-Llama-3-8B", CompileTarget.INF2, 8): 1226 / 3,
    ("meta-llama/Meta-Llama-3-8B-Instruct", CompileTarget.INF2, 24): 859,
}

# EC2 instance topology: the types for which EC2 reports network nodes, which the AWS cloud
# provider turns into node labels topology.k8s.aws/network-node-layer-<n> (EC2 User Guide,
# "Amazon EC2 instance topology" prerequisites: trn1.2xlarge, trn1.32xlarge, trn1n.32xlarge,
# trn2.48xlarge with 3 network nodes; inf2 is not listed; kubernetes/cloud-provider-aws
# instances_v2.go getAdditionalLabels). Layer 1 is the top of the hierarchy, 3 the most selective.
NETWORK_TOPOLOGY_LAYERS: dict[str, int] = {
    "trn1.2xlarge": 3,
    "trn1.32xlarge": 3,
    "trn1n.32xlarge": 3,
    "trn2.48xlarge": 3,
}
NETWORK_NODE_LABEL = "topology.k8s.aws/network-node-layer-{layer}"
