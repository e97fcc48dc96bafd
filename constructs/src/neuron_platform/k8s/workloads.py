"""First-run workloads: the manifests docs/cluster.md asks a user to apply after deploy.

They prove the chain works end to end: the pod requests Neuron devices, the Neuron
scheduler extension places it, Karpenter launches the right node, the device plugin
advertises the devices (and on EFA pools the EFA device plugin the interfaces).
"""

from __future__ import annotations

from neuron_platform import facts
from neuron_platform.capacity import EFA_RESOURCE, NEURON_RESOURCE, POOL_LABEL
from neuron_platform.k8s import Manifest
from neuron_platform.k8s.helm_values import NEURON_SCHEDULER_NAME, NEURON_TOLERATION
from neuron_platform.k8s.pod_security import container_security_context, pod_security_context


def _pod(
    name: str,
    *,
    image: str,
    command: list[str],
    pool: str,
    resources: dict[str, str],
    labels: dict[str, str] | None = None,
) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name, **(labels or {})}},
        "spec": {
            # The checks call no Kubernetes API; the images run as root (neuron-ls, fi_info),
            # with no capability and no privilege escalation, like the training runtimes.
            "automountServiceAccountToken": False,
            "securityContext": pod_security_context(),
            "schedulerName": NEURON_SCHEDULER_NAME,
            "restartPolicy": "Never",
            "nodeSelector": {POOL_LABEL: pool},
            "tolerations": [NEURON_TOLERATION],
            "containers": [
                {
                    "name": "check",
                    "image": image,
                    "command": command,
                    "resources": {"requests": dict(resources), "limits": dict(resources)},
                    "securityContext": container_security_context(run_as_non_root=False),
                }
            ],
        },
    }


def inf2_smoke_pod(pool: str, image: str) -> Manifest:
    """One Inferentia2 device: `neuron-ls` (the pool's serving image) lists it and exits 0."""
    return _pod(
        "neuron-smoke-inf2",
        image=image,
        command=["neuron-ls"],
        pool=pool,
        resources={NEURON_RESOURCE: "1"},
    )


def efa_pair_pods(pool: str, image: str, instance_type: str = "trn1.32xlarge") -> list[Manifest]:
    """Two whole-node pods on an EFA pool: each sees every device and every EFA interface.

    Requests equal the instance's hardware (16 devices and 8 EFA on trn1.32xlarge), so
    each pod gets a node of its own; `fi_info -p efa` (the pool's training image, which
    ships EFA's libfabric) lists the EFA provider.
    """
    facts_ = facts.instance_type(instance_type)
    if not facts_.efa_capable:
        raise ValueError(f"{instance_type} has no EFA")
    resources = {NEURON_RESOURCE: str(facts_.neuron_devices), EFA_RESOURCE: str(facts_.efa_interfaces)}
    return [
        _pod(
            f"neuron-smoke-efa-{i}",
            image=image,
            command=["bash", "-c", "neuron-ls && fi_info -p efa -t FI_EP_RDM"],
            pool=pool,
            resources=resources,
            labels={"neuron-platform/smoke": "efa-pair"},
        )
        for i in range(2)
    ]
