"""Helm values for the charts the cluster installs. Only keys we rely on are set."""

from __future__ import annotations

from typing import Any

from neuron_platform.capacity import EFA_LABEL, NEURON_TAINT_KEY
from neuron_platform.operations.prometheus_config import NEURON_MONITOR_PORT, NODE_PROBLEM_DETECTOR_PORT

SYSTEM_NODE_LABEL = "neuron-platform/role"
SYSTEM_NODE_VALUE = "system"
NEURON_SCHEDULER_NAME = "my-scheduler"

NEURON_TOLERATION = {"key": NEURON_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
CRITICAL_ADDONS_TOLERATION = {"key": "CriticalAddonsOnly", "operator": "Exists"}
SYSTEM_NODE_SELECTOR = {"kubernetes.io/os": "linux", SYSTEM_NODE_LABEL: SYSTEM_NODE_VALUE}


def karpenter_values(
    *, cluster_name: str, interruption_queue: str, service_account: str, node_overlay: bool = False
) -> dict[str, Any]:
    """Karpenter controller: on the managed system nodes (never on nodes it launches).

    ``node_overlay`` turns on the (alpha) NodeOverlay gate, used to declare the EFA
    pools' hugepages to the scheduling simulation.
    """
    return {
        "settings": {
            "clusterName": cluster_name,
            "interruptionQueue": interruption_queue,
            "featureGates": {
                # Replace nodes the EKS node monitoring agent reports unhealthy.
                "nodeRepair": True,
                # Use ODCRs and Capacity Blocks listed in EC2NodeClasses.
                "reservedCapacity": True,
                "nodeOverlay": node_overlay,
            },
        },
        "serviceAccount": {"name": service_account},
        "replicas": 2,
        "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
        "controller": {
            "resources": {
                "requests": {"cpu": "1", "memory": "1Gi"},
                "limits": {"cpu": "1", "memory": "1Gi"},
            }
        },
    }


def node_problem_detector_command() -> list[str]:
    """The detector with the chart's kernel-log rules (mounted at /config) and a reachable exporter."""
    return [
        "/node-problem-detector",
        "--logtostderr",
        "--config.system-log-monitor=/config/kernel-monitor.json",
        "--prometheus-address=0.0.0.0",
        f"--prometheus-port={NODE_PROBLEM_DETECTOR_PORT}",
    ]


def neuron_chart_values() -> dict[str, Any]:
    """Neuron chart: device plugin, the scheduler extension as `my-scheduler`, monitor, NPD.

    The device plugin already tolerates the Neuron taint; neuron-monitor ships without
    tolerations and would never run on Neuron nodes, so they are added. The node problem
    detector runs in monitor mode: its recovery acts through Auto Scaling groups, which
    Karpenter nodes do not have (Karpenter node repair replaces unhealthy nodes instead).
    """
    return {
        "devicePlugin": {"tolerations": [CRITICAL_ADDONS_TOLERATION, NEURON_TOLERATION]},
        "scheduler": {
            "enabled": True,
            "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
            "customScheduler": {
                "enabled": True,
                "fullnameOverride": NEURON_SCHEDULER_NAME,
                "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
            },
        },
        # The managed Prometheus collector finds the exporter by container name and port.
        "monitor": {
            "enabled": True,
            "exporter": {"port": NEURON_MONITOR_PORT, "tolerations": [NEURON_TOLERATION]},
        },
        # Monitor mode; its Prometheus exporter listens on the pod address (NPD's default
        # is 127.0.0.1) so the managed collector can read the Neuron health conditions.
        "npd": {
            "enabled": True,
            "nodeRecovery": {"enabled": False},
            "nodeProblemDetector": {"image": {"command": node_problem_detector_command()}},
        },
    }


def efa_device_plugin_values() -> dict[str, Any]:
    """EFA device plugin: only on EFA pools (an EFA-capable node without EFA crash-loops it)."""
    return {
        "nodeSelector": {EFA_LABEL: "true"},
        "tolerations": [NEURON_TOLERATION],
    }


def load_balancer_controller_values(
    *, cluster_name: str, region: str, vpc_id: str, service_account: str
) -> dict[str, Any]:
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "serviceAccount": {"create": True, "name": service_account},
        "replicaCount": 2,
        "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
    }


def kubeflow_trainer_values() -> dict[str, Any]:
    """Kubeflow Trainer manager on the system nodes; JobSet installed as its dependency.

    The chart's example runtimes stay off: the platform provides one Neuron runtime per
    EFA pool instead.
    """
    return {
        "jobset": {"install": True},
        "manager": {"nodeSelector": dict(SYSTEM_NODE_SELECTOR)},
        "runtimes": {"defaultEnabled": False},
    }


def fsx_csi_driver_values() -> dict[str, Any]:
    """FSx for Lustre CSI driver for static volumes only.

    The controller (which provisions file systems) runs on the system nodes and has no AWS
    permissions: our file system is created by CloudFormation, so nothing is provisioned
    through Kubernetes. The node plugin keeps the chart's tolerate-all-taints default so
    it lands on tainted Neuron nodes, where the training pods mount the volume.
    """
    return {
        "controller": {
            "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
            "tolerations": [CRITICAL_ADDONS_TOLERATION],
        },
        "node": {"tolerateAllTaints": True},
    }


def keda_values() -> dict[str, Any]:
    """KEDA's operator, metrics server and webhooks on the system nodes (chart defaults otherwise)."""
    return {"nodeSelector": dict(SYSTEM_NODE_SELECTOR)}
