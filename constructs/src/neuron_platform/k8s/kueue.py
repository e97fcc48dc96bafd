"""Kueue objects for gang admission of TrainJobs (kueue.x-k8s.io/v1beta2, Kueue 0.19).

Per training pool (see :mod:`neuron_platform.admission`): a ResourceFlavor selecting the
pool's nodes and tolerating the Neuron taint, a ClusterQueue whose nominal quota is the
pool's capacity, and a LocalQueue in the training namespace. EFA pools whose nodes exist
ahead of jobs also reference the ``neuron-network`` Topology, so Kueue places a job's pods
within one network block.
"""

from __future__ import annotations

from neuron_platform.admission import COVERED_RESOURCES, TOPOLOGY_LEVELS, TOPOLOGY_NAME, TrainingQueue
from neuron_platform.k8s import Manifest
from neuron_platform.k8s.helm_values import NEURON_TOLERATION

KUEUE_API = "kueue.x-k8s.io/v1beta2"
KUEUE_NAMESPACE = "kueue-system"


def network_topology() -> Manifest:
    """EC2's three network layers, coarse to fine, then the node."""
    return {
        "apiVersion": KUEUE_API,
        "kind": "Topology",
        "metadata": {"name": TOPOLOGY_NAME},
        "spec": {"levels": [{"nodeLabel": label} for label in TOPOLOGY_LEVELS]},
    }


def resource_flavor(queue: TrainingQueue) -> Manifest:
    """The pool's nodes: its pool label, the Neuron taint tolerated, and the Topology when
    the pool is placed by network topology (Kueue then admits only onto existing nodes)."""
    spec: dict[str, object] = {"nodeLabels": dict(queue.node_labels), "tolerations": [dict(NEURON_TOLERATION)]}
    if queue.topology:
        spec["topologyName"] = TOPOLOGY_NAME
    return {"apiVersion": KUEUE_API, "kind": "ResourceFlavor", "metadata": {"name": queue.name}, "spec": spec}


def cluster_queue(queue: TrainingQueue, *, namespace: str) -> Manifest:
    """The pool's quota, open to the training namespace only.

    BestEffortFIFO (Kueue's default): a job that does not fit now does not block a smaller
    one behind it. No cohort, so nothing is borrowed or lent and nothing is preempted.
    """
    quota = queue.quota
    return {
        "apiVersion": KUEUE_API,
        "kind": "ClusterQueue",
        "metadata": {"name": queue.name},
        "spec": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "queueingStrategy": "BestEffortFIFO",
            "resourceGroups": [
                {
                    "coveredResources": list(COVERED_RESOURCES),
                    "flavors": [
                        {
                            "name": queue.name,
                            "resources": [{"name": r, "nominalQuota": quota[r]} for r in COVERED_RESOURCES],
                        }
                    ],
                }
            ],
        },
    }


def local_queue(queue: TrainingQueue, *, namespace: str) -> Manifest:
    """What TrainJobs name in their ``kueue.x-k8s.io/queue-name`` label."""
    return {
        "apiVersion": KUEUE_API,
        "kind": "LocalQueue",
        "metadata": {"name": queue.name, "namespace": namespace},
        "spec": {"clusterQueue": queue.name},
    }


def admission_objects(queues: list[TrainingQueue], *, namespace: str) -> list[Manifest]:
    """Everything Kueue needs for ``queues``, in apply order (Topology, flavors, queues)."""
    objects: list[Manifest] = []
    if any(q.topology for q in queues):
        objects.append(network_topology())
    objects += [resource_flavor(q) for q in queues]
    objects += [cluster_queue(q, namespace=namespace) for q in queues]
    objects += [local_queue(q, namespace=namespace) for q in queues]
    return objects
