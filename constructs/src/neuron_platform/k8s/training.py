"""Objects for multi-node Neuron training: the Trainer runtime per EFA pool and the
Karpenter NodeOverlay that makes EFA hugepages visible to scheduling."""

from __future__ import annotations

from neuron_platform import facts
from neuron_platform.admission import (
    QUEUE_NAME_LABEL,
    TOPOLOGY_ANNOTATIONS,
    TOPOLOGY_CHOICES,
    TOPOLOGY_LEVEL,
    TOPOLOGY_NAME,
    queue_name,
)
from neuron_platform.capacity import EFA_RESOURCE, HUGEPAGES_RESOURCE, NEURON_RESOURCE, POOL_LABEL, PoolPlan
from neuron_platform.k8s import Manifest
from neuron_platform.k8s.helm_values import NEURON_SCHEDULER_NAME, NEURON_TOLERATION
from neuron_platform.k8s.pod_security import (
    PodSecurityLevel,
    allow_dns,
    container_security_context,
    default_deny,
    https_egress_anywhere,
    namespace,
    network_policy,
    pod_identity_agent_egress,
    pod_security_context,
)
from neuron_platform.k8s.storage import SHARED_MOUNT_PATH

# libfabric's EFA provider registers its buffers in 2 MiB hugepages; EFA pods
# conventionally ask for 5120Mi (aws-samples awsome-distributed-training EFA jobs). EFA
# node classes reserve them at boot (see karpenter.EFA_HUGEPAGES_USER_DATA).
EFA_HUGEPAGES = "5120Mi"

# EFA settings from the Neuron multi-node training setup: use the EFA libfabric provider
# with device RDMA; fork-safe because the Neuron runtime and dataloaders fork. The pod
# network interface inside a VPC CNI pod is eth0.
EFA_ENV = {
    "FI_PROVIDER": "efa",
    "FI_EFA_USE_DEVICE_RDMA": "1",
    "FI_EFA_FORK_SAFE": "1",
    "CCOM_SOCKET_IFNAME": "eth0",
}

TRAINER_API = "trainer.kubeflow.org/v1alpha1"
# Service account of training pods: its Pod Identity role reaches the compile cache
# (pods cannot use node credentials: IMDS hop limit 1).
TRAINING_SERVICE_ACCOUNT = "neuron-training"


# Pod Security Admission level enforced on the training namespace. Not restricted: the
# Neuron training images run as root (their toolchains, caches and /fsx writes assume it),
# and restricted requires non-root. Baseline admits everything a runtime pod needs (device
# plugin resources, hugepages, a memory-backed emptyDir, the FSx claim) and refuses
# privileged pods, host namespaces, hostPath and added capabilities beyond its default set.
TRAINING_POD_SECURITY: PodSecurityLevel = "baseline"


def training_namespace(namespace_name: str) -> Manifest:
    """The TrainJobs' namespace: Pod Security Admission enforces baseline (warns and audits at restricted)."""
    return namespace(namespace_name, enforce=TRAINING_POD_SECURITY)


