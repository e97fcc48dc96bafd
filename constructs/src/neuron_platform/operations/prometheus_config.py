"""What the managed Prometheus collector scrapes and which alerts it evaluates.

Plain Python (no CDK) so tests, the Grafana dashboard and the docs share one source:

- :func:`scrape_config` is the collector's Prometheus configuration: neuron-monitor and
  the node problem detector on every Neuron node, the Karpenter controller, the vLLM
  servers of EKS endpoints, and the EKS control plane's scheduler;
- :func:`alert_rules` is the rule file of the workspace: Neuron hardware and execution
  errors, Neuron health conditions, NeuronCores idle while a model is loaded, EKS
  endpoint server errors, pods pending too long, Karpenter launch failures;
- :func:`alertmanager_definition` routes every alert to the platform's SNS topic.

Metric names are the exporters' own: neuron-monitor's Prometheus companion
(``neuroncore_utilization_ratio``, ``hardware_ecc_events_total``, ...), Karpenter's
(``karpenter_*``) and vLLM's (``vllm:*``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from neuron_platform.serving.planner import SERVING_PORT

# The Neuron chart's monitor DaemonSet runs neuron-monitor with its Prometheus exporter
# in a container named "neuron-monitor"; the platform sets the exporter's port.
NEURON_MONITOR_CONTAINER = "neuron-monitor"
NEURON_MONITOR_PORT = 8000
KARPENTER_METRICS_PORT = 8080
# The Neuron chart's node problem detector; the platform makes its exporter listen on the
# pod address (NPD's default is 127.0.0.1), see k8s/helm_values.py.
NODE_PROBLEM_DETECTOR_CONTAINER = "node-problem-detector"
NODE_PROBLEM_DETECTOR_PORT = 20257
# The label the platform puts on every EKS endpoint pod (k8s/serving.py).
ENDPOINT_COMPONENT = "neuron-endpoint"
VLLM_PORT = SERVING_PORT
# The identity the collector uses inside the cluster (RBAC + access entry).
COLLECTOR_USER = "aps-collector-user"
# The collector accepts no scrape interval below 30 s.
MIN_SCRAPE_INTERVAL_SECONDS = 30

# Metrics kept from each job: everything else is dropped at the collector, so ingestion
# (and the bill) stays proportional to what the dashboard and the alerts read.
NEURON_METRICS = (
    "neuroncore_utilization_ratio",
    "neuron_runtime_memory_used_bytes",
    "neuroncore_memory_usage_.*",
    "execution_errors_total",
    "execution_status_total",
    "execution_latency_seconds",
    "hardware_ecc_events_total",
    "neuron_hardware_info",
)
KARPENTER_METRICS = (
    "karpenter_nodeclaims_created_total",
    "karpenter_nodeclaims_terminated_total",
    "karpenter_nodeclaims_disrupted_total",
    "karpenter_nodes_allocatable",
    "karpenter_pods_current_unbound_time_seconds",
    "karpenter_interruption_received_messages_total",
    "karpenter_cloudprovider_errors_total",
)
NODE_PROBLEM_METRICS = ("problem_gauge", "problem_counter")
VLLM_METRICS = (
    "http_requests_total",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:e2e_request_latency_seconds_.*",
    "vllm:time_to_first_token_seconds_.*",
    "vllm:generation_tokens_total",
    "vllm:prompt_tokens_total",
    "vllm:request_success_total",
)
SCHEDULER_METRICS = ("scheduler_pending_pods",)
# The node problem detector's condition for Neuron hardware (its kernel-log rules).
NEURON_HEALTH_CONDITION = "NeuronHealth"
# Never fold long lines: CDK tokens (the topic ARN) must stay whole inside the YAML.
_NO_WRAP = 1_000_000


@dataclass(frozen=True)
class AlertThresholds:
    """When the workspace's alerts fire. Defaults suit a small production platform."""

    # A NeuronCore with a model loaded but below this utilization is idle...
    idle_core_utilization: float = 0.05
    # ...and alerts after this many minutes of idleness.
    idle_core_minutes: int = 60
    # A pod unbound for this long is stuck (capacity, limits, or an unplaceable request).
    pending_pod_minutes: int = 15
    # Neuron runtime execution errors per node in 10 minutes that page.
    execution_errors_per_10_minutes: int = 1
    # Server errors an EKS endpoint's vLLM answers in 5 minutes.
    endpoint_5xx_per_5_minutes: int = 5


def _keep(metric_names: tuple[str, ...]) -> dict[str, Any]:
    return {"source_labels": ["__name__"], "regex": "|".join(metric_names), "action": "keep"}


def _pod_labels() -> list[dict[str, Any]]:
    """Name each series after the pod and node it came from."""
    return [
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"},
    ]


