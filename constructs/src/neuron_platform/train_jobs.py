"""TrainJobs that the platform can run: checked against the config before they are printed.

Plain Python (no CDK), used by ``python -m neuron_platform train-job``. A job names a pool
with a training runtime, runs on whole nodes of the type the runtime is sized for, goes to
the pool's Kueue queue in the training namespace, and must fit that queue's quota (else
Kueue would hold it forever). Each refusal is a :class:`TrainJobError` naming the option,
the value and what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from neuron_platform.admission import TOPOLOGY_CHOICES, fits, training_queue, trainjob_pod_sets
from neuron_platform.capacity import plan_pool
from neuron_platform.config import PlatformConfig
from neuron_platform.k8s import Manifest
from neuron_platform.k8s.training import neuron_training_runtime, train_job

# The TrainJob CRD's name rule (trainer.kubeflow.org v2.3.0: "metadata.name must match RFC 1035
# DNS label format", at most 63 characters); a test reads it from the vendored CRD.
TRAINJOB_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


class TrainJobError(ValueError):
    """A job the platform could never run; ``option`` is the CLI option at fault."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class TrainJobRequest:
    """What the user asks for; ``None`` takes the pool's or config's default."""

    name: str
    pool: str
    command: tuple[str, ...]
    nodes: int = 2
    image: str | None = None
    instance_type: str | None = None
    namespace: str | None = None
    topology: str | None = None


def default_topology(config: PlatformConfig, pool: str) -> str:
    """``preferred`` where the pool is placed by network topology, else ``none``."""
    pool_config = config.pool(pool)
    assert pool_config is not None
    return "preferred" if plan_pool(pool_config).network_topology else "none"


def build_train_job(config: PlatformConfig, request: TrainJobRequest) -> Manifest:
    """The TrainJob for ``request``, or :class:`TrainJobError` if it could never run."""
    if not TRAINJOB_NAME.fullmatch(request.name) or len(request.name) > 63:
        raise TrainJobError(
            "--name",
            f"got {request.name!r}; allowed: 1-63 lowercase letters, digits and '-', starting with a letter and not "
            "ending with '-' (an RFC 1035 label, the TrainJob CRD's rule)",
        )
    if not request.command or not request.command[0].strip():
        raise TrainJobError("command", "got nothing to run; allowed: the command after '--', e.g. -- torchrun train.py")
    if not config.training.enabled:
        raise TrainJobError("--config", "training.enabled is false: this config deploys no Trainer, runtimes or queues")
    runtime_pools = [p.name for p in config.efa_training_pools]
    pool_config = config.pool(request.pool)
    if pool_config is None or pool_config.name not in runtime_pools:
        what = "is not a configured pool" if pool_config is None else "has no training runtime"
        raise TrainJobError(
            "--pool",
            f"got {request.pool!r}, which {what}; allowed: an EFA training pool ({', '.join(runtime_pools)})",
        )
    plan = plan_pool(pool_config)
    queue = training_queue(plan)
    node_type = plan.node_type.name
    if request.instance_type is not None and request.instance_type != node_type:
        raise TrainJobError(
            "--instance-type",
            f"got {request.instance_type}; pool {plan.name}'s runtime runs whole {node_type} nodes; allowed: {node_type}",
        )
    if request.nodes < 1:
        raise TrainJobError("--nodes", f"got {request.nodes}; allowed: 1 to {queue.nodes}")
    namespace = config.training.namespace
    if request.namespace is not None and request.namespace != namespace:
        raise TrainJobError(
            "--namespace",
            f"got {request.namespace}; the queues and the training service account are in {namespace}; "
            f"allowed: {namespace}",
        )
    topology = request.topology or default_topology(config, plan.name)
    if topology not in TOPOLOGY_CHOICES:
        raise TrainJobError("--topology", f"got {topology}; allowed: {', '.join(TOPOLOGY_CHOICES)}")
    if topology != "none" and not queue.topology:
        raise TrainJobError(
            "--topology",
            f"got {topology}; pool {plan.name} is not placed by network topology (that needs an EFA pool "
            "with static_nodes, of a type EC2 reports a topology for); allowed: none",
        )
    image = request.image or plan.neuron.image("training")
    job = train_job(
        name=request.name,
        pool=plan.name,
        instance_type=node_type,
        image=image,
        command=list(request.command),
        num_nodes=request.nodes,
        namespace=namespace,
        topology=topology,
    )
    problems = fits(trainjob_pod_sets(job, neuron_training_runtime(plan, image=image)), queue)
    if problems:
        raise TrainJobError(
            "--nodes",
            f"got {request.nodes}; Kueue could never admit it ({problems[0]}); allowed: 1 to {queue.nodes}",
        )
    return job
