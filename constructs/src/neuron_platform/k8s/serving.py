"""Kubernetes objects of one EKS serving endpoint, all derived from its :class:`ServingPlan`,
and of the serving namespace they share.

The artifacts are fetched by an init container into a pod-local volume before vLLM
starts, so nothing compiles at start-up; probes give the model time to load. Before vLLM
starts, the serving container checks the artifacts were compiled by its own SDK line.

Security: the init container (non-root, read-only root file system) also fetches the
endpoint's API key from Secrets Manager with the endpoint's Pod Identity role into a
memory-backed volume; the serving container's wrapper exports it as ``VLLM_API_KEY``
before it execs vLLM, so the key is in no manifest. vLLM requires it on ``/v1`` and the
``api_key_guard`` middleware on every other path but ``/health`` and ``/metrics``. The
Ingress routes ``/v1`` only. The namespace enforces the ``baseline`` Pod Security Standard
(vLLM on Neuron runs as root in the Deep Learning Containers) and denies all traffic but
what serving needs (:func:`serving_network_policies`).
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence
from typing import Any

from neuron_platform import facts, versions
from neuron_platform.capacity import NEURON_RESOURCE, POOL_LABEL
from neuron_platform.k8s import Manifest, pod_security
from neuron_platform.k8s.helm_values import NEURON_SCHEDULER_NAME, NEURON_TOLERATION
from neuron_platform.operations.prometheus_config import ENDPOINT_COMPONENT
from neuron_platform.serving.planner import ARTIFACTS_DIR, MODEL_DIR, SERVING_PORT, ServingPlan

NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
# KEDA's authentication for the prometheus trigger: the operator's own Pod Identity role
# (read-only on the Prometheus workspace, see cluster/keda.py), through a TriggerAuthentication
# in the serving namespace (only ScaledObjects of that namespace can use it).
KEDA_AWS_AUTHENTICATION = "aws-pod-identity"
# The artifact check the serving container runs before vLLM and the API key middleware vLLM
# loads (runtime_assets/serve), mounted from a ConfigMap.
CHECK_SCRIPT_KEY = "check_artifacts.py"
GUARD_SCRIPT_KEY = "api_key_guard.py"
GUARD_MIDDLEWARE = "api_key_guard.RequireApiKey"
CHECKS_DIR = "/opt/neuron-platform"
# Where the init container writes the API key (memory-backed emptyDir) for the wrapper that
# exports it as VLLM_API_KEY before it execs vLLM.
API_KEY_DIR = "/run/neuron-platform/api-key"
API_KEY_FILE = f"{API_KEY_DIR}/key"
# The init container's user and group (the aws-cli image needs no root), and the pod's
# fsGroup: the serving container (root, no capabilities) reads the key file through it.
FETCH_USER = 1000
# The Pod Identity agent: a host-network DaemonSet on every node, at a link-local address
# (EKS user guide, "EKS Pod Identity"): pods fetch credentials from it over HTTP.
POD_IDENTITY_AGENT = {"cidr": "169.254.170.23/32", "port": 80}
# Pod Security Standard the serving namespace enforces: baseline, because vLLM on Neuron
# runs as root in the Deep Learning Containers (restricted needs non-root); warn and audit
# stay at restricted.
SERVING_POD_SECURITY: pod_security.PodSecurityLevel = "baseline"
# Keep the model and its tokenizer local, and report nothing to vLLM's usage statistics.
OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}
# Loading a model onto Neuron cores takes minutes; allow up to 30 before giving up.
STARTUP_PROBE_PERIOD_SECONDS = 10
STARTUP_PROBE_FAILURES = 180


def _labels(plan: ServingPlan) -> dict[str, str]:
    return {NAME_LABEL: plan.spec.name, COMPONENT_LABEL: ENDPOINT_COMPONENT}


def serving_namespace(namespace: str) -> Manifest:
    """The serving namespace, enforcing the :data:`SERVING_POD_SECURITY` standard."""
    return pod_security.namespace(namespace, enforce=SERVING_POD_SECURITY)


def serving_network_policies(namespace: str, *, vpc_cidrs: Sequence[str]) -> list[Manifest]:
    """Default deny, DNS for every pod, and for the endpoint pods:

    - in: TCP :data:`SERVING_PORT` from the VPC's ranges only: the ALB (``target-type: ip``
      sends from its addresses in the VPC's subnets), the managed Prometheus collector
      (scrapes ``/metrics`` from its network interfaces in the private subnets) and the
      kubelet's probes (from the node);
    - out: HTTPS anywhere (S3 through the gateway endpoint, Secrets Manager: neither has a
      fixed range) and the Pod Identity agent on the node. Nothing else: no Kubernetes API,
      no other port.
    """
    endpoints = {COMPONENT_LABEL: ENDPOINT_COMPONENT}
    from_vpc = {
        "from": [{"ipBlock": {"cidr": cidr}} for cidr in vpc_cidrs],
        "ports": [{"protocol": "TCP", "port": SERVING_PORT}],
    }
    pod_identity = {
        "to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT["cidr"]}}],
        "ports": [{"protocol": "TCP", "port": POD_IDENTITY_AGENT["port"]}],
    }
    return [
        pod_security.default_deny(namespace),
        pod_security.allow_dns(namespace),
        pod_security.network_policy("endpoints-from-vpc", namespace, pod_selector=endpoints, ingress=[from_vpc]),
        pod_security.network_policy(
            "endpoints-to-aws",
            namespace,
            pod_selector=endpoints,
            egress=[pod_security.https_egress_anywhere(), pod_identity],
        ),
    ]


def keda_trigger_authentication(namespace: str) -> Manifest:
    """Triggers in ``namespace`` that reference it sign their AWS calls with the KEDA
    operator's credentials (its Pod Identity role)."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": KEDA_AWS_AUTHENTICATION, "namespace": namespace},
        "spec": {"podIdentity": {"provider": "aws"}},
    }