def _pod_job(
    name: str,
    *,
    match: str,
    value: str,
    port: int,
    metrics: tuple[str, ...],
    namespace: str | None = None,
    extra_labels: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Scrape the pods whose ``match`` meta label is ``value`` on container port ``port``."""
    discovery: dict[str, Any] = {"role": "pod"}
    if namespace is not None:
        discovery["namespaces"] = {"names": [namespace]}
    return {
        "job_name": name,
        "kubernetes_sd_configs": [discovery],
        "relabel_configs": [
            {
                "source_labels": [match, "__meta_kubernetes_pod_container_port_number"],
                "regex": f"{value};{port}",
                "action": "keep",
            },
            *extra_labels,
            *_pod_labels(),
        ],
        "metric_relabel_configs": [_keep(metrics)],
    }


def scrape_config(*, cluster_name: str, interval_seconds: int = 60) -> dict[str, Any]:
    """The collector's Prometheus configuration for EKS cluster ``cluster_name``."""
    if interval_seconds < MIN_SCRAPE_INTERVAL_SECONDS:
        raise ValueError(f"scrape interval must be at least {MIN_SCRAPE_INTERVAL_SECONDS} s, got {interval_seconds}")
    interval = f"{interval_seconds}s"
    return {
        "global": {
            "scrape_interval": interval,
            "external_labels": {"cluster": cluster_name},
        },
        "scrape_configs": [
            _pod_job(
                "neuron-monitor",
                match="__meta_kubernetes_pod_container_name",
                value=NEURON_MONITOR_CONTAINER,
                port=NEURON_MONITOR_PORT,
                metrics=NEURON_METRICS,
            ),
            _pod_job(
                "node-problem-detector",
                match="__meta_kubernetes_pod_container_name",
                value=NODE_PROBLEM_DETECTOR_CONTAINER,
                port=NODE_PROBLEM_DETECTOR_PORT,
                metrics=NODE_PROBLEM_METRICS,
            ),
            _pod_job(
                "karpenter",
                match="__meta_kubernetes_pod_label_app_kubernetes_io_name",
                value="karpenter",
                port=KARPENTER_METRICS_PORT,
                metrics=KARPENTER_METRICS,
                namespace="kube-system",
            ),
            _pod_job(
                "vllm",
                match="__meta_kubernetes_pod_label_app_kubernetes_io_component",
                value=ENDPOINT_COMPONENT,
                port=VLLM_PORT,
                metrics=VLLM_METRICS,
                # Series carry the endpoint's name (the pod's app.kubernetes.io/name).
                extra_labels=[
                    {
                        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                        "target_label": "endpoint",
                    }
                ],
            ),
            {
                # The EKS control plane's scheduler, served through the API server.
                "job_name": "kube-scheduler",
                "scheme": "https",
                "metrics_path": "/apis/metrics.eks.amazonaws.com/v1/ksh/container/metrics",
                "authorization": {
                    "type": "Bearer",
                    "credentials_file": "/var/run/secrets/kubernetes.io/serviceaccount/token",
                },
                "kubernetes_sd_configs": [{"role": "endpoints"}],
                "relabel_configs": [
                    {
                        "source_labels": [
                            "__meta_kubernetes_namespace",
                            "__meta_kubernetes_service_name",
                            "__meta_kubernetes_endpoint_port_name",
                        ],
                        "regex": "default;kubernetes;https",
                        "action": "keep",
                    }
                ],
                "metric_relabel_configs": [_keep(SCHEDULER_METRICS)],
            },
        ],
    }


@dataclass(frozen=True)
class AlertRule:
    """One Prometheus alerting rule, with what it means and what to do in its annotations."""

    name: str
    expr: str
    for_minutes: int
    severity: str
    summary: str
    action: str

    def as_rule(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": f"{self.for_minutes}m",
            "labels": {"severity": self.severity},
            "annotations": {"summary": self.summary, "action": self.action},
        }


def alert_list(thresholds: AlertThresholds) -> list[AlertRule]:
    t = thresholds
    return [
        AlertRule(
            name="NeuronUncorrectableMemoryErrors",
            expr='sum by (cluster, instance_id, node) (increase(hardware_ecc_events_total{event_type=~".*_uncorrected"}[10m])) > 0',
            for_minutes=0,
            severity="critical",
            summary="Uncorrectable ECC errors on a Neuron device of node {{ $labels.node }} ({{ $labels.instance_id }}).",
            action="Cordon and drain the node (kubectl drain {{ $labels.node }} --ignore-daemonsets); Karpenter "
            "replaces it. Jobs on it must restart from their last checkpoint.",
        ),
        AlertRule(
            name="NeuronHealthCondition",
            expr=f'max by (cluster, node, reason) (problem_gauge{{type="{NEURON_HEALTH_CONDITION}"}}) > 0',
            for_minutes=0,
            severity="critical",
            summary="The node problem detector set {{ $labels.reason }} on node {{ $labels.node }}.",
            action="A Neuron device reported a hardware error in the kernel log: drain the node (kubectl drain "
            "{{ $labels.node }} --ignore-daemonsets) and let Karpenter replace it; node repair acts on the node "
            "monitoring agent's condition, not on this one.",
        ),
        AlertRule(
            name="NeuronExecutionErrors",
            expr="sum by (cluster, node, error_type) (increase(execution_errors_total[10m]))"
            f" >= {t.execution_errors_per_10_minutes}",
            for_minutes=0,
            severity="warning",
            summary="Neuron runtime execution errors ({{ $labels.error_type }}) on node {{ $labels.node }}.",
            action="Read the workload's logs on that node; 'hardware' errors come with an ECC or NPD event, "
            "'numerical' or 'model' errors are the model's.",
        ),
        AlertRule(
            name="NeuronCoresIdle",
            expr=f"avg by (cluster, node) (neuroncore_utilization_ratio) < {t.idle_core_utilization}",
            for_minutes=t.idle_core_minutes,
            severity="warning",
            summary="A model is loaded on node {{ $labels.node }} but its NeuronCores have been idle for "
            f"{t.idle_core_minutes} minutes.",
            action="Scale the endpoint or job down, or check that traffic reaches it: idle Neuron capacity is the "
            "most expensive thing on the bill.",
        ),
        AlertRule(
            name="PodsPendingTooLong",
            expr="max by (cluster, namespace, name) (karpenter_pods_current_unbound_time_seconds)"
            f" > {t.pending_pod_minutes * 60}",
            for_minutes=0,
            severity="warning",
            summary=f"Pod {{{{ $labels.namespace }}}}/{{{{ $labels.name }}}} has waited more than {t.pending_pod_minutes}"
            " minutes for a node.",
            action="kubectl describe pod shows why: a NodePool limit reached, no capacity of the type in the zone "
            "(check capacity reservations), or a Neuron device count the scheduler cannot place.",
        ),
        AlertRule(
            name="EndpointServerErrors",
            expr='sum by (cluster, namespace, endpoint) (increase(http_requests_total{job="vllm", status="5xx"}[5m]))'
            f" >= {t.endpoint_5xx_per_5_minutes}",
            for_minutes=0,
            severity="warning",
            summary="EKS endpoint {{ $labels.endpoint }} answered with server errors.",
            action="kubectl logs -n {{ $labels.namespace }} -l app.kubernetes.io/name={{ $labels.endpoint }}: an "
            "out-of-memory device, a request longer than the compiled sequence length, or a crashed engine.",
        ),
        AlertRule(
            name="KarpenterCloudProviderErrors",
            expr="sum by (cluster, controller, method, error) (increase(karpenter_cloudprovider_errors_total[15m])) > 0",
            for_minutes=15,
            severity="warning",
            summary="Karpenter's calls to EC2 keep failing ({{ $labels.method }}: {{ $labels.error }}).",
            action="kubectl logs -n kube-system deploy/karpenter: insufficient capacity, an exhausted reservation or "
            "missing IAM permissions stop new Neuron nodes.",
        ),
    ]


def alert_rules(thresholds: AlertThresholds) -> dict[str, Any]:
    """The workspace's rule file: one group evaluated every minute."""
    return {
        "groups": [
            {
                "name": "neuron-platform",
                "interval": "1m",
                "rules": [rule.as_rule() for rule in alert_list(thresholds)],
            }
        ]
    }


def alertmanager_definition(*, topic_arn: str, region: str) -> str:
    """Route every alert to ``topic_arn`` (the platform's alarm topic); resolved ones too."""
    config = {
        "alertmanager_config": yaml.safe_dump(
            {
                "route": {
                    "receiver": "sns",
                    "group_by": ["alertname", "cluster"],
                    "group_wait": "30s",
                    "group_interval": "5m",
                    "repeat_interval": "4h",
                },
                "receivers": [
                    {
                        "name": "sns",
                        "sns_configs": [
                            {
                                "topic_arn": topic_arn,
                                "sigv4": {"region": region},
                                "send_resolved": True,
                                "subject": "[{{ .Status }}] {{ .CommonLabels.alertname }}",
                            }
                        ],
                    }
                ],
            },
            sort_keys=False,
            width=_NO_WRAP,
        )
    }
    return yaml.safe_dump(config, sort_keys=False, width=_NO_WRAP)


def to_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=_NO_WRAP)
