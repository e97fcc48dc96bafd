"""Typed platform configuration: one YAML file, validated before any construct exists.

``load_config(path)`` returns a frozen :class:`PlatformConfig` or raises
:class:`ConfigError` whose ``lines`` are one human-readable line per problem, each
naming the field path, the bad value and what is allowed. Nothing here imports the CDK.

Two layers of checks:
1. Shape (pydantic, strict, unknown keys rejected): types, ranges, patterns.
2. Meaning (:func:`_semantic_issues`): facts that span fields, such as zones that
   belong to the region, instance families offered there, subnets that fit the VPC.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, field_validator

from neuron_platform import facts
from neuron_platform.compile import spec_rules
from neuron_platform.ec2_instance_types import unknown_instance_type
from neuron_platform.neuron_stack import NeuronStackError, PoolStack, resolve_pool
from neuron_platform.serving.planner import PlanError, ServingPlan, plan
from neuron_platform.serving.spec import ServingSpec
from neuron_platform.sizing import SubnetLayoutError, plan_subnets
from neuron_platform.validation import ConfigError, Issue, StrictModel, format_error, read_yaml

__all__ = [
    "ConfigError",
    "Issue",
    "PlatformConfig",
    "StrictModel",
    "format_error",
    "load_config",
    "parse_config",
    "read_yaml",
]

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy API).
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)  # fmt: skip

# The range AWS documents for an EKS-friendly secondary CIDR (RFC 6598 shared space):
# not routable on-premises, so it does not compete for landing-zone address space.
SECONDARY_CIDR_RANGE = ipaddress.IPv4Network("100.64.0.0/10")
PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)


def _parse_cidr(value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"got {value!r}; expected an IPv4 CIDR block such as 10.0.0.0/16 ({err})") from None


def _check_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"got {value}; allowed: {', '.join(map(str, LOG_RETENTION_DAYS))}")
    return value


def _dns_label(max_len: int) -> AfterValidator:
    """Lowercase DNS-style names: they become stack, cluster and Kubernetes object names."""
    pattern = re.compile(rf"^[a-z](?:[a-z0-9-]{{0,{max_len - 2}}}[a-z0-9])?$")

    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(
                f"got {value!r}; allowed: 1-{max_len} lowercase letters, digits and '-', "
                "starting with a letter and not ending with '-'"
            )
        return value

    return AfterValidator(check)


_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _bucket_name(value: str) -> str:
    if not _BUCKET_NAME.match(value):
        raise ValueError(f"got {value!r}; allowed: an S3 bucket name (3-63 lowercase letters, digits, . and -)")
    return value


def _email_address(value: str) -> str:
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
        raise ValueError(f"got {value!r}; allowed: an email address")
    return value


BucketName = Annotated[str, AfterValidator(_bucket_name)]
EmailAddress = Annotated[str, AfterValidator(_email_address)]


def _system_node_type(value: str) -> str:
    """An EC2 instance type (botocore's EC2 model) that is not a Neuron type."""
    allowed = "allowed: a general-purpose EC2 type such as m7i.xlarge (not Neuron)"
    problem = unknown_instance_type(value)
    if problem is not None:
        raise ValueError(f"{problem}; {allowed}")
    if value in facts.INSTANCE_TYPES:
        raise ValueError(f"got {value!r}; {allowed}")
    return value


def _known_instance_type(value: str) -> str:
    facts.instance_type(value)  # raises UnknownInstanceType (a ValueError) with the allowed list
    return value


class ProjectConfig(StrictModel):
    """Names, region and tags shared by every stack."""

    name: Annotated[str, _dns_label(24)] = Field(
        default="neuron",
        description="Prefix of stack names and the EKS cluster name (lowercase, digits, '-', 1-24 chars).",
    )
    region: str = Field(description="AWS region to deploy to; must offer a Neuron family.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags added to every resource.")
    retain_data_on_destroy: bool = Field(
        default=True,
        description="Keep logs, keys, buckets and registries when a stack is destroyed.",
    )

    @field_validator("region")
    @classmethod
    def _region_known(cls, value: str) -> str:
        if value not in facts.known_regions():
            raise ValueError(
                f"got {value!r}; allowed: a region that offers a Neuron family: {', '.join(facts.known_regions())}"
            )
        return value

    @field_validator("tags")
    @classmethod
    def _tags_valid(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            if not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
                raise ValueError(f"tag key {key!r} must be 1-128 characters and not start with 'aws:'")
            if len(val) > 256:
                raise ValueError(f"tag {key!r} value is {len(val)} characters; at most 256 allowed")
        return value


class ExistingVpcConfig(StrictModel):
    """An existing (landing-zone) VPC to deploy into instead of creating one."""

    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    vpc_cidr: str
    private_subnet_ids: list[str] = Field(min_length=2, description="One private subnet per zone, in zone order.")
    public_subnet_ids: list[str] = Field(
        default_factory=list, description="Optional: one public subnet per zone, in zone order."
    )
    create_flow_log: bool = Field(default=False, description="Add a VPC flow log (most landing zones have one).")

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        _parse_cidr(value)
        return value

    @field_validator("private_subnet_ids", "public_subnet_ids")
    @classmethod
    def _subnet_ids(cls, value: list[str]) -> list[str]:
        for subnet_id in value:
            if not subnet_id.startswith("subnet-") or not subnet_id[7:].isalnum():
                raise ValueError(f"got {subnet_id!r}; expected a subnet id like subnet-0123456789abcdef0")
        return value


class NetworkConfig(StrictModel):
    """The VPC: created by the network stack, or imported with ``existing_vpc``."""

    zones: list[str] = Field(min_length=2, max_length=6, description="Availability Zone names, e.g. us-east-1a.")
    vpc_cidr: str = "10.0.0.0/16"
    private_subnet_prefix: int = Field(default=18, ge=16, le=28)
    public_subnet_prefix: int = Field(default=24, ge=16, le=28)
    nat_gateways: int = Field(default=1, ge=1, le=6)
    interface_endpoints: bool = True
    flow_log_retention_days: int = 365
    secondary_cidr: str | None = None
    secondary_subnet_prefix: int = Field(default=18, ge=16, le=28)
    existing_vpc: ExistingVpcConfig | None = None

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, value: str) -> str:
        net = _parse_cidr(value)
        if not 16 <= net.prefixlen <= 24:
            raise ValueError(f"got {value!r}; allowed: a prefix length from /16 to /24")
        if not any(net.subnet_of(r) for r in PRIVATE_RANGES):
            raise ValueError(
                f"got {value!r}; allowed: a block inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10"
            )
        return value

    @field_validator("secondary_cidr")
    @classmethod
    def _secondary_cidr(cls, value: str | None) -> str | None:
        if value is None:
            return value
        net = _parse_cidr(value)
        if not net.subnet_of(SECONDARY_CIDR_RANGE) or not 16 <= net.prefixlen <= 24:
            raise ValueError(f"got {value!r}; allowed: a /16 to /24 block inside 100.64.0.0/10")
        return value

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _check_retention(value)


CapacityType = Literal["on-demand", "spot", "reserved"]
_DURATION = r"^([0-9]+(s|m|h))+$"


def _on_demand_only() -> list[CapacityType]:
    return ["on-demand"]


class CapacityReservationConfig(StrictModel):
    """On-Demand Capacity Reservations or Capacity Blocks a pool should use first."""

    ids: list[Annotated[str, AfterValidator(lambda v: _prefixed_id(v, "cr-"))]] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict, description="Select reservations by tag instead of id.")