def training_service_account(namespace: str) -> Manifest:
    """The runtime pods' identity. No API token is mounted: torchrun's rendezvous goes to the
    first node's pod, never to the Kubernetes API; the Pod Identity credentials do not need one."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": TRAINING_SERVICE_ACCOUNT, "namespace": namespace},
        "automountServiceAccountToken": False,
    }


# Runtime containers: no privilege escalation, every capability dropped, the runtime's default
# seccomp profile; root stays (the images run as root). EFA needs no capability: libfabric
# registers (pins) its buffers under RLIMIT_MEMLOCK, which the EKS AMIs' container runtime sets
# unlimited, and IPC_LOCK (which would lift that limit, and which baseline refuses to add) is
# not even in the container runtime's default set. The Neuron and EFA devices come from
# their device plugins, which need no privilege in the pod.
def training_container_security_context() -> dict[str, object]:
    return container_security_context(run_as_non_root=False)


def training_network_policies(namespace_name: str) -> list[Manifest]:
    """Default deny in the training namespace, then what a job needs:

    - every pod of the namespace to and from every other (on all ports): torchrun's
      rendezvous and the collectives' TCP bootstrap between the pods of a job (EFA's own
      traffic bypasses the pod network and is governed by the EFA security group);
    - DNS (the Trainer's headless service names the first node);
    - the node's Pod Identity agent (credentials for the compile cache);
    - HTTPS anywhere (S3 through the gateway endpoint, AWS APIs, model hubs).

    Nothing outside the namespace may open a connection to its pods.
    """
    same_namespace: list[dict[str, object]] = [{"podSelector": {}}]
    return [
        default_deny(namespace_name),
        allow_dns(namespace_name),
        network_policy(
            "allow-within-namespace",
            namespace_name,
            pod_selector={},
            ingress=[{"from": same_namespace}],
            egress=[{"to": same_namespace}],
        ),
        network_policy(
            "allow-aws-egress",
            namespace_name,
            pod_selector={},
            egress=[pod_identity_agent_egress(), https_egress_anywhere()],
        ),
    ]


def runtime_name(pool: str) -> str:
    return f"neuronx-{pool}"


def hugepages_overlay(plan: PoolPlan) -> Manifest:
    """Tell Karpenter the EFA pool's nodes carry hugepages (needs the NodeOverlay feature gate)."""
    return {
        "apiVersion": "karpenter.sh/v1alpha1",
        "kind": "NodeOverlay",
        "metadata": {"name": f"{plan.name}-hugepages"},
        "spec": {
            "requirements": [{"key": "karpenter.sh/nodepool", "operator": "In", "values": [plan.name]}],
            "capacity": {HUGEPAGES_RESOURCE: EFA_HUGEPAGES},
        },
    }


def node_resources(instance_type: str) -> dict[str, str]:
    """Requests for one whole-node training pod: every device and EFA interface of the type."""
    t = facts.instance_type(instance_type)
    return {
        NEURON_RESOURCE: str(t.neuron_devices),
        EFA_RESOURCE: str(t.efa_interfaces),
        HUGEPAGES_RESOURCE: EFA_HUGEPAGES,
        # Hugepages need a memory request; leave a quarter of host memory to the system and pods.
        "memory": f"{t.host_memory_gib * 3 // 4}Gi",
    }


# Runtime labels that tell users (kubectl get clustertrainingruntimes -L ...) and train-job
# which queue admits jobs on the runtime and whether it places them by network topology.
QUEUE_LABEL = "neuron-platform/queue"
TOPOLOGY_LABEL = "neuron-platform/network-topology"
# The owner of the runtime patch train-job writes (the Trainer requires a domain-prefixed name).
TRAIN_JOB_PATCH_MANAGER = "neuron-platform.io/train-job"


def runtime_labels(plan: PoolPlan) -> dict[str, str]:
    labels = {"trainer.kubeflow.org/framework": "torch", POOL_LABEL: plan.name, QUEUE_LABEL: queue_name(plan.name)}
    if plan.network_topology:
        labels[TOPOLOGY_LABEL] = TOPOLOGY_NAME
    return labels


def neuron_training_runtime(
    plan: PoolPlan, *, image: str, compile_cache_url: str | None = None, shared_claim: str | None = None
) -> Manifest:
    """A ClusterTrainingRuntime running torchrun over one EFA pool, one pod per node.

    ``shared_claim``: a ReadWriteMany claim (the FSx for Lustre volume) mounted at
    ``/fsx`` for datasets and checkpoints.

    TrainJobs pick it with ``runtimeRef.name`` and set image, command, ``numNodes`` and
    ``numProcPerNode`` (NeuronCores per node); the Trainer's torch plugin injects the
    torchrun rendezvous (PET_*) variables.
    """
    instance_type = plan.node_type.name
    env = [{"name": k, "value": v} for k, v in EFA_ENV.items()]
    if compile_cache_url:
        env.append({"name": "NEURON_COMPILE_CACHE_URL", "value": compile_cache_url})
    resources = node_resources(instance_type)
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"}]  # noqa: S108 - in-container path
    # torch dataloaders and the Neuron runtime use shared memory well beyond the 64 MiB default.
    volumes: list[dict[str, object]] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    if shared_claim:
        mounts.append({"name": "fsx", "mountPath": SHARED_MOUNT_PATH})
        volumes.append({"name": "fsx", "persistentVolumeClaim": {"claimName": shared_claim}})
    pod_spec = {
        "serviceAccountName": TRAINING_SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "schedulerName": NEURON_SCHEDULER_NAME,
        "nodeSelector": {POOL_LABEL: plan.name},
        "tolerations": [NEURON_TOLERATION],
        "containers": [
            {
                "name": "node",
                "image": image,
                "env": env,
                "resources": {"requests": dict(resources), "limits": dict(resources)},
                "volumeMounts": mounts,
                "securityContext": training_container_security_context(),
            }
        ],
        "volumes": volumes,
    }
    return {
        "apiVersion": TRAINER_API,
        "kind": "ClusterTrainingRuntime",
        "metadata": {
            "name": runtime_name(plan.name),
            "labels": runtime_labels(plan),
        },
        "spec": {
            "mlPolicy": {"numNodes": 2, "torch": {}},
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": "node",
                            "template": {
                                "metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}},
                                "spec": {"template": {"spec": pod_spec}},
                            },
                        }
                    ]
                }
            },
        },
    }


