"""Cluster-side objects of the managed Prometheus collector: read-only RBAC for its user.

The collector authenticates as ``aps-collector-user`` (mapped by an access entry in the
operations stack). It discovers pods, endpoints and nodes, reads ``/metrics`` and the
EKS control plane's scheduler metrics, and nothing else.
"""

from __future__ import annotations

from neuron_platform.k8s import Manifest
from neuron_platform.operations.prometheus_config import COLLECTOR_USER

COLLECTOR_ROLE = "aps-collector-role"


def collector_cluster_role() -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": COLLECTOR_ROLE},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["nodes", "nodes/metrics", "services", "endpoints", "pods"],
                "verbs": ["get", "list", "watch"],
            },
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
            {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            {"apiGroups": ["metrics.eks.amazonaws.com"], "resources": ["kcm/metrics", "ksh/metrics"], "verbs": ["get"]},
        ],
    }


def collector_cluster_role_binding() -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{COLLECTOR_ROLE}-binding"},
        "subjects": [{"kind": "User", "name": COLLECTOR_USER, "apiGroup": "rbac.authorization.k8s.io"}],
        "roleRef": {"kind": "ClusterRole", "name": COLLECTOR_ROLE, "apiGroup": "rbac.authorization.k8s.io"},
    }


def collector_rbac() -> list[Manifest]:
    return [collector_cluster_role(), collector_cluster_role_binding()]