def _prefixed_id(value: str, prefix: str) -> str:
    if not value.startswith(prefix) or not value[len(prefix) :].isalnum():
        raise ValueError(f"got {value!r}; expected an id like {prefix}0123456789abcdef0")
    return value


class PoolConfig(StrictModel):
    """A group of Neuron capacity (one Karpenter NodePool + EC2NodeClass)."""

    name: Annotated[str, _dns_label(40)]
    purpose: Literal["training", "inference"]
    instance_types: list[Annotated[str, AfterValidator(_known_instance_type)]] = Field(min_length=1)
    efa: bool = Field(default=False, description="Attach EFA; needs EFA-capable types and one zone.")
    zone: str | None = Field(default=None, description="Pin the pool to one zone (required with efa).")
    capacity_types: list[CapacityType] = Field(default_factory=_on_demand_only, min_length=1)
    capacity_reservations: CapacityReservationConfig | None = None
    max_nodes: int = Field(default=4, ge=1, le=1000)
    root_volume_gib: int | None = Field(default=None, ge=50, le=16384)
    consolidate_after: str | None = Field(default=None, pattern=_DURATION)
    expire_after: str = Field(default="720h", pattern=_DURATION + "|^Never$")
    static_nodes: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Training pools: keep this many nodes running (Karpenter static capacity, an alpha "
        "feature); on EFA pools Kueue then places jobs by network topology on them.",
    )
    neuron_sdk: str | None = Field(
        default=None,
        pattern=r"^\d+\.\d+\.\d+$",
        description="Neuron SDK release of every image the pool runs; default: the newest release with a "
        "supported image for the pool's family and purpose.",
    )
    ami_release: str | None = Field(
        default=None,
        pattern=r"^v\d{8}$",
        description="EKS AL2023 Neuron AMI release (vYYYYMMDD); default: the newest whose driver runs the pool's "
        "runtimes.",
    )

    @field_validator("instance_types")
    @classmethod
    def _one_family(cls, value: list[str]) -> list[str]:
        if len({facts.family_of(n) for n in value}) > 1:
            raise ValueError(f"got {value}; allowed: instance types of one family per pool")
        return value

    @field_validator("capacity_types")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"got {value}; each capacity type may appear once")
        return value

    @property
    def family(self) -> facts.Family:
        return facts.family_of(self.instance_types[0])


