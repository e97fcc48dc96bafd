"""Capacity decisions for a Neuron pool (plain Python, no CDK).

Turns a validated :class:`~neuron_platform.config.PoolConfig` into the numbers a
Karpenter NodePool and EC2NodeClass need: limits, disruption, volumes, EFA.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuron_platform import facts
from neuron_platform.config import PoolConfig, pool_stack
from neuron_platform.neuron_stack import PoolStack

NEURON_RESOURCE = "aws.amazon.com/neuron"
NEURON_CORE_RESOURCE = "aws.amazon.com/neuroncore"
EFA_RESOURCE = "vpc.amazonaws.com/efa"
# 2 MiB hugepages: libfabric's EFA provider registers its buffers in them.
HUGEPAGES_RESOURCE = "hugepages-2Mi"
NEURON_TAINT_KEY = "aws.amazon.com/neuron"

POOL_LABEL = "neuron-platform/pool"
PURPOSE_LABEL = "neuron-platform/purpose"
EFA_LABEL = "neuron-platform/efa"

# Root volume: inf2 has no instance store, so images (10-20 GB Neuron DLCs), the
# compile cache and model downloads all land on EBS. trn types put kubelet and
# containerd storage on the RAID0 NVMe array, so the root volume only holds the OS.
ROOT_VOLUME_GIB = {facts.Family.INF2: 500, facts.Family.TRN1: 100, facts.Family.TRN1N: 100, facts.Family.TRN2: 100}

# Training nodes are expensive to re-acquire (reservations, placement groups): keep
# an empty node a while for the next job. Inference scales with traffic.
CONSOLIDATE_AFTER = {"training": "30m", "inference": "5m"}
CONSOLIDATION_POLICY = {"training": "WhenEmpty", "inference": "WhenEmptyOrUnderutilized"}


@dataclass(frozen=True)
class PoolPlan:
    """Everything derived for one pool."""

    name: str
    purpose: str
    family: facts.Family
    instance_types: tuple[str, ...]
    capacity_types: tuple[str, ...]
    zone: str | None
    efa: bool
    efa_interfaces: int
    neuron_devices_per_node: int
    root_volume_gib: int
    raid0_instance_store: bool
    consolidation_policy: str
    consolidate_after: str
    expire_after: str
    limits: dict[str, str]
    reservation_ids: tuple[str, ...]
    reservation_tags: dict[str, str]
    # Karpenter static capacity: this many nodes kept running (None: scale with pods).
    static_nodes: int | None
    max_nodes: int
    # The pool's Neuron stack: its AMI release (per pool: pools may run different drivers)
    # and the images that run on it.
    neuron: PoolStack

    @property
    def ami_alias(self) -> str:
        return self.neuron.ami_alias

    @property
    def nodes(self) -> int:
        """The most nodes the pool runs: its static capacity, or max_nodes."""
        return self.static_nodes or self.max_nodes

    @property
    def node_type(self) -> facts.NeuronInstanceType:
        """The type whole-node training pods (and the pool's Kueue quota) are sized for: the
        first listed."""
        return facts.instance_type(self.instance_types[0])

    @property
    def network_topology(self) -> bool:
        """Kueue can place this pool's jobs by network topology: EFA nodes that exist ahead of jobs
        (static capacity) of types EC2 reports a topology for."""
        return (
            self.efa
            and self.static_nodes is not None
            and all(n in facts.NETWORK_TOPOLOGY_LAYERS for n in self.instance_types)
        )

    @property
    def labels(self) -> dict[str, str]:
        labels = {POOL_LABEL: self.name, PURPOSE_LABEL: self.purpose}
        if self.efa:
            labels[EFA_LABEL] = "true"
        return labels


def plan_pool(pool: PoolConfig) -> PoolPlan:
    """Derive the :class:`PoolPlan` of one pool: what :class:`~neuron_platform.cluster.NeuronNodePool`
    (NodePool and EC2NodeClass), :class:`~neuron_platform.cluster.TrainingPlatform` and
    :class:`~neuron_platform.cluster.GangAdmission` build from.

    - capacity types ordered reserved, on-demand, spot (Karpenter prefers the first);
    - EFA interfaces per node: the fewest any listed type has (0 without EFA);
    - Neuron devices per node and the NodePool ``limits``: from the largest listed type, so
      ``max_nodes`` of it fit and no more (a static pool gets only a node limit, as
      Karpenter's CRD requires);
    - root volume: ``root_volume_gib`` or the family default (:data:`ROOT_VOLUME_GIB`); RAID0
      over the instance store when every listed type has one;
    - disruption: consolidation policy by purpose, ``consolidate_after`` (default by
      purpose, :data:`CONSOLIDATE_AFTER`) and ``expire_after``;
    - capacity reservation ids and tags, static node count;
    - the pool's Neuron stack (SDK, AMI release, images; see :mod:`neuron_platform.neuron_stack`),
      which raises :class:`~neuron_platform.neuron_stack.NeuronStackError` when none fits.

    Plain Python, no CDK: a ``PoolConfig`` built directly is validated field by field; the
    checks across fields (zones, pool names) run in :func:`neuron_platform.config.load_config`.

    Example::

        plan = plan_pool(
            PoolConfig(name="trn2", purpose="training", instance_types=["trn2.48xlarge"], efa=True, zone="us-east-2b")
        )
        plan.limits, plan.capacity_types, plan.neuron.ami_alias
    """
    types = [facts.instance_type(n) for n in pool.instance_types]
    largest = max(types, key=lambda t: (t.neuron_devices, t.vcpu))
    reservations = pool.capacity_reservations
    # Reserved first: Karpenter prefers reserved capacity when the pool allows it.
    order = {"reserved": 0, "on-demand": 1, "spot": 2}
    return PoolPlan(
        name=pool.name,
        purpose=pool.purpose,
        family=pool.family,
        instance_types=tuple(pool.instance_types),
        capacity_types=tuple(sorted(pool.capacity_types, key=order.__getitem__)),
        zone=pool.zone,
        efa=pool.efa,
        efa_interfaces=min(t.efa_interfaces for t in types) if pool.efa else 0,
        neuron_devices_per_node=largest.neuron_devices,
        root_volume_gib=pool.root_volume_gib or ROOT_VOLUME_GIB[pool.family],
        raid0_instance_store=all(t.instance_store for t in types),
        consolidation_policy=CONSOLIDATION_POLICY[pool.purpose],
        consolidate_after=pool.consolidate_after or CONSOLIDATE_AFTER[pool.purpose],
        expire_after=pool.expire_after,
        # A static NodePool accepts only a node limit (Karpenter's CRD rule); max_nodes above
        # static_nodes lets Karpenter launch replacements (drift, expiry) before removing nodes.
        limits={"nodes": str(pool.max_nodes)} if pool.static_nodes else pool_limits(pool.max_nodes, types),
        reservation_ids=tuple(reservations.ids) if reservations else (),
        reservation_tags=dict(reservations.tags) if reservations else {},
        static_nodes=pool.static_nodes,
        max_nodes=pool.max_nodes,
        neuron=pool_stack(pool),
    )


def pool_limits(max_nodes: int, types: list[facts.NeuronInstanceType]) -> dict[str, str]:
    """NodePool limits that admit ``max_nodes`` of the largest type and no more."""
    return {
        "cpu": str(max_nodes * max(t.vcpu for t in types)),
        "memory": f"{max_nodes * max(t.host_memory_gib for t in types)}Gi",
        NEURON_RESOURCE: str(max_nodes * max(t.neuron_devices for t in types)),
    }
