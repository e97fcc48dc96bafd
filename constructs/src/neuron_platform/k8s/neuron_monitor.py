"""neuron-monitor, the way the Neuron SDK ships it for Kubernetes, on every Neuron pool.

The Neuron Helm chart dropped its monitor before 1.9.0; the SDK documentation now tells
users to apply ``src/k8/k8s-neuron-monitor-daemonset.yml`` (vendored unmodified in
``data/neuron-monitor/`` with its source). The objects here are that manifest with two
changes the platform needs, and nothing else:

- the Neuron taint's toleration: the upstream DaemonSet has none, so it would never run on
  Neuron nodes, which all carry ``aws.amazon.com/neuron:NoSchedule``;
- the instance types of its node affinity: upstream's list predates trn2; the platform
  adds every Neuron type it manages (the exporter is the same neuron-monitor binary the
  SDK's tools package ships for all of them).

Its namespace, which the manifest names but does not create, is created beside it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from neuron_platform.k8s import Manifest
from neuron_platform.k8s.helm_values import NEURON_TOLERATION

UPSTREAM_MANIFEST = Path(__file__).resolve().parents[1] / "data" / "neuron-monitor" / "k8s-neuron-monitor-daemonset.yml"
INSTANCE_TYPE_KEY = "node.kubernetes.io/instance-type"


@cache
def upstream_daemonset() -> Manifest:
    """The SDK's neuron-monitor DaemonSet, as published."""
    loaded: dict[str, Any] = yaml.safe_load(UPSTREAM_MANIFEST.read_text())
    return loaded


def neuron_monitor_namespace() -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": upstream_daemonset()["metadata"]["namespace"]},
    }


def neuron_monitor_daemonset(instance_types: Iterable[str]) -> Manifest:
    """The upstream DaemonSet, tolerating the Neuron taint and scheduled on ``instance_types`` too."""
    daemonset = copy.deepcopy(upstream_daemonset())
    pod = daemonset["spec"]["template"]["spec"]
    pod["tolerations"] = [*pod.get("tolerations", []), dict(NEURON_TOLERATION)]
    for term in pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]:
        for expression in term["matchExpressions"]:
            if expression["key"] == INSTANCE_TYPE_KEY:
                known = list(expression["values"])
                expression["values"] = known + sorted(set(instance_types) - set(known))
    return daemonset


def neuron_monitor_port() -> int:
    """The port the upstream container serves Prometheus metrics on."""
    (container,) = upstream_daemonset()["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    return int(port["containerPort"])
