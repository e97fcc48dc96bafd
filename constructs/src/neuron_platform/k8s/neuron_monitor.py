"""neuron-monitor, the way the Neuron SDK ships it for Kubernetes, on every Neuron pool.

The Neuron Helm chart dropped its monitor before 1.9.0; the SDK documentation now tells
users to apply ``src/k8/k8s-neuron-monitor-daemonset.yml`` (vendored unmodified in
``data/neuron-monitor/`` with its source). The objects here are that manifest with two
changes the platform needs, and nothing else:

- the Neuron taint's toleration: the upstream DaemonSet has none, so it would never run on
  Neuron nodes, which all carry ``aws.amazon.com/neuron:NoSchedule``;
- the instance types of its node affinity: upstream's list predates trn2; the platform
  adds every Neuron type it manages (the exporter is the same neuron-monitor binary the
  SDK's tools package ships for all of them);
- no service account token mounted (``automountServiceAccountToken: false``).

Its namespace, which the manifest names but does not create, is created beside it, with
Pod Security Admission at ``privileged`` (the upstream container is privileged: it reads
every Neuron device of the node without requesting them), default-deny network policies
and one allow: the managed Prometheus collector's scrape of port 8000. The pods mount no
API token (neuron-monitor never calls the API). The node problem detector's namespace
(the Neuron chart's, which the chart does not create either) is made the same way here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from neuron_platform.k8s import Manifest
from neuron_platform.k8s.helm_values import NEURON_TOLERATION, NPD_NAMESPACE
from neuron_platform.k8s.pod_security import (
    allow_dns,
    default_deny,
    https_egress_anywhere,
    ingress_from_cidrs,
    network_policy,
    privileged_namespace,
)
from neuron_platform.operations.prometheus_config import NODE_PROBLEM_DETECTOR_PORT

UPSTREAM_MANIFEST = Path(__file__).resolve().parents[1] / "data" / "neuron-monitor" / "k8s-neuron-monitor-daemonset.yml"
INSTANCE_TYPE_KEY = "node.kubernetes.io/instance-type"


@cache
def upstream_daemonset() -> Manifest:
    """The SDK's neuron-monitor DaemonSet, as published."""
    loaded: dict[str, Any] = yaml.safe_load(UPSTREAM_MANIFEST.read_text())
    return loaded


def neuron_monitor_namespace_name() -> str:
    name: str = upstream_daemonset()["metadata"]["namespace"]
    return name


def neuron_monitor_namespace() -> Manifest:
    return privileged_namespace(
        neuron_monitor_namespace_name(),
        reason="neuron-monitor runs privileged, as the Neuron SDK ships it: it reads every Neuron device and "
        "runtime of the node without requesting them from the device plugin",
    )


def neuron_monitor_network_policies(scraper_cidrs: Iterable[str] = ()) -> list[Manifest]:
    """Nothing in or out of neuron-monitor's namespace but, with ``scraper_cidrs`` (where the
    managed Prometheus collector's interfaces are), the scrape of its exporter port."""
    name = neuron_monitor_namespace_name()
    policies = [default_deny(name)]
    cidrs = list(scraper_cidrs)
    if cidrs:
        policies.append(
            network_policy(
                "allow-metrics-scrape",
                name,
                pod_selector={"app": "neuron-monitor"},
                ingress=[ingress_from_cidrs(cidrs, [neuron_monitor_port()])],
            )
        )
    return policies


def healthcheck_namespace() -> Manifest:
    """The node problem detector's namespace (the Neuron chart names it but does not create it)."""
    return privileged_namespace(
        NPD_NAMESPACE,
        reason="the Neuron chart's node problem detector reads the node's kernel log through hostPath "
        "mounts of /dev/kmsg and /var/log, which baseline refuses",
    )


def healthcheck_network_policies(scraper_cidrs: Iterable[str] = ()) -> list[Manifest]:
    """Default deny in the node problem detector's namespace; it may resolve names and call
    HTTPS endpoints (the API server, where it sets node conditions and events), and, with
    ``scraper_cidrs``, be scraped on its exporter port."""
    policies = [
        default_deny(NPD_NAMESPACE),
        allow_dns(NPD_NAMESPACE),
        network_policy("allow-https-egress", NPD_NAMESPACE, pod_selector={}, egress=[https_egress_anywhere()]),
    ]
    cidrs = list(scraper_cidrs)
    if cidrs:
        policies.append(
            network_policy(
                "allow-metrics-scrape",
                NPD_NAMESPACE,
                pod_selector={},
                ingress=[ingress_from_cidrs(cidrs, [NODE_PROBLEM_DETECTOR_PORT])],
            )
        )
    return policies


def neuron_monitor_daemonset(instance_types: Iterable[str]) -> Manifest:
    """The upstream DaemonSet, tolerating the Neuron taint and scheduled on ``instance_types`` too."""
    daemonset = copy.deepcopy(upstream_daemonset())
    pod = daemonset["spec"]["template"]["spec"]
    pod["tolerations"] = [*pod.get("tolerations", []), dict(NEURON_TOLERATION)]
    # It never calls the Kubernetes API: no token in the pod.
    pod["automountServiceAccountToken"] = False
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
