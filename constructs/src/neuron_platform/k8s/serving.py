"""Kubernetes objects of one EKS serving endpoint, all derived from its :class:`ServingPlan`.

The artifacts are fetched by an init container into a pod-local volume before vLLM
starts, so nothing compiles at start-up; probes give the model time to load. Before vLLM
starts, the serving container checks the artifacts were compiled by its own SDK line.
"""

from __future__ import annotations

import hashlib
import shlex
from typing import Any

from neuron_platform import facts, versions
from neuron_platform.capacity import NEURON_RESOURCE, POOL_LABEL
from neuron_platform.k8s import Manifest
from neuron_platform.k8s.helm_values import NEURON_SCHEDULER_NAME, NEURON_TOLERATION
from neuron_platform.operations.prometheus_config import ENDPOINT_COMPONENT
from neuron_platform.serving.planner import ARTIFACTS_DIR, MODEL_DIR, SERVING_PORT, ServingPlan

NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
# The cluster-wide KEDA authentication: the operator's own Pod Identity role (read-only
# on the Prometheus workspace), see cluster/keda.py.
KEDA_AWS_AUTHENTICATION = "aws-pod-identity"
# The artifact check the serving container runs before vLLM (runtime_assets/serve), mounted
# from a ConfigMap.
CHECK_SCRIPT_KEY = "check_artifacts.py"
CHECKS_DIR = "/opt/neuron-platform"
# Loading a model onto Neuron cores takes minutes; allow up to 30 before giving up.
STARTUP_PROBE_PERIOD_SECONDS = 10
STARTUP_PROBE_FAILURES = 180


def _labels(plan: ServingPlan) -> dict[str, str]:
    return {NAME_LABEL: plan.spec.name, COMPONENT_LABEL: ENDPOINT_COMPONENT}


def serving_namespace(namespace: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}


def endpoint_service_account(plan: ServingPlan, namespace: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": plan.spec.name, "namespace": namespace, "labels": _labels(plan)},
    }


def vllm_engine_arguments(plan: ServingPlan) -> dict[str, Any]:
    """The vLLM engine arguments the artifacts were compiled for. The compile job passes the
    same ones (runtime_assets/compile/job/compile_job.py ``vllm_arguments``; a test holds
    the two together): vLLM on Neuron loads precompiled artifacts only for these."""
    spec = plan.spec
    arguments: dict[str, Any] = {
        "tensor_parallel_size": spec.tensor_parallel_size,
        "max_num_seqs": spec.batch_size,
        "max_model_len": spec.sequence_length,
        "dtype": spec.dtype,
    }
    if plan.engine == "vllm-nxdi":
        arguments |= {
            "num_gpu_blocks_override": spec.batch_size,
            "enable_prefix_caching": False,
            "enable_chunked_prefill": False,
        }
    return arguments


def _flags(arguments: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for name, value in arguments.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else flag.replace("--", "--no-", 1))
        else:
            flags += [flag, str(value)]
    return flags


def vllm_command(plan: ServingPlan) -> list[str]:
    """vLLM's OpenAI server over the artifacts' own copy of the model (offline)."""
    return [
        "python3",
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        MODEL_DIR,
        "--served-model-name",
        plan.spec.name,
        *_flags(vllm_engine_arguments(plan)),
        "--port",
        str(SERVING_PORT),
    ]


def serving_command(plan: ServingPlan) -> list[str]:
    """Check the artifacts (SDK, engine, compiler) against this image, then exec vLLM."""
    check = ["python3", f"{CHECKS_DIR}/{CHECK_SCRIPT_KEY}", ARTIFACTS_DIR]
    return ["/bin/sh", "-c", f"{shlex.join(check)} && exec {shlex.join(vllm_command(plan))}"]