class SystemNodesConfig(StrictModel):
    """The small on-demand managed node group for cluster add-ons and controllers."""

    instance_types: list[Annotated[str, AfterValidator(_system_node_type)]] = Field(
        default_factory=lambda: ["m7i.xlarge"], min_length=1
    )
    min_size: int = Field(default=2, ge=1, le=20)
    max_size: int = Field(default=4, ge=1, le=50)
    disk_gib: int = Field(default=50, ge=20, le=1000)


class ClusterConfig(StrictModel):
    """The EKS control plane and its access."""

    admin_principal_arns: list[str] = Field(
        default_factory=list, description="IAM roles/users given cluster-admin through access entries."
    )
    endpoint_public_access_cidrs: list[str] = Field(
        default_factory=list, description="CIDRs allowed to reach the public endpoint; empty means private only."
    )
    service_ipv4_cidr: str = "172.20.0.0/16"
    log_retention_days: int = 365
    system_nodes: SystemNodesConfig = Field(default_factory=SystemNodesConfig)

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _check_retention(value)

    @field_validator("admin_principal_arns")
    @classmethod
    def _arns(cls, value: list[str]) -> list[str]:
        pattern = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$")
        for arn in value:
            if not pattern.match(arn):
                raise ValueError(
                    f"got {arn!r}; expected an IAM role or user ARN like arn:aws:iam::123456789012:role/Admin"
                )
        return value

    @field_validator("endpoint_public_access_cidrs")
    @classmethod
    def _public_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            net = _parse_cidr(cidr)
            if net.prefixlen == 0:
                raise ValueError(
                    f"got {cidr!r}; allowed: specific CIDRs (an open endpoint is what this option prevents)"
                )
        return value

    @field_validator("service_ipv4_cidr")
    @classmethod
    def _service_cidr(cls, value: str) -> str:
        net = _parse_cidr(value)
        if not 12 <= net.prefixlen <= 24 or not any(net.subnet_of(r) for r in PRIVATE_RANGES[:3]):
            raise ValueError(
                f"got {value!r}; allowed: a /12 to /24 block in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
            )
        return value


# FSx for Lustre PERSISTENT_2 sizes: 1.2 TiB, then steps of 2.4 TiB (FSx API reference,
# CreateFileSystem StorageCapacity); throughput tiers in MB/s per TiB of storage.
LUSTRE_MIN_GIB = 1200
LUSTRE_STEP_GIB = 2400
LUSTRE_THROUGHPUTS = (125, 250, 500, 1000)


