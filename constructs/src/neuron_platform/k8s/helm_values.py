"""Helm values for the charts the cluster installs. Only keys we rely on are set."""

from __future__ import annotations

from typing import Any

import yaml

from neuron_platform import versions
from neuron_platform.capacity import EFA_LABEL, NEURON_TAINT_KEY
from neuron_platform.operations.prometheus_config import NODE_PROBLEM_DETECTOR_PORT

SYSTEM_NODE_LABEL = "neuron-platform/role"
SYSTEM_NODE_VALUE = "system"
NEURON_SCHEDULER_NAME = "my-scheduler"

NEURON_TOLERATION = {"key": NEURON_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
CRITICAL_ADDONS_TOLERATION = {"key": "CriticalAddonsOnly", "operator": "Exists"}
SYSTEM_NODE_SELECTOR = {"kubernetes.io/os": "linux", SYSTEM_NODE_LABEL: SYSTEM_NODE_VALUE}


def karpenter_values(
    *,
    cluster_name: str,
    interruption_queue: str,
    service_account: str,
    node_overlay: bool = False,
    static_capacity: bool = False,
) -> dict[str, Any]:
    """Karpenter controller: on the managed system nodes (never on nodes it launches).

    ``node_overlay`` turns on the (alpha) NodeOverlay gate, used to declare the EFA
    pools' hugepages to the scheduling simulation; ``static_capacity`` the (alpha)
    StaticCapacity gate, for pools that keep a fixed number of nodes (``static_nodes``).
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
                "staticCapacity": static_capacity,
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


# The Neuron chart's own NPD command (values.yaml of 1.9.0, npd.nodeProblemDetector.image.command):
# a shell wrapper that restarts the pod when NPD loses its /dev/kmsg handle. Kept as it is,
# with two flags more so NPD's Prometheus exporter listens on the pod address (its default
# is 127.0.0.1, out of the managed collector's reach); a test compares it with the vendored
# chart's default.
NPD_SCRIPT = """echo "Starting NPD with periodic FD health check (every 5s)..."

# Start NPD in background
/node-problem-detector \\
  --logtostderr \\
  --config.system-log-monitor=/config/kernel-monitor.json \\
  --prometheus-address=0.0.0.0 \\
  --prometheus-port={port} 2>&1 &

NPD_PID=$!
echo "NPD started with PID: $NPD_PID"

# Periodic health check loop
while true; do
  sleep 5

  # Check if NPD process is still running
  if ! kill -0 $NPD_PID 2>/dev/null; then
    echo "NPD process died, exiting..."
    exit 1
  fi

  # Check if NPD still has /dev/kmsg file descriptor open
  if ! ls -l /proc/$NPD_PID/fd/ 2>/dev/null | grep -q "/dev/kmsg"; then
    echo "FATAL: NPD no longer has /dev/kmsg FD open, exiting..."
    kill -9 $NPD_PID
    exit 1
  fi
done
"""
# Namespace of the chart's node problem detector (npd.namespaceOverride); 1.9.0 does not create it.
NPD_NAMESPACE = "neuron-healthcheck-system"


def node_problem_detector_command() -> list[str]:
    """The chart's watchdog wrapper around NPD, with its exporter on the pod address."""
    return ["/bin/sh", "-c", NPD_SCRIPT.format(port=NODE_PROBLEM_DETECTOR_PORT)]


def neuron_chart_values(*, kube_scheduler_image: str) -> dict[str, Any]:
    """Neuron chart: device plugin (chart defaults: it tolerates the Neuron taint), the scheduler
    extension as `my-scheduler` on the system nodes, and the node problem detector.

    The custom scheduler runs ``kube_scheduler_image``, built for the cluster's minor (the
    chart's default is kube-scheduler 1.31, five minors from a 1.36 control plane). The node
    problem detector runs in monitor mode (its recovery acts through Auto Scaling groups,
    which Karpenter nodes do not have; Karpenter node repair replaces unhealthy nodes) with
    its exporter reachable. neuron-monitor is not in this chart (see k8s/neuron_monitor.py).
    """
    repository, _, tag = kube_scheduler_image.rpartition(":")
    return {
        "scheduler": {
            "enabled": True,
            "nodeSelector": {SYSTEM_NODE_LABEL: SYSTEM_NODE_VALUE},
            "customScheduler": {
                # Our workloads name it (NEURON_SCHEDULER_NAME); the chart's default today.
                "fullnameOverride": NEURON_SCHEDULER_NAME,
                "image": {"repository": repository, "tag": tag},
                "nodeSelector": {SYSTEM_NODE_LABEL: SYSTEM_NODE_VALUE},
            },
        },
        "npd": {"nodeProblemDetector": {"image": {"command": node_problem_detector_command()}}},
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
    """Kubeflow Trainer manager on the system nodes; JobSet installed as its dependency (the
    chart's default), at the pinned release. The chart's example runtimes stay off (its
    default): the platform provides one Neuron runtime per EFA pool instead.
    """
    repository, _, tag = versions.JOBSET_IMAGE.rpartition(":")
    return {
        # Pinned here: the JobSet chart's values in git name a moving staging image; its
        # published package rewrites them at release time. Naming the image keeps the deploy
        # independent of that step.
        "jobset": {"image": {"repository": repository, "tag": tag}},
        "manager": {"nodeSelector": dict(SYSTEM_NODE_SELECTOR)},
    }


def fsx_csi_driver_values() -> dict[str, Any]:
    """FSx for Lustre CSI driver for static volumes only.

    The controller (which provisions file systems) runs on the system nodes and has no AWS
    permissions: our file system is created by CloudFormation, so nothing is provisioned
    through Kubernetes. The node plugin keeps the chart's tolerate-all-taints default so
    it lands on tainted Neuron nodes, where the training pods mount the volume.
    """
    return {
        # The chart adds kubernetes.io/os itself and keeps its own tolerations (CriticalAddonsOnly,
        # NoExecute for 300 s): only the system-node label is ours.
        "controller": {"nodeSelector": {SYSTEM_NODE_LABEL: SYSTEM_NODE_VALUE}},
        "node": {"tolerateAllTaints": True},
    }


def keda_values() -> dict[str, Any]:
    """KEDA's operator, metrics server and webhooks on the system nodes (chart defaults otherwise;
    the chart adds kubernetes.io/os to every node selector itself).

    Secret access restricted: by default the chart lets the operator list and watch every
    Secret in the cluster (to resolve TriggerAuthentications that name one). The platform's
    scalers authenticate with Pod Identity (the ``aws-pod-identity`` ClusterTriggerAuthentication)
    and read no Secret, so the operator and its metrics server may read Secrets of KEDA's own
    namespace only (its certificates); a TriggerAuthentication naming a Secret elsewhere fails.
    """
    return {
        "nodeSelector": {SYSTEM_NODE_LABEL: SYSTEM_NODE_VALUE},
        "permissions": {
            "operator": {"restrict": {"secret": True}},
            "metricServer": {"restrict": {"secret": True}},
        },
    }


# Kueue's manager configuration (config.kueue.x-k8s.io/v1beta2 Configuration): the chart's
# own default, minus the integrations we do not use, plus waitForPodsReady. The chart reads
# it as one YAML string (managerConfig.controllerManagerConfigYaml) and adds its internal
# certificate settings.
KUEUE_INTEGRATIONS = ("trainer.kubeflow.org/trainjob",)
# An admitted job whose pods are not all running within this time is evicted (its pods
# removed, quota released) and requeued: a job never holds half its nodes indefinitely.
KUEUE_PODS_READY_TIMEOUT = "30m"


def kueue_manager_config() -> dict[str, Any]:
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "health": {"healthProbeBindAddress": ":8081"},
        "metrics": {"bindAddress": ":8443"},
        "webhook": {"port": 9443},
        "leaderElection": {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"},
        "controller": {
            "groupKindConcurrency": {
                "Workload.kueue.x-k8s.io": 10,
                "LocalQueue.kueue.x-k8s.io": 5,
                "ClusterQueue.kueue.x-k8s.io": 5,
                "ResourceFlavor.kueue.x-k8s.io": 1,
            }
        },
        "clientConnection": {"qps": 300, "burst": 500},
        # Only TrainJobs: the chart's default also intercepts batch Jobs, Pods, Deployments and
        # StatefulSets (webhooks on every namespace but kube-system and kueue-system).
        "integrations": {"frameworks": list(KUEUE_INTEGRATIONS)},
        # All-or-nothing in time as well as quota: node launches (Karpenter) and image pulls
        # take minutes, so half an hour before an admitted job that cannot start is requeued,
        # with exponential backoff (60 s, 120 s, ... up to an hour) and no limit on retries.
        "waitForPodsReady": {
            "timeout": KUEUE_PODS_READY_TIMEOUT,
            "blockAdmission": False,
            "requeuingStrategy": {"timestamp": "Eviction", "backoffBaseSeconds": 60, "backoffMaxSeconds": 3600},
        },
    }


def kueue_values() -> dict[str, Any]:
    """Kueue's controller on the system nodes, two replicas (leader election; both serve the
    webhooks) under a disruption budget, the released image pinned, TrainJobs only."""
    return {
        "controllerManager": {
            "replicas": 2,
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
            "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
            "manager": {
                # The chart's git values name a moving staging image; the published package
                # rewrites them at release time. Naming the release image keeps the deploy
                # independent of that step.
                "image": {
                    "repository": versions.KUEUE_IMAGE_REPOSITORY,
                    "tag": versions.KUEUE_IMAGE.rpartition(":")[2],
                    "pullPolicy": "IfNotPresent",
                },
            },
        },
        "managerConfig": {"controllerManagerConfigYaml": yaml.safe_dump(kueue_manager_config(), sort_keys=False)},
    }