def neuron_cores_per_node(instance_type: str) -> int:
    """torchrun processes per node: one per NeuronCore (logical cores at LNC=2 on trn2)."""
    t = facts.instance_type(instance_type)
    return t.neuron_cores // 2 if t.family is facts.Family.TRN2 else t.neuron_cores


def topology_patch(request: str) -> dict[str, object]:
    """A TrainJob runtime patch asking Kueue to place the ``node`` pods within one network
    block (``required``) or as close as it can (``preferred``).

    Runtimes carry no topology request themselves: Kueue rejects a pod set with more than one
    topology annotation, and a TrainJob's runtime patches can add annotations, never remove
    them, so a request fixed in the runtime could not be changed per job.
    """
    annotation = TOPOLOGY_ANNOTATIONS[request]
    pod_template = {"metadata": {"annotations": {annotation: TOPOLOGY_LEVEL}}}
    return {
        "manager": TRAIN_JOB_PATCH_MANAGER,
        "trainingRuntimeSpec": {
            "template": {
                "spec": {"replicatedJobs": [{"name": "node", "template": {"spec": {"template": pod_template}}}]}
            }
        },
    }


def train_job(
    *,
    name: str,
    pool: str,
    instance_type: str,
    image: str,
    command: list[str],
    num_nodes: int = 2,
    namespace: str = "training",
    env: dict[str, str] | None = None,
    topology: str = "none",
) -> Manifest:
    """A TrainJob on the pool's Neuron runtime, submitted to the pool's Kueue queue.

    ``topology``: ``required`` or ``preferred`` to place the nodes within one network block
    (pools placed by network topology only), ``none`` to leave placement to the queue.
    """
    if topology not in TOPOLOGY_CHOICES:
        raise ValueError(f"topology: got {topology!r}; allowed: {', '.join(TOPOLOGY_CHOICES)}")
    trainer: dict[str, object] = {
        "image": image,
        "command": command,
        "numNodes": num_nodes,
        "numProcPerNode": neuron_cores_per_node(instance_type),
    }
    if env:
        trainer["env"] = [{"name": k, "value": v} for k, v in env.items()]
    spec: dict[str, object] = {"runtimeRef": {"name": runtime_name(pool)}, "trainer": trainer}
    if topology != "none":
        spec["runtimePatches"] = [topology_patch(topology)]
    return {
        "apiVersion": TRAINER_API,
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": namespace, "labels": {QUEUE_NAME_LABEL: queue_name(pool)}},
        "spec": spec,
    }