class SharedStorageConfig(StrictModel):
    """FSx for Lustre shared by the training pods, linked to an S3 data bucket."""

    enabled: bool = Field(default=False, description="Create the file system, the FSx CSI driver and a PVC.")
    storage_gib: int = Field(default=LUSTRE_MIN_GIB, description="1200, or a multiple of 2400, up to 2400000.")
    throughput_mb_per_tib: int = Field(default=250, description="MB/s per TiB: 125, 250, 500 or 1000.")
    data_bucket: BucketName | None = Field(
        default=None, description="Existing bucket to link; unset creates an encrypted, retained bucket."
    )
    data_prefix: str = Field(default="", description="Prefix in the bucket linked at /fsx/data (empty: whole bucket).")

    @field_validator("storage_gib")
    @classmethod
    def _lustre_size(cls, value: int) -> int:
        if value != LUSTRE_MIN_GIB and (value % LUSTRE_STEP_GIB or not 0 < value <= 1000 * LUSTRE_STEP_GIB):
            raise ValueError(
                f"got {value}; allowed: {LUSTRE_MIN_GIB}, or a multiple of {LUSTRE_STEP_GIB} up to "
                f"{1000 * LUSTRE_STEP_GIB} (FSx for Lustre PERSISTENT_2 sizes)"
            )
        return value

    @field_validator("throughput_mb_per_tib")
    @classmethod
    def _throughput(cls, value: int) -> int:
        if value not in LUSTRE_THROUGHPUTS:
            raise ValueError(f"got {value}; allowed: {', '.join(map(str, LUSTRE_THROUGHPUTS))}")
        return value

    @field_validator("data_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value.startswith("/") or "//" in value:
            raise ValueError(f"got {value!r}; allowed: a key prefix without a leading slash, e.g. datasets/")
        return value


# Namespaces training may not share: Kubernetes' own, and those the platform creates for its
# components (their Pod Security level and network policies are not the training ones).
RESERVED_NAMESPACES = frozenset(
    {
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "kubeflow-system",
        "kueue-system",
        "keda",
        "neuron-monitor",
        "neuron-healthcheck-system",
    }
)


class TrainingConfig(StrictModel):
    """Distributed training on the EFA pools (Kubeflow Trainer with a Neuron runtime)."""

    enabled: bool = Field(default=False, description="Install Kubeflow Trainer and a Neuron runtime per EFA pool.")
    namespace: Annotated[str, _dns_label(63)] = Field(
        default="training",
        description="Namespace of TrainJobs, created by the platform (Pod Security baseline, default-deny "
        "network policies); its neuron-training service account gets S3 access.",
    )
    compile_cache_url: str | None = Field(
        default=None, description="s3://bucket/prefix for NEURON_COMPILE_CACHE_URL; unset keeps the cache on the node."
    )

    shared_storage: SharedStorageConfig = Field(default_factory=SharedStorageConfig)

    @field_validator("namespace")
    @classmethod
    def _own_namespace(cls, value: str) -> str:
        if value in RESERVED_NAMESPACES:
            raise ValueError(
                f"got {value!r}; allowed: a namespace of its own (e.g. training), not one Kubernetes or the "
                f"platform already uses ({', '.join(sorted(RESERVED_NAMESPACES))}): the platform creates it with "
                "its Pod Security level and network policies"
            )
        return value

    @field_validator("compile_cache_url")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", value):
            raise ValueError(f"got {value!r}; allowed: an S3 URL like s3://my-bucket/neuron-cache")
        return value


class CompileConfig(StrictModel):
    """The model-compilation pipeline (Step Functions + AWS Batch on memory-optimized EC2)."""

    enabled: bool = Field(default=False, description="Create the artifact store and the compile pipeline.")
    instance_types: list[str] = Field(
        default_factory=lambda: ["r7i.4xlarge", "r7i.8xlarge", "r7i.16xlarge"],
        min_length=1,
        description="Compile machines (memory-optimized; the compiler needs host memory, not Neuron devices).",
    )
    max_vcpus: int = Field(default=128, ge=8, le=4096, description="Upper bound of the Batch compute environment.")
    job_timeout_minutes: int = Field(default=240, ge=15, le=1440)
    disk_gib: int = Field(default=500, ge=100, le=16384, description="Root volume of compile machines.")
    notification_emails: list[EmailAddress] = Field(
        default_factory=list, description="Failure notifications (SNS email)."
    )
    model_buckets: list[BucketName] = Field(
        default_factory=list, description="Buckets of s3:// model sources (read-only)."
    )
    hf_token_secret_arn: str | None = Field(
        default=None, description="Secrets Manager secret holding a Hugging Face token for gated models."
    )
    model_bucket_account: str | None = Field(
        default=None,
        pattern=r"^\d{12}$",
        description="Account that must own the model_buckets (default: the deploying account).",
    )

    @field_validator("instance_types")
    @classmethod
    def _machines(cls, value: list[str]) -> list[str]:
        for name in value:
            facts.compile_machine(name)  # raises with the allowed list
        if len(set(value)) != len(value):
            raise ValueError(f"got {value}; each type may appear once")
        return value

    @field_validator("hf_token_secret_arn")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$", value):
            raise ValueError(f"got {value!r}; allowed: a Secrets Manager secret ARN")
        return value


class ServingConfig(StrictModel):
    """Serving endpoints (one spec each), on EKS or SageMaker, loading compiled artifacts."""

    namespace: Annotated[str, _dns_label(63)] = Field(default="serving", description="Namespace of EKS endpoints.")
    endpoints: list[ServingSpec] = Field(default_factory=list)

    @field_validator("namespace")
    @classmethod
    def _own_namespace(cls, value: str) -> str:
        # The serving stack labels this namespace for Pod Security and puts default-deny
        # network policies in it: never a namespace Kubernetes or another part uses.
        from neuron_platform.k8s.compile import COMPILE_NAMESPACE  # here: k8s modules import config

        taken = RESERVED_NAMESPACES | {COMPILE_NAMESPACE}
        if value in taken:
            raise ValueError(
                f"got {value!r}; allowed: a namespace of its own (e.g. serving), not one of {', '.join(sorted(taken))}"
            )
        return value


class PrometheusConfig(StrictModel):
    """Neuron and cluster metrics in Amazon Managed Service for Prometheus, alerts to the topic."""

    enabled: bool = Field(
        default=True,
        description="With operations or EKS endpoints: the Prometheus workspace, collector, alert rules and KEDA.",
    )
    scrape_interval_seconds: int = Field(default=60, ge=30, le=300, description="How often the collector scrapes.")
    idle_core_utilization: float = Field(
        default=0.05, gt=0, lt=1, description="NeuronCore utilization below which a loaded core counts as idle."
    )
    idle_core_minutes: int = Field(default=60, ge=5, description="Minutes of idle loaded cores before NeuronCoresIdle.")
    pending_pod_minutes: int = Field(default=15, ge=1, description="Minutes a pod may wait for a node.")
    execution_errors_per_10_minutes: int = Field(
        default=1, ge=1, description="Neuron runtime execution errors per node in 10 minutes that alert."
    )


class OperationsConfig(StrictModel):
    """Alarms, the cost guard and the operations dashboard."""

    enabled: bool = Field(default=False, description="Create the operations stack: alarms, budget, dashboard.")
    alarm_emails: list[EmailAddress] = Field(
        default_factory=list, description="Email subscriptions of the alarm topic."
    )
    monthly_budget_usd: int | None = Field(
        default=None, ge=1, description="AWS Budget on the project's cost-allocation tag; unset: no budget."
    )
    budget_alert_percent: int = Field(default=80, ge=1, le=1000, description="Actual spend that alerts, % of budget.")
    interruption_backlog: int = Field(
        default=10, ge=1, description="Interruption messages waiting 15 minutes that mean Karpenter is not draining."
    )
    endpoint_5xx_per_5_minutes: int = Field(default=5, ge=1, description="Server errors per endpoint in 5 minutes.")
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig)