def endpoint_service_account(plan: ServingPlan, namespace: str) -> Manifest:
    """The endpoint's identity (its Pod Identity role); no Kubernetes API token is mounted."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": plan.spec.name, "namespace": namespace, "labels": _labels(plan)},
        "automountServiceAccountToken": False,
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
    """vLLM's OpenAI server over the artifacts' own copy of the model and tokenizer (offline),
    with the API key middleware (:data:`GUARD_MIDDLEWARE`)."""
    return [
        "python3",
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        MODEL_DIR,
        "--tokenizer",
        MODEL_DIR,
        "--served-model-name",
        plan.spec.name,
        *_flags(vllm_engine_arguments(plan)),
        "--port",
        str(SERVING_PORT),
        "--middleware",
        GUARD_MIDDLEWARE,
    ]


def serving_command(plan: ServingPlan) -> list[str]:
    """Export the API key the init container fetched as ``VLLM_API_KEY`` (never written into
    a manifest), put the middleware on ``PYTHONPATH``, check the artifacts (SDK, engine,
    compiler) against this image, then exec vLLM."""
    check = ["python3", f"{CHECKS_DIR}/{CHECK_SCRIPT_KEY}", ARTIFACTS_DIR]
    key = (
        f'VLLM_API_KEY="$(cat {API_KEY_FILE})" && test -n "$VLLM_API_KEY" || '
        f"{{ echo 'no API key at {API_KEY_FILE}: the init container fetches it'; exit 1; }}; "
        "export VLLM_API_KEY; "
        f'export PYTHONPATH="{CHECKS_DIR}${{PYTHONPATH:+:$PYTHONPATH}}"; '
    )
    return ["/bin/sh", "-c", f"{key}{shlex.join(check)} && exec {shlex.join(vllm_command(plan))}"]


def endpoint_checks(plan: ServingPlan, namespace: str, *, script: str, guard: str) -> Manifest:
    """The ConfigMap holding the artifact check the serving container runs first and the API
    key middleware vLLM loads."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{plan.spec.name}-checks", "namespace": namespace, "labels": _labels(plan)},
        "data": {CHECK_SCRIPT_KEY: script, GUARD_SCRIPT_KEY: guard},
    }


def fetch_command(plan: ServingPlan, *, artifacts_url: str, api_key_secret: str, secret_region: str) -> str:
    """The init container's script: the API key into the memory-backed volume (group-readable
    through the pod's fsGroup, nobody else's), then the artifacts, and their SDK line checked.
    ``api_key_secret`` may be a CDK token (the secret the stack creates)."""
    spec = plan.spec
    secret = shlex.quote(api_key_secret)
    return (
        f"( umask 027; aws secretsmanager get-secret-value --region {shlex.quote(secret_region)} "
        f"--secret-id {secret} --query SecretString --output text > {API_KEY_FILE} ) || "
        f"{{ echo 'cannot read the API key secret {api_key_secret}: the endpoint role may read only that secret'; "
        "exit 1; }; "
        f"test -s {API_KEY_FILE} || {{ echo 'the API key secret {api_key_secret} is empty'; exit 1; }}; "
        f"aws s3 sync {artifacts_url} {ARTIFACTS_DIR} --only-show-errors && "
        f"test -s {ARTIFACTS_DIR}/manifest.json || "
        f"{{ echo 'no compiled artifacts at {artifacts_url}: run compile submit --endpoint {spec.name}'; exit 1; }}; "
        f'grep -q \'"sdk": "{plan.compile_sdk}"\' {ARTIFACTS_DIR}/manifest.json || '
        f"{{ echo 'artifacts at {artifacts_url} were not compiled for Neuron SDK {plan.compile_sdk}: "
        f"run compile submit --endpoint {spec.name}'; exit 1; }}"
    )


