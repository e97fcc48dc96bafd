"""The Neuron cluster dashboard for Grafana (Amazon Managed Grafana or your own), as JSON.

CloudWatch dashboards cannot query Prometheus, so the cluster-level views (NeuronCores,
device memory, execution errors and latency, nodes per pool, pending pods, Karpenter
launches and interruptions, vLLM endpoints) live in this dashboard over the platform's
Amazon Managed Service for Prometheus workspace. ``make dashboards`` writes it to
``docs/operations/neuron-cluster-dashboard.json``; a test keeps that file current.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"


PANELS: tuple[Panel, ...] = (
    Panel(
        "NeuronCore utilization by node",
        (("avg by (node) (neuroncore_utilization_ratio)", "{{node}}"),),
        unit="percentunit",
    ),
    Panel(
        "Neuron device memory used by node",
        (('sum by (node) (neuron_runtime_memory_used_bytes{memory_location="neuron_device"})', "{{node}}"),),
        unit="bytes",
    ),
    Panel(
        "Neuron execution errors per second",
        (("sum by (error_type) (rate(execution_errors_total[5m]))", "{{error_type}}"),),
    ),
    Panel(
        "Neuron execution latency",
        (('max by (node, percentile) (execution_latency_seconds{percentile=~"p50|p99"})', "{{node}} {{percentile}}"),),
        unit="s",
    ),
    Panel(
        "Uncorrectable ECC events (1 h)",
        (('sum by (node) (increase(hardware_ecc_events_total{event_type=~".*_uncorrected"}[1h]))', "{{node}}"),),
    ),
    Panel(
        "Neuron health conditions (node problem detector)",
        (('max by (node, reason) (problem_gauge{type="NeuronHealth"})', "{{node}} {{reason}}"),),
    ),
    Panel(
        "Nodes per NodePool",
        (('count by (nodepool) (karpenter_nodes_allocatable{resource_type="cpu"})', "{{nodepool}}"),),
    ),
    Panel(
        "Pending pods",
        (
            ("count(karpenter_pods_current_unbound_time_seconds > 60) or vector(0)", "unbound > 1 min"),
            ("sum by (queue) (scheduler_pending_pods)", "default scheduler: {{queue}}"),
        ),
    ),
    Panel(
        "Karpenter launches (15 min)",
        (("sum by (nodepool) (increase(karpenter_nodeclaims_created_total[15m]))", "{{nodepool}}"),),
    ),
    Panel(
        "Karpenter interruptions and disruptions (15 min)",
        (
            (
                "sum by (message_type) (increase(karpenter_interruption_received_messages_total[15m]))",
                "{{message_type}}",
            ),
            ("sum by (reason) (increase(karpenter_nodeclaims_disrupted_total[15m]))", "disrupted: {{reason}}"),
        ),
    ),
    Panel(
        "Endpoint requests running and waiting",
        (
            ("sum by (endpoint) (vllm:num_requests_running)", "{{endpoint}} running"),
            ("sum by (endpoint) (vllm:num_requests_waiting)", "{{endpoint}} waiting"),
        ),
    ),
    Panel(
        "Endpoint latency p99",
        (
            (
                "histogram_quantile(0.99, sum by (le, endpoint) (rate(vllm:e2e_request_latency_seconds_bucket[5m])))",
                "{{endpoint}} end-to-end",
            ),
            (
                "histogram_quantile(0.99, sum by (le, endpoint) (rate(vllm:time_to_first_token_seconds_bucket[5m])))",
                "{{endpoint}} first token",
            ),
        ),
        unit="s",
    ),
    Panel(
        "Endpoint server errors per second",
        (('sum by (endpoint) (rate(http_requests_total{job="vllm", status="5xx"}[5m]))', "{{endpoint}}"),),
    ),
    Panel(
        "Endpoint generated tokens per second",
        (("sum by (endpoint) (rate(vllm:generation_tokens_total[5m]))", "{{endpoint}}"),),
    ),
)


def _panel(index: int, panel: Panel) -> dict[str, Any]:
    width, height = 12, 8
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": panel.title,
        "datasource": DATASOURCE,
        "gridPos": {"x": (index % 2) * width, "y": (index // 2) * height, "w": width, "h": height},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + n), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for n, (expr, legend) in enumerate(panel.queries)
        ],
    }


def dashboard(cluster_name: str | None = None) -> dict[str, Any]:
    """Grafana dashboard JSON; pick the workspace as the ``datasource`` variable on import."""
    return {
        "title": "Neuron platform: cluster" + (f" {cluster_name}" if cluster_name else ""),
        "uid": "neuron-platform-cluster",
        "schemaVersion": 39,
        "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus workspace",
                    "type": "datasource",
                    "query": "prometheus",
                }
            ]
        },
        "panels": [_panel(i, p) for i, p in enumerate(PANELS)],
    }


def dashboard_json() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"
