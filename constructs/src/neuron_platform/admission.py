"""Gang admission for training: one Kueue queue per training runtime's pool, its quota the
pool's capacity.

Plain Python (no CDK). A pool is the unit of Neuron capacity and of the training runtime
(``neuronx-<pool>``, one per EFA training pool), so each such pool gets one ClusterQueue
with one ResourceFlavor whose nominal quota is exactly what the pool can hold: its nodes
(``static_nodes`` when the pool keeps a fixed number, else ``max_nodes``) times one node of
the type its runtime is sized for (devices, EFA interfaces, vCPUs, memory, the hugepages EFA
nodes reserve at boot), all from the instance facts. No cohort, no borrowing: pools are
different hardware, and a job that borrowed another pool's quota could not run on its nodes.
A LocalQueue of the same name in the training namespace points at each ClusterQueue.

:func:`fits` is a plain model of Kueue's quota check for a workload on a one-flavor queue
(every pod set's requests times its count, summed per resource, within the flavor's nominal
quota of every resource, and every requested resource covered), used to refuse, before
submission, a job that could never be admitted. :func:`trainjob_pod_sets` derives the pod
sets Kueue sees for a TrainJob from the job and its runtime, as the Trainer builds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from neuron_platform import facts
from neuron_platform.capacity import EFA_RESOURCE, HUGEPAGES_RESOURCE, NEURON_RESOURCE, POOL_LABEL, PoolPlan
from neuron_platform.k8s.karpenter import EFA_HUGEPAGES_PAGES

# What an EFA node reserves at boot: EFA_HUGEPAGES_PAGES pages of 2 MiB.
EFA_NODE_HUGEPAGES_MIB = EFA_HUGEPAGES_PAGES * 2
# Resources every training queue covers. Kueue refuses a workload that requests a resource
# its queue does not cover, so these are every resource a Neuron training pod may request.
COVERED_RESOURCES = ("cpu", "memory", NEURON_RESOURCE, EFA_RESOURCE, HUGEPAGES_RESOURCE)
QUEUE_NAME_LABEL = "kueue.x-k8s.io/queue-name"
# The Topology the EFA pools with static capacity are placed by: EC2's network layers, coarse
# to fine, then the node (Kueue requires kubernetes.io/hostname, if present, to be last).
TOPOLOGY_NAME = "neuron-network"
TOPOLOGY_LEVELS = (
    facts.NETWORK_NODE_LABEL.format(layer=1),
    facts.NETWORK_NODE_LABEL.format(layer=2),
    facts.NETWORK_NODE_LABEL.format(layer=3),
    "kubernetes.io/hostname",
)
# What a job asks of the topology (Kueue's pod-set annotations; at most one per pod set).
TOPOLOGY_ANNOTATIONS = {
    "required": "kueue.x-k8s.io/podset-required-topology",
    "preferred": "kueue.x-k8s.io/podset-preferred-topology",
}
TOPOLOGY_CHOICES = ("required", "preferred", "none")
# The level a job asks for: the most selective network layer, one block of EFA nodes under
# the same network node.
TOPOLOGY_LEVEL = facts.NETWORK_NODE_LABEL.format(layer=3)


def queue_name(pool: str) -> str:
    """ClusterQueue, LocalQueue and ResourceFlavor share this name."""
    return f"neuron-{pool}"


def _quantity(resource: str, amount: int) -> str:
    if resource == "memory":
        return f"{amount}Gi"
    if resource == HUGEPAGES_RESOURCE:
        return f"{amount}Mi"
    return str(amount)


def node_capacity(instance: facts.NeuronInstanceType, *, efa: bool) -> dict[str, int]:
    """What one node of ``instance`` offers per covered resource (memory in GiB, hugepages in MiB)."""
    return {
        "cpu": instance.vcpu,
        "memory": instance.host_memory_gib,
        NEURON_RESOURCE: instance.neuron_devices,
        EFA_RESOURCE: instance.efa_interfaces if efa else 0,
        HUGEPAGES_RESOURCE: EFA_NODE_HUGEPAGES_MIB if efa else 0,
    }


@dataclass(frozen=True)
class TrainingQueue:
    """The Kueue objects of one training pool, as names and numbers."""

    pool: str
    name: str
    instance_type: str
    node_labels: Mapping[str, str]
    # Placed by network topology (the ResourceFlavor names the Topology).
    topology: bool
    nodes: int
    per_node: Mapping[str, int]
    reserved: bool

    @property
    def quota_amounts(self) -> dict[str, int]:
        """Nominal quota per covered resource: the pool's nodes times one node's capacity."""
        return {r: self.nodes * self.per_node[r] for r in COVERED_RESOURCES}

    @property
    def quota(self) -> dict[str, str]:
        """The same, as Kubernetes quantities."""
        return {r: _quantity(r, amount) for r, amount in self.quota_amounts.items()}


def training_queue(plan: PoolPlan) -> TrainingQueue:
    return TrainingQueue(
        pool=plan.name,
        name=queue_name(plan.name),
        instance_type=plan.node_type.name,
        node_labels={POOL_LABEL: plan.name},
        topology=plan.network_topology,
        nodes=plan.nodes,
        per_node=node_capacity(plan.node_type, efa=plan.efa),
        reserved=bool(plan.reservation_ids or plan.reservation_tags),
    )


def training_queues(plans: Sequence[PoolPlan]) -> list[TrainingQueue]:
    """One queue per pool with a training runtime (EFA training pools); pools on capacity
    reservations first, then by name (the order docs/training.md's queue table shows)."""
    training = [p for p in plans if p.purpose == "training" and p.efa]
    queues = [training_queue(p) for p in training]
    return sorted(queues, key=lambda q: (not q.reserved, q.pool))


# --- the admission model ------------------------------------------------------------------------


def parse_quantity(value: str | int, resource: str) -> int:
    """A request in the unit quotas use: ``384Gi`` -> 384 (memory, GiB), ``5120Mi`` -> 5120
    (hugepages, MiB), ``16`` -> 16, ``500m`` -> 1 (cpu, rounded up: never under-counted)."""
    text = str(value)
    if resource == "cpu" and text.endswith("m"):
        return -(-int(text[:-1]) // 1000)
    units: dict[str, dict[str, float]] = {
        "memory": {"Ki": 1 / 1024**2, "Mi": 1 / 1024, "Gi": 1, "Ti": 1024},
        HUGEPAGES_RESOURCE: {"Mi": 1, "Gi": 1024},
    }
    for suffix, factor in units.get(resource, {}).items():
        if text.endswith(suffix):
            amount = float(text[: -len(suffix)]) * factor
            return int(amount) if amount == int(amount) else int(amount) + 1
    return int(text)


@dataclass(frozen=True)
class PodSet:
    """``count`` pods, each requesting ``requests`` (Kubernetes quantities)."""

    name: str
    count: int
    requests: Mapping[str, str]


def fits(pod_sets: Sequence[PodSet], queue: TrainingQueue) -> list[str]:
    """Why Kueue could never admit these pod sets to ``queue``; empty when they fit its quota.

    Kueue admits a workload to a one-flavor queue without borrowing when, for every resource
    it requests, the sum over pod sets of count x per-pod request is within the flavor's
    nominal quota, and every requested resource is covered by the queue.
    """
    totals: dict[str, int] = {}
    for pod_set in pod_sets:
        for resource, value in pod_set.requests.items():
            totals[resource] = totals.get(resource, 0) + pod_set.count * parse_quantity(value, resource)
    quota = queue.quota_amounts
    problems = []
    for resource, total in sorted(totals.items()):
        if resource not in quota:
            problems.append(f"{resource} is not a resource queue {queue.name} covers ({', '.join(COVERED_RESOURCES)})")
        elif total > quota[resource]:
            problems.append(
                f"{resource}: the job asks {_quantity(resource, total)}, queue {queue.name} holds "
                f"{_quantity(resource, quota[resource])} ({queue.nodes} x {queue.instance_type})"
            )
    return problems


def trainjob_pod_sets(job: Mapping[str, Any], runtime: Mapping[str, Any]) -> list[PodSet]:
    """The pod sets Kueue sees for ``job`` on ``runtime``: one per replicated job of the
    runtime's JobSet template, the trainer's job (``node``) with ``numNodes`` pods.

    Requests are per container summed (init containers would be a max; the Neuron runtimes
    have none), as ``requests`` or, where absent, ``limits`` (Kubernetes defaults one to the
    other).
    """
    num_nodes = int(job["spec"]["trainer"].get("numNodes", runtime["spec"]["mlPolicy"]["numNodes"]))
    pod_sets = []
    for replicated in runtime["spec"]["template"]["spec"]["replicatedJobs"]:
        pod_spec = replicated["template"]["spec"]["template"]["spec"]
        if pod_spec.get("initContainers"):
            raise ValueError(f"runtime {runtime['metadata']['name']}: init containers are not modelled")
        requests: dict[str, int] = {}
        for container in pod_spec["containers"]:
            resources = container.get("resources", {})
            for resource, value in (resources.get("requests") or resources.get("limits") or {}).items():
                requests[resource] = requests.get(resource, 0) + parse_quantity(value, resource)
        count = num_nodes if replicated["name"] == "node" else int(replicated.get("replicas", 1))
        pod_sets.append(
            PodSet(
                name=replicated["name"],
                count=count,
                requests={r: _quantity(r, amount) for r, amount in requests.items()},
            )
        )
    return pod_sets


def queue_table(queues: Sequence[TrainingQueue]) -> list[str]:
    """The queues as a Markdown table (``python -m neuron_platform queues``, docs/training.md)."""
    lines = [
        "| Queue | Pool | Nodes | Neuron devices | EFA | vCPU | Memory | hugepages-2Mi | Placement |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for q in queues:
        quota = q.quota
        placement = "by network block (Topology `neuron-network`)" if q.topology else "anywhere in the pool"
        nodes = f"{q.nodes} x {q.instance_type}" + (" (reserved first)" if q.reserved else "")
        lines.append(
            f"| `{q.name}` | {q.pool} | {nodes} | {quota[NEURON_RESOURCE]} | {quota[EFA_RESOURCE]} | {quota['cpu']} "
            f"| {quota['memory']} | {quota[HUGEPAGES_RESOURCE]} | {placement} |"
        )
    return lines