def endpoint_deployment(
    plan: ServingPlan, *, namespace: str, artifacts_url: str, api_key_secret: str, secret_region: str
) -> Manifest:
    """vLLM on the planned Neuron devices, after an init container copied the artifacts and
    the API key (``api_key_secret``, a Secrets Manager ARN in ``secret_region``)."""
    spec, placement = plan.spec, plan.placement
    instance = facts.instance_type(placement.instance_type)
    # Host memory and CPU in proportion to the devices the replica takes.
    share = placement.devices_per_replica / instance.neuron_devices
    memory_gib = max(8, int(instance.host_memory_gib * share * 0.8))
    cpu = max(1, int(instance.vcpu * share * 0.8))
    resources = {NEURON_RESOURCE: str(placement.devices_per_replica), "memory": f"{memory_gib}Gi", "cpu": str(cpu)}
    environment = {**OFFLINE_ENVIRONMENT, **plan.environment}
    env: list[dict[str, object]] = [{"name": k, "value": v} for k, v in environment.items()]
    # What the artifact check compares the manifest with.
    env += [
        {"name": "NEURON_PLATFORM_SDK", "value": plan.compile_sdk},
        {"name": "NEURON_PLATFORM_ENGINE", "value": plan.engine},
        {"name": "NEURON_PLATFORM_NEURONX_CC", "value": plan.compiler},
        # The manifest must name the key these artifacts were looked up by.
        {"name": "NEURON_PLATFORM_CACHE_KEY", "value": plan.cache_key()},
    ]
    probe = {"httpGet": {"path": "/health", "port": SERVING_PORT}}
    # The init container has no Python: it checks the manifest's SDK line, the serving
    # container checks the rest (runtime_assets/serve/check_artifacts.py).
    fetch = fetch_command(plan, artifacts_url=artifacts_url, api_key_secret=api_key_secret, secret_region=secret_region)
    fetcher_context = pod_security.container_security_context(read_only_root_filesystem=True) | {
        "runAsUser": FETCH_USER,
        "runAsGroup": FETCH_USER,
    }
    pod = {
        "serviceAccountName": spec.name,
        # Pod Identity mounts its own token; nothing here calls the Kubernetes API.
        "automountServiceAccountToken": False,
        "securityContext": pod_security.pod_security_context(fs_group=FETCH_USER),
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
                "env": [{"name": "HOME", "value": "/tmp"}],  # noqa: S108 - its own emptyDir
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                "securityContext": fetcher_context,
                "volumeMounts": [
                    {"name": "models", "mountPath": "/models"},
                    {"name": "api-key", "mountPath": API_KEY_DIR},
                    {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - its own emptyDir
                ],
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
                # Root (the Deep Learning Container's user; the Neuron runtime opens the
                # devices as root) but no capabilities and no privilege escalation.
                "securityContext": pod_security.container_security_context(run_as_non_root=False),
                "volumeMounts": [
                    # Read-only: a failed load must fail loudly, not recompile over the artifacts.
                    {"name": "models", "mountPath": "/models", "readOnly": True},
                    {"name": "checks", "mountPath": CHECKS_DIR, "readOnly": True},
                    {"name": "api-key", "mountPath": API_KEY_DIR, "readOnly": True},
                    {"name": "dshm", "mountPath": "/dev/shm"},  # noqa: S108 - in-container path
                ],
            }
        ],
        "volumes": [
            {"name": "models", "emptyDir": {}},
            {"name": "checks", "configMap": {"name": f"{spec.name}-checks"}},
            # Memory-backed: the key never reaches the node's disk.
            {"name": "api-key", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
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


def inbound_cidrs(plan: ServingPlan, *, vpc_cidrs: Sequence[str]) -> list[str]:
    """Who may open a connection to the ALB: the spec's ``allowed_cidrs``; else everyone for
    a public endpoint (which then has authentication: the spec refuses neither), else the
    VPC's ranges."""
    spec = plan.spec
    if spec.allowed_cidrs:
        return list(spec.allowed_cidrs)
    if spec.exposure == "public":
        return ["0.0.0.0/0"]
    return list(vpc_cidrs)


def load_balancer_attributes(*, access_logs_bucket: str | None, access_logs_prefix: str) -> str:
    """ALB attributes: long idle timeout, malformed headers dropped, deletion protection
    (the controller lifts it itself when the Ingress is deleted: LBC v3.2.2
    ``load_balancer_synthesizer.go``), and access logs when a bucket is given."""
    attributes = {
        # Long generations: keep connections open beyond the 60 s default.
        "idle_timeout.timeout_seconds": "600",
        "routing.http.drop_invalid_header_fields.enabled": "true",
        "deletion_protection.enabled": "true",
    }
    if access_logs_bucket is not None:
        attributes |= {
            "access_logs.s3.enabled": "true",
            "access_logs.s3.bucket": access_logs_bucket,
            "access_logs.s3.prefix": access_logs_prefix,
        }
    return ",".join(f"{k}={v}" for k, v in attributes.items())


def endpoint_ingress(
    plan: ServingPlan,
    namespace: str,
    *,
    load_balancer: str,
    vpc_cidrs: Sequence[str],
    access_logs_bucket: str | None = None,
) -> Manifest:
    """An ALB (AWS Load Balancer Controller) named ``load_balancer`` in front of ``/v1`` (the
    OpenAI API; nothing else of vLLM's is routed): internal unless the spec says public;
    with a certificate, HTTPS only (TLS 1.2+, HTTP redirects to it); open to
    :func:`inbound_cidrs`; sign-in first when the spec has authentication. Access logs go
    to ``access_logs_bucket`` under the endpoint's name."""
    spec = plan.spec
    prefix = "alb.ingress.kubernetes.io"
    annotations = {
        f"{prefix}/load-balancer-name": load_balancer,
        f"{prefix}/scheme": "internet-facing" if spec.exposure == "public" else "internal",
        f"{prefix}/target-type": "ip",
        f"{prefix}/healthcheck-path": "/health",
        f"{prefix}/inbound-cidrs": ",".join(inbound_cidrs(plan, vpc_cidrs=vpc_cidrs)),
        f"{prefix}/load-balancer-attributes": load_balancer_attributes(
            access_logs_bucket=access_logs_bucket, access_logs_prefix=spec.name
        ),
    }
    if spec.certificate_arn:
        annotations |= {
            f"{prefix}/certificate-arn": spec.certificate_arn,
            f"{prefix}/listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]',
            f"{prefix}/ssl-redirect": "443",
            f"{prefix}/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        }
    else:
        annotations[f"{prefix}/listen-ports"] = '[{"HTTP": 80}]'
    backend = {"service": {"name": spec.name, "port": {"number": 80}}}
    paths: list[dict[str, Any]] = [{"path": "/v1", "pathType": "Prefix", "backend": backend}]
    if spec.authentication is not None:
        annotations |= spec.authentication.annotations()
        # Where the identity provider sends the browser back; the ALB's sign-in action answers it.
        paths.append({"path": "/oauth2/idpresponse", "pathType": "Exact", "backend": backend})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": spec.name, "namespace": namespace, "labels": _labels(plan), "annotations": annotations},
        "spec": {
            "ingressClassName": "alb",
            "rules": [{"http": {"paths": paths}}],
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
                    "authenticationRef": {"name": KEDA_AWS_AUTHENTICATION, "kind": "TriggerAuthentication"},
                }
            ],
        },
    }


def oidc_secret_access(
    plan: ServingPlan, namespace: str, *, controller_service_account: str, controller_namespace: str
) -> list[Manifest]:
    """A Role and RoleBinding that let the load balancer controller read the one Secret
    holding the OIDC client of ``plan``'s sign-in (the chart grants no Secret access by
    default: ``clusterSecretsPermissions.allowAllSecrets: false``). The controller watches
    it by name (a field selector), which ``resourceNames`` allows for list and watch."""
    authentication = plan.spec.authentication
    if authentication is None or authentication.client_secret_name is None:
        return []
    name = f"{plan.spec.name}-oidc-client"
    metadata = {"name": name, "namespace": namespace, "labels": _labels(plan)}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": metadata,
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": [authentication.client_secret_name],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": dict(metadata),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [
                {"kind": "ServiceAccount", "name": controller_service_account, "namespace": controller_namespace}
            ],
        },
    ]