def endpoint_checks(plan: ServingPlan, namespace: str, *, script: str) -> Manifest:
    """The ConfigMap holding the artifact check the serving container runs first."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{plan.spec.name}-checks", "namespace": namespace, "labels": _labels(plan)},
        "data": {CHECK_SCRIPT_KEY: script},
    }


def endpoint_deployment(plan: ServingPlan, *, namespace: str, artifacts_url: str) -> Manifest:
    """vLLM on the planned Neuron devices, after an init container copied the artifacts."""
    spec, placement = plan.spec, plan.placement
    instance = facts.instance_type(placement.instance_type)
    # Host memory and CPU in proportion to the devices the replica takes.
    share = placement.devices_per_replica / instance.neuron_devices
    memory_gib = max(8, int(instance.host_memory_gib * share * 0.8))
    cpu = max(1, int(instance.vcpu * share * 0.8))
    resources = {NEURON_RESOURCE: str(placement.devices_per_replica), "memory": f"{memory_gib}Gi", "cpu": str(cpu)}
    env: list[dict[str, object]] = [{"name": k, "value": v} for k, v in plan.environment.items()]
    # What the artifact check compares the manifest with.
    env += [
        {"name": "NEURON_PLATFORM_SDK", "value": plan.compile_sdk},
        {"name": "NEURON_PLATFORM_ENGINE", "value": plan.engine},
        {"name": "NEURON_PLATFORM_NEURONX_CC", "value": plan.compiler},
    ]
    probe = {"httpGet": {"path": "/health", "port": SERVING_PORT}}
    # The init container has no Python: it checks the manifest's SDK line, the serving
    # container checks the rest (runtime_assets/serve/check_artifacts.py).
    fetch = (
        f"aws s3 sync {artifacts_url} {ARTIFACTS_DIR} --only-show-errors && "
        f"test -s {ARTIFACTS_DIR}/manifest.json || "
        f"{{ echo 'no compiled artifacts at {artifacts_url}: run compile submit --endpoint {spec.name}'; exit 1; }}; "
        f'grep -q \'"sdk": "{plan.compile_sdk}"\' {ARTIFACTS_DIR}/manifest.json || '
        f"{{ echo 'artifacts at {artifacts_url} were not compiled for Neuron SDK {plan.compile_sdk}: "
        f"run compile submit --endpoint {spec.name}'; exit 1; }}"
    )
    pod = {
        "serviceAccountName": spec.name,
        "schedulerName": NEURON_SCHEDULER_NAME,
        "nodeSelector": {POOL_LABEL: str(spec.pool), "node.kubernetes.io/instance-type": placement.instance_type},
        "tolerations": [NEURON_TOLERATION],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {NAME_LABEL: spec.name}},
            }
        ],
        "initContainers": [
            {
                "name": "fetch-artifacts",
                "image": versions.AWS_CLI_IMAGE,
                "command": ["sh", "-ec", fetch],
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                "volumeMounts": [{"name": "models", "mountPath": "/models"}],
            }
        ],
        "containers": [
            {
                "name": "vllm",
                "image": plan.serving_image,
                "command": serving_command(plan),
                "env": env,
                "ports": [{"name": "http", "containerPort": SERVING_PORT}],
                "resources": {"requests": dict(resources), "limits": dict(resources)},
                "startupProbe": probe
                | {"periodSeconds": STARTUP_PROBE_PERIOD_SECONDS, "failureThreshold": STARTUP_PROBE_FAILURES},
                "readinessProbe": probe | {"periodSeconds": 10, "failureThreshold": 3},
                "livenessProbe": probe | {"periodSeconds": 30, "failureThreshold": 3, "timeoutSeconds": 10},
                "volumeMounts": [
                    # Read-only: a failed load must fail loudly, not recompile over the artifacts.
                    {"name": "models", "mountPath": "/models", "readOnly": True},
                    {"name": "checks", "mountPath": CHECKS_DIR, "readOnly": True},
                    {"name": "dshm", "mountPath": "/dev/shm"},  # noqa: S108 - in-container path
                ],
            }
        ],
        "volumes": [
            {"name": "models", "emptyDir": {}},
            {"name": "checks", "configMap": {"name": f"{spec.name}-checks"}},
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},
        ],
        # Let in-flight requests finish before the pod goes.
        "terminationGracePeriodSeconds": 120,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": spec.name, "namespace": namespace, "labels": _labels(plan)},
        "spec": {
            "replicas": spec.replicas.min,
            "selector": {"matchLabels": {NAME_LABEL: spec.name}},
            # One replica at a time: a new Neuron node may have to start for the surge pod.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": _labels(plan)}, "spec": pod},
        },
    }


def endpoint_service(plan: ServingPlan, namespace: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": plan.spec.name, "namespace": namespace, "labels": _labels(plan)},
        "spec": {
            "selector": {NAME_LABEL: plan.spec.name},
            "ports": [{"name": "http", "port": 80, "targetPort": SERVING_PORT, "protocol": "TCP"}],
        },
    }


def endpoint_disruption_budget(plan: ServingPlan, namespace: str) -> Manifest:
    """Voluntary disruptions (node consolidation, upgrades) take one replica at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": plan.spec.name, "namespace": namespace, "labels": _labels(plan)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {NAME_LABEL: plan.spec.name}}},
    }


