"""The Kubernetes Job that compiles an endpoint's artifacts on the endpoint's own pool.

vLLM on Neuron compiles by loading the model onto Neuron devices, so artifacts for vLLM
endpoints compile on a node of the endpoint's pool (same instance type, same devices as
one replica, the AMI whose driver the data resolved for that pool), in the compile image:
the endpoint's serving image with the job's entrypoint. The compile pipeline's cluster-job
step fills the ``__...__`` placeholders per run (job name, the endpoint's pinned image,
spec, cache key, the run's staging location) and creates the Job; everything else is fixed
here at synthesis, so a caller of the pipeline cannot choose the node, the devices, the
image or the toolchain.

Pod security: the namespace enforces the ``baseline`` Pod Security Standard (warning and
auditing at ``restricted``). Not ``restricted``, because the compile image is the Neuron
serving image (a Deep Learning Container) unchanged but for the job's entrypoint, and those
images run as root: the Neuron runtime and vLLM expect root's home and the device files the
Neuron device plugin mounts. Every compile pod nonetheless drops all capabilities, cannot
escalate privileges, runs the RuntimeDefault seccomp profile and gets no Kubernetes API
token (it needs none: AWS credentials come from EKS Pod Identity's own projected token).
NetworkPolicies deny everything in the namespace but DNS, the node's Pod Identity agent and
HTTPS out (S3, AWS APIs, Hugging Face); nothing may connect in.
"""

from __future__ import annotations

import math

from neuron_platform import facts
from neuron_platform.capacity import NEURON_RESOURCE, POOL_LABEL
from neuron_platform.compile.spec import estimate_memory
from neuron_platform.k8s import Manifest
from neuron_platform.k8s.helm_values import NEURON_SCHEDULER_NAME, NEURON_TOLERATION
from neuron_platform.k8s.pod_security import (
    allow_dns,
    container_security_context,
    default_deny,
    https_egress_anywhere,
    network_policy,
    pod_security_context,
)
from neuron_platform.k8s.pod_security import namespace as psa_namespace
from neuron_platform.serving.planner import ServingPlan

COMPILE_NAMESPACE = "neuron-compile"
COMPILE_SERVICE_ACCOUNT = "neuron-compile"
# Filled by the cluster-job step (runtime_assets/compile/lambdas/cluster_job.py).
PLACEHOLDERS = {
    "job_name": "__JOB_NAME__",
    "image": "__IMAGE__",
    "spec_json": "__SPEC_JSON__",
    "cache_key": "__CACHE_KEY__",
    "output_url": "__OUTPUT_URL__",
    "cache_url": "__CACHE_URL__",
}
COMPILE_APP_LABEL = {"app.kubernetes.io/name": "neuron-compile"}
# EKS Pod Identity's agent on every node (its IPv4 link-local address; the platform's
# clusters are IPv4), where the AWS SDKs fetch the pod's credentials.
POD_IDENTITY_AGENT_CIDR = "169.254.170.23/32"
WORK_DIR = "/work"
# Share of the node's memory the compile may take (kubelet and the system keep the rest).
NODE_MEMORY_FRACTION = 0.9


def compile_namespace(namespace: str = COMPILE_NAMESPACE) -> Manifest:
    """The compile namespace, enforcing the baseline Pod Security Standard (see the module doc)."""
    return psa_namespace(namespace, enforce="baseline")


def compile_service_account(namespace: str = COMPILE_NAMESPACE) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": COMPILE_SERVICE_ACCOUNT, "namespace": namespace},
        # The compile pod talks to AWS (Pod Identity), never to the Kubernetes API.
        "automountServiceAccountToken": False,
    }


def compile_network_policies(namespace: str = COMPILE_NAMESPACE) -> list[Manifest]:
    """Default deny in and out; DNS; the compile pods may reach the Pod Identity agent and HTTPS."""
    agent = {
        "to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT_CIDR}}],
        "ports": [{"protocol": "TCP", "port": 80}],
    }
    return [
        default_deny(namespace),
        allow_dns(namespace),
        network_policy(
            "allow-compile-egress",
            namespace,
            pod_selector=COMPILE_APP_LABEL,
            egress=[agent, https_egress_anywhere()],
        ),
    ]