class PlatformConfig(StrictModel):
    """The whole configuration file."""

    project: ProjectConfig
    network: NetworkConfig
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    pools: list[PoolConfig] = Field(default_factory=list)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    compile: CompileConfig = Field(default_factory=CompileConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    operations: OperationsConfig = Field(default_factory=OperationsConfig)

    @property
    def uses_efa(self) -> bool:
        return any(p.efa for p in self.pools)

    @property
    def eks_endpoints(self) -> list[ServingSpec]:
        return [e for e in self.serving.endpoints if e.backend == "eks"]

    @property
    def collects_metrics(self) -> bool:
        """A managed Prometheus collector scrapes the cluster: for the operations alerts and
        dashboard, and for the autoscaling of EKS endpoints."""
        return self.operations.prometheus.enabled and (self.operations.enabled or bool(self.eks_endpoints))

    @property
    def efa_training_pools(self) -> list[PoolConfig]:
        return [p for p in self.pools if p.efa and p.purpose == "training"]

    def endpoint(self, name: str) -> ServingSpec | None:
        return next((e for e in self.serving.endpoints if e.name == name), None)

    def pool(self, name: str) -> PoolConfig | None:
        return next((p for p in self.pools if p.name == name), None)

    def pool_stack(self, name: str) -> PoolStack:
        """The resolved Neuron stack (SDK, AMI, images) of pool ``name``."""
        pool = self.pool(name)
        if pool is None:
            raise KeyError(name)
        return pool_stack(pool)

    def endpoint_pool(self, spec: ServingSpec) -> PoolConfig | None:
        """The inference pool an EKS endpoint runs on (None for SageMaker); raises
        :class:`EndpointPoolError` when the config has no such inference pool. The one rule
        for ``config validate``, synthesis and ``plan --config``."""
        if spec.backend != "eks":
            return None
        pool = self.pool(str(spec.pool))
        if pool is None or pool.purpose != "inference":
            inference = [p.name for p in self.pools if p.purpose == "inference"]
            raise EndpointPoolError(
                f"got {spec.pool!r}; allowed: an inference pool: {', '.join(inference) or 'none configured'}"
            )
        return pool

    def plan_endpoint(self, spec: ServingSpec) -> ServingPlan:
        """The planner over the endpoint's pool (EKS) or SageMaker, with the images they run."""
        pool = self.endpoint_pool(spec)
        if pool is not None:
            return plan(spec, pool_types=pool.instance_types, project=self.project.name, pool_stack=pool_stack(pool))
        return plan(spec, project=self.project.name)

    @property
    def training_zone(self) -> str | None:
        """The one zone of the EFA training pools (where shared storage goes), if they share one."""
        zones = {p.zone for p in self.efa_training_pools}
        return zones.pop() if len(zones) == 1 else None


class EndpointPoolError(PlanError):
    """An EKS endpoint names a pool the config does not have as an inference pool."""

    field = "pool"


def pool_stack(pool: PoolConfig) -> PoolStack:
    """The Neuron stack of ``pool`` (raises :class:`NeuronStackError` naming the field)."""
    return _pool_stack(pool.name, pool.family, pool.purpose, pool.neuron_sdk, pool.ami_release)


@cache
def _pool_stack(name: str, family: facts.Family, purpose: str, sdk: str | None, ami: str | None) -> PoolStack:
    return resolve_pool(name=name, family=family, purpose=purpose, sdk=sdk, ami_release=ami)


def load_config(path: str | Path) -> PlatformConfig:
    """Load and validate a configuration file."""
    path = Path(path)
    return parse_config(read_yaml(path, PlatformConfig), source=str(path))


def parse_config(data: Mapping[str, Any], *, source: str = "<config>") -> PlatformConfig:
    """Validate an already-loaded mapping."""
    try:
        config = PlatformConfig.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(source, [format_error(e, PlatformConfig) for e in err.errors()]) from None
    issues = list(_semantic_issues(config))
    if issues:
        raise ConfigError(source, [str(i) for i in issues])
    return config


# --- meaning checks ---------------------------------------------------------------


def _semantic_issues(cfg: PlatformConfig) -> Iterable[Issue]:
    region = cfg.project.region
    net = cfg.network
    region_zones = facts.zones_of(region)
    for i, zone in enumerate(net.zones):
        if zone not in region_zones:
            yield Issue(f"network.zones[{i}]", f"got {zone!r}; allowed in {region}: {', '.join(region_zones)}")
    if len(set(net.zones)) != len(net.zones):
        yield Issue("network.zones", f"got {net.zones}; each zone may appear once")

    if net.existing_vpc is not None:
        yield from _existing_vpc_issues(net)
    else:
        yield from _created_vpc_issues(net)

    names = [p.name for p in cfg.pools]
    for i, pool in enumerate(cfg.pools):
        where = f"pools[{i}]"
        if pool.name in names[:i]:
            yield Issue(f"{where}.name", f"got {pool.name!r}; pool names must be unique")
        for j, type_name in enumerate(pool.instance_types):
            family = facts.family_of(type_name)
            if not facts.is_offered(family, region):
                yield Issue(
                    f"{where}.instance_types[{j}]",
                    f"{type_name} is not offered in {region}; regions with {family}: "
                    f"{', '.join(facts.regions_offering(family))}",
                )
            if pool.efa and not facts.instance_type(type_name).efa_capable:
                efa_types = sorted(n for n, t in facts.INSTANCE_TYPES.items() if t.efa_capable)
                yield Issue(
                    f"{where}.instance_types[{j}]",
                    f"{type_name} has no EFA interface; allowed with efa: true: {', '.join(efa_types)}",
                )
        if pool.efa and pool.zone is None:
            yield Issue(f"{where}.zone", "missing; an EFA pool must be pinned to one zone (cluster placement group)")
        if pool.zone is not None and pool.zone not in net.zones:
            yield Issue(f"{where}.zone", f"got {pool.zone!r}; allowed: one of network.zones: {', '.join(net.zones)}")
        if pool.purpose == "training" and "spot" in pool.capacity_types:
            yield Issue(
                f"{where}.capacity_types",
                "got spot for a training pool; allowed: on-demand, reserved (a spot reclaim kills the whole gang)",
            )
        reservations = pool.capacity_reservations
        has_reservations = reservations is not None and bool(reservations.ids or reservations.tags)
        if "reserved" in pool.capacity_types and not has_reservations:
            yield Issue(
                f"{where}.capacity_reservations",
                "missing; capacity type reserved needs reservation ids or tags (Karpenter uses only listed reservations)",
            )
        if has_reservations and "reserved" not in pool.capacity_types:
            yield Issue(
                f"{where}.capacity_types",
                f"got {pool.capacity_types}; add reserved to use the listed capacity_reservations",
            )
        try:
            pool_stack(pool)
        except NeuronStackError as err:
            yield Issue(f"{where}.{err.field}", str(err))
        if pool.static_nodes is not None:
            if pool.purpose != "training":
                yield Issue(
                    f"{where}.static_nodes",
                    f"got {pool.static_nodes}; allowed only on training pools (inference pools scale with traffic)",
                )
            elif pool.static_nodes > pool.max_nodes:
                yield Issue(
                    f"{where}.static_nodes",
                    f"got {pool.static_nodes}; allowed: at most max_nodes ({pool.max_nodes})",
                )
    yield from _cluster_issues(cfg)
    yield from _serving_issues(cfg)
    if cfg.training.enabled and not cfg.efa_training_pools:
        yield Issue(
            "training.enabled",
            "got true, but no pool has purpose: training and efa: true; add one (multi-node training runs on EFA pools)",
        )
    if cfg.training.enabled and cfg.eks_endpoints and cfg.training.namespace == cfg.serving.namespace:
        yield Issue(
            "training.namespace",
            f"got {cfg.training.namespace!r}, the namespace of the EKS endpoints (serving.namespace); allowed: "
            "another namespace (each has its own network policies and Pod Identity roles)",
        )
    storage = cfg.training.shared_storage
    if storage.enabled and not cfg.training.enabled:
        yield Issue("training.shared_storage.enabled", "got true; allowed only with training.enabled: true")
    elif storage.enabled and cfg.efa_training_pools and cfg.training_zone is None:
        zones = sorted({str(p.zone) for p in cfg.efa_training_pools})
        yield Issue(
            "training.shared_storage.enabled",
            f"got true, but the EFA training pools span zones {', '.join(zones)}; allowed: pools in one zone "
            "(the file system sits in the zone of the nodes that read it)",
        )


def _serving_issues(cfg: PlatformConfig) -> Iterable[Issue]:
    endpoints = cfg.serving.endpoints
    if endpoints and not cfg.compile.enabled:
        yield Issue("serving.endpoints", "endpoints load compiled artifacts; set compile.enabled: true")
    names = [e.name for e in endpoints]
    for i, endpoint in enumerate(endpoints):
        where = f"serving.endpoints[{i}]"
        if endpoint.name in names[:i]:
            yield Issue(f"{where}.name", f"got {endpoint.name!r}; endpoint names must be unique")
        certificate_region = endpoint.certificate_arn.split(":")[3] if endpoint.certificate_arn else None
        if certificate_region is not None and certificate_region != cfg.project.region:
            yield Issue(
                f"{where}.certificate_arn",
                f"got {endpoint.certificate_arn!r} (region {certificate_region}); allowed: a certificate in "
                f"project.region {cfg.project.region} (the load balancer's region)",
            )
        if endpoint.backend == "eks":
            try:
                pool = cfg.endpoint_pool(endpoint)
            except EndpointPoolError as err:
                yield Issue(f"{where}.pool", str(err))
                continue
            assert pool is not None
            if endpoint.replicas.max > endpoint.replicas.min and not cfg.operations.prometheus.enabled:
                yield Issue(
                    f"{where}.replicas.max",
                    f"got {endpoint.replicas.max}; EKS endpoints scale on vLLM metrics from the Prometheus "
                    f"workspace; allowed: {endpoint.replicas.min} (replicas.min) while operations.prometheus.enabled "
                    "is false",
                )
            try:
                pool_stack(pool)
            except NeuronStackError:
                continue  # reported under pools[]
        if endpoint.compile_image is not None:
            image_problems = spec_rules.compile_image_problems(
                endpoint.compile_image, repository_name=f"{cfg.project.name}-neuron", region=cfg.project.region
            )
            yield from (Issue(f"{where}.compile_image", problem) for problem in image_problems)
            if image_problems:
                continue
        try:
            cfg.plan_endpoint(endpoint)
        except NeuronStackError as err:
            yield Issue(f"{where}.{err.field}", str(err))
        except PlanError as err:
            yield Issue(where, str(err))


def _cluster_issues(cfg: PlatformConfig) -> Iterable[Issue]:
    cluster = cfg.cluster
    if cluster.system_nodes.min_size > cluster.system_nodes.max_size:
        yield Issue(
            "cluster.system_nodes.min_size",
            f"got {cluster.system_nodes.min_size}; allowed: at most max_size ({cluster.system_nodes.max_size})",
        )
    service = ipaddress.IPv4Network(cluster.service_ipv4_cidr)
    net = cfg.network
    vpc_blocks = {"network.vpc_cidr": net.vpc_cidr}
    if net.existing_vpc is not None:
        vpc_blocks = {"network.existing_vpc.vpc_cidr": net.existing_vpc.vpc_cidr}
    if net.secondary_cidr:
        vpc_blocks["network.secondary_cidr"] = net.secondary_cidr
    for field, block in vpc_blocks.items():
        if service.overlaps(ipaddress.IPv4Network(block)):
            yield Issue(
                "cluster.service_ipv4_cidr",
                f"got {cluster.service_ipv4_cidr!r}; overlaps {field} {block}; allowed: a block outside the VPC",
            )


def _created_vpc_issues(net: NetworkConfig) -> Iterable[Issue]:
    if net.nat_gateways > len(net.zones):
        yield Issue(
            "network.nat_gateways",
            f"got {net.nat_gateways}; allowed: 1 to {len(net.zones)} (one per zone at most)",
        )
    vpc = ipaddress.IPv4Network(net.vpc_cidr)
    try:
        plan_subnets(
            vpc,
            zones=len(net.zones),
            public_prefix=net.public_subnet_prefix,
            private_prefix=net.private_subnet_prefix,
        )
    except SubnetLayoutError as err:
        yield Issue(
            "network.private_subnet_prefix", _layout_message(net.private_subnet_prefix, err, "network.vpc_cidr")
        )
    if net.secondary_cidr is not None:
        secondary = ipaddress.IPv4Network(net.secondary_cidr)
        if secondary.overlaps(vpc):
            yield Issue(
                "network.secondary_cidr",
                f"got {net.secondary_cidr!r}; overlaps network.vpc_cidr {net.vpc_cidr}; "
                "allowed: a non-overlapping block",
            )
        else:
            try:
                plan_subnets(
                    secondary, zones=len(net.zones), public_prefix=None, private_prefix=net.secondary_subnet_prefix
                )
            except SubnetLayoutError as err:
                yield Issue(
                    "network.secondary_subnet_prefix",
                    _layout_message(net.secondary_subnet_prefix, err, "network.secondary_cidr"),
                )


def _layout_message(prefix: int, err: SubnetLayoutError, block_field: str) -> str:
    fix = f"{err.smallest_fitting_prefix} or more, or " if err.smallest_fitting_prefix else ""
    return (
        f"got {prefix}; the subnets need {err.needed} addresses but {block_field} has {err.available}; "
        f"allowed: {fix}a larger {block_field}"
    )


# Fields that describe a VPC we create; with existing_vpc they would be silently ignored.
_CREATE_ONLY_FIELDS = (
    "vpc_cidr",
    "private_subnet_prefix",
    "public_subnet_prefix",
    "nat_gateways",
    "secondary_cidr",
    "secondary_subnet_prefix",
    "interface_endpoints",
)


def _existing_vpc_issues(net: NetworkConfig) -> Iterable[Issue]:
    existing = net.existing_vpc
    assert existing is not None
    for name in _CREATE_ONLY_FIELDS:
        if name in net.model_fields_set:
            yield Issue(
                f"network.{name}",
                "only applies when the stack creates the VPC; remove it or remove network.existing_vpc",
            )
    for key, ids in (
        ("private_subnet_ids", existing.private_subnet_ids),
        ("public_subnet_ids", existing.public_subnet_ids),
    ):
        if ids and len(ids) != len(net.zones):
            yield Issue(
                f"network.existing_vpc.{key}",
                f"got {len(ids)} subnet ids; allowed: exactly one per zone in network.zones ({len(net.zones)})",
            )
        if len(set(ids)) != len(ids):
            yield Issue(f"network.existing_vpc.{key}", f"got {ids}; each subnet id may appear once")