def load_balancer_name(project: str, endpoint: str) -> str:
    """A stable ALB name (at most 32 characters) so dashboards can find the endpoint's metrics."""
    name = f"{project}-{endpoint}"
    if len(name) <= 32:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:23].rstrip('-')}-{digest}"


def endpoint_ingress(plan: ServingPlan, namespace: str, *, load_balancer: str) -> Manifest:
    """An ALB (AWS Load Balancer Controller) named ``load_balancer``: internal unless the spec
    says public; HTTPS with a certificate."""
    spec = plan.spec
    annotations = {
        "alb.ingress.kubernetes.io/load-balancer-name": load_balancer,
        "alb.ingress.kubernetes.io/scheme": "internet-facing" if spec.exposure == "public" else "internal",
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/healthcheck-path": "/health",
        # Long generations: keep connections open beyond the 60 s default.
        "alb.ingress.kubernetes.io/load-balancer-attributes": "idle_timeout.timeout_seconds=600",
    }
    if spec.certificate_arn:
        annotations |= {
            "alb.ingress.kubernetes.io/certificate-arn": spec.certificate_arn,
            "alb.ingress.kubernetes.io/listen-ports": '[{"HTTPS": 443}]',
            "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        }
    else:
        annotations["alb.ingress.kubernetes.io/listen-ports"] = '[{"HTTP": 80}]'
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": spec.name, "namespace": namespace, "labels": _labels(plan), "annotations": annotations},
        "spec": {
            "ingressClassName": "alb",
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": spec.name, "port": {"number": 80}}},
                            }
                        ]
                    }
                }
            ],
        },
    }


def in_flight_query(plan: ServingPlan, namespace: str) -> str:
    """PromQL: the endpoint's requests in flight (running plus queued) over all replicas."""
    selector = f'{{namespace="{namespace}", endpoint="{plan.spec.name}"}}'
    return f"sum(vllm:num_requests_running{selector}) + sum(vllm:num_requests_waiting{selector})"


def endpoint_scaled_object(plan: ServingPlan, namespace: str, *, query_url: str, region: str) -> Manifest:
    """KEDA scales the Deployment so each replica carries ``target_in_flight`` requests.

    KEDA turns this into an HPA with an external metric: desired replicas = in-flight
    requests / target. Up within minutes (a new replica may need a new Neuron node and a
    model load), down slowly. If the workspace cannot be read, KEDA keeps the current
    replica count, or ``replicas.min`` when that is higher; it never scales a busy
    endpoint down on missing data.
    """
    spec = plan.spec
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": spec.name, "namespace": namespace, "labels": _labels(plan)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicaCount": spec.replicas.min,
            "maxReplicaCount": spec.replicas.max,
            "pollingInterval": 30,
            "fallback": {"failureThreshold": 4, "replicas": spec.replicas.min, "behavior": "currentReplicasIfHigher"},
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleUp": {
                            "stabilizationWindowSeconds": 60,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
                        },
                        "scaleDown": {
                            "stabilizationWindowSeconds": 600,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
                        },
                    }
                }
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": query_url,
                        "awsRegion": region,
                        "query": in_flight_query(plan, namespace),
                        "threshold": str(spec.target_in_flight),
                        "ignoreNullValues": "true",
                    },
                    "authenticationRef": {"name": KEDA_AWS_AUTHENTICATION, "kind": "ClusterTriggerAuthentication"},
                }
            ],
        },
    }


def keda_aws_authentication() -> Manifest:
    """Triggers that reference it sign their AWS calls with the KEDA operator's credentials."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ClusterTriggerAuthentication",
        "metadata": {"name": KEDA_AWS_AUTHENTICATION},
        "spec": {"podIdentity": {"provider": "aws"}},
    }