def compile_namespace_objects(namespace: str = COMPILE_NAMESPACE) -> list[Manifest]:
    """Everything the compile namespace holds before any Job: namespace, service account, policies."""
    return [
        compile_namespace(namespace),
        compile_service_account(namespace),
        *compile_network_policies(namespace),
    ]


def compile_resources(plan: ServingPlan) -> dict[str, str]:
    """One replica's devices, and the host memory the compile needs (at least the replica's share)."""
    instance = facts.instance_type(plan.placement.instance_type)
    share = plan.placement.devices_per_replica / instance.neuron_devices
    arch = plan.spec.resolved_architecture()
    need = estimate_memory(plan.spec, arch).compile_host_gib if arch else 0
    memory = min(int(instance.host_memory_gib * NODE_MEMORY_FRACTION), max(need, int(instance.host_memory_gib * share)))
    return {
        NEURON_RESOURCE: str(plan.placement.devices_per_replica),
        "memory": f"{max(memory, 8)}Gi",
        "cpu": str(max(1, math.floor(instance.vcpu * share * 0.8))),
    }


def compile_job_template(
    plan: ServingPlan,
    *,
    namespace: str = COMPILE_NAMESPACE,
    timeout_seconds: int,
    hf_token_secret_arn: str | None = None,
) -> Manifest:
    """The Job for ``plan``'s artifacts, with placeholders for what each run supplies."""
    resources = compile_resources(plan)
    env = [
        {"name": "SPEC_JSON", "value": PLACEHOLDERS["spec_json"]},
        {"name": "CACHE_KEY", "value": PLACEHOLDERS["cache_key"]},
        {"name": "OUTPUT_URL", "value": PLACEHOLDERS["output_url"]},
        {"name": "NEURON_COMPILE_CACHE_URL", "value": PLACEHOLDERS["cache_url"]},
        {"name": "WORK_DIR", "value": WORK_DIR},
        # The toolchain the data says this SDK ships; the job refuses an image with another.
        {"name": "ENGINE", "value": plan.engine},
        {"name": "EXPECTED_NEURONX_CC", "value": plan.compiler},
        {"name": "EXPECTED_RUNTIME", "value": plan.runtime},
    ]
    if hf_token_secret_arn:
        # The ARN, not the token: the job reads the secret with the pod's own role.
        env.append({"name": "HF_TOKEN_SECRET_ARN", "value": hf_token_secret_arn})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": PLACEHOLDERS["job_name"],
            "namespace": namespace,
            "labels": {**COMPILE_APP_LABEL, "neuron-platform/endpoint": plan.spec.name},
        },
        "spec": {
            # The pipeline decides about retries; a compiler failure fails the same way twice.
            "backoffLimit": 0,
            "activeDeadlineSeconds": timeout_seconds,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": dict(COMPILE_APP_LABEL)},
                "spec": {
                    "serviceAccountName": COMPILE_SERVICE_ACCOUNT,
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security_context(),
                    "schedulerName": NEURON_SCHEDULER_NAME,
                    "restartPolicy": "Never",
                    "nodeSelector": {
                        POOL_LABEL: str(plan.spec.pool),
                        "node.kubernetes.io/instance-type": plan.placement.instance_type,
                    },
                    "tolerations": [NEURON_TOLERATION],
                    "containers": [
                        {
                            "name": "compile",
                            "image": PLACEHOLDERS["image"],
                            "env": env,
                            "resources": {"requests": dict(resources), "limits": dict(resources)},
                            # Root (the Neuron images' user), but no capabilities and no escalation.
                            "securityContext": container_security_context(run_as_non_root=False),
                            "volumeMounts": [
                                {"name": "work", "mountPath": WORK_DIR},
                                {"name": "dshm", "mountPath": "/dev/shm"},  # noqa: S108 - in-container path
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "work", "emptyDir": {}},
                        {"name": "dshm", "emptyDir": {"medium": "Memory"}},
                    ],
                },
            },
        },
    }
