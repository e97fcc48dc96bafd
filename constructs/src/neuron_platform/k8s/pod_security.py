"""Pod security for every namespace and pod the platform writes: Pod Security Admission labels,
security contexts, and NetworkPolicies (default deny plus named allows).

Plain Python, shared by the serving, compile, training and monitoring builders so one rule
holds everywhere. Pod Security Admission levels and fields follow the Kubernetes "Pod
Security Standards" (baseline forbids privileged pods, host namespaces, hostPath and added
capabilities beyond the default set; restricted also requires non-root, no privilege
escalation, all capabilities dropped and the RuntimeDefault seccomp profile). NetworkPolicies
are enforced by the VPC CNI's network policy agent (``enableNetworkPolicy`` on the vpc-cni
add-on).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from neuron_platform import versions
from neuron_platform.k8s import Manifest

PodSecurityLevel = Literal["baseline", "restricted"]
# Pinned to the cluster's minor, never "latest": a Kubernetes upgrade must not tighten or
# loosen admission silently.
PSA_VERSION = f"v{versions.KUBERNETES_VERSION}"
PSA_PREFIX = "pod-security.kubernetes.io"
RUNTIME_DEFAULT_SECCOMP = {"type": "RuntimeDefault"}
# kube-dns: the CoreDNS pods every namespace must reach.
DNS_SELECTOR = {"k8s-app": "kube-dns"}


def pod_security_labels(enforce: PodSecurityLevel) -> dict[str, str]:
    """Namespace labels: enforce ``enforce``, and warn and audit at ``restricted`` so anything
    short of it shows up in kubectl warnings and the audit log."""
    labels: dict[str, str] = {}
    for mode, level in (("enforce", enforce), ("warn", "restricted"), ("audit", "restricted")):
        labels[f"{PSA_PREFIX}/{mode}"] = level
        labels[f"{PSA_PREFIX}/{mode}-version"] = PSA_VERSION
    return labels


def namespace(name: str, *, enforce: PodSecurityLevel, labels: Mapping[str, str] | None = None) -> Manifest:
    """A Namespace with Pod Security Admission labels."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {**(labels or {}), **pod_security_labels(enforce)}},
    }


def container_security_context(
    *, run_as_non_root: bool = True, read_only_root_filesystem: bool = False, add_capabilities: Sequence[str] = ()
) -> dict[str, object]:
    """No privilege escalation, every capability dropped (plus ``add_capabilities``, which
    baseline allows only from its default set), RuntimeDefault seccomp; non-root unless the
    image needs root (``run_as_non_root=False``: restricted then refuses the pod)."""
    capabilities: dict[str, object] = {"drop": ["ALL"]}
    if add_capabilities:
        capabilities["add"] = list(add_capabilities)
    context: dict[str, object] = {
        "allowPrivilegeEscalation": False,
        "capabilities": capabilities,
        "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
    }
    if run_as_non_root:
        context["runAsNonRoot"] = True
    if read_only_root_filesystem:
        context["readOnlyRootFilesystem"] = True
    return context


def pod_security_context(*, run_as_user: int | None = None, fs_group: int | None = None) -> dict[str, object]:
    """Pod-level: RuntimeDefault seccomp; a fixed non-root user and group when given."""
    context: dict[str, object] = {"seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP)}
    if run_as_user is not None:
        context.update({"runAsNonRoot": True, "runAsUser": run_as_user, "runAsGroup": run_as_user})
    if fs_group is not None:
        context["fsGroup"] = fs_group
    return context


def default_deny(namespace_name: str) -> Manifest:
    """Nothing in or out of ``namespace_name`` unless another policy allows it."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": namespace_name},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def allow_dns(namespace_name: str) -> Manifest:
    """Every pod of ``namespace_name`` may resolve names through CoreDNS."""
    ports = [{"protocol": protocol, "port": 53} for protocol in ("UDP", "TCP")]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-dns", "namespace": namespace_name},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": dict(DNS_SELECTOR)},
                        }
                    ],
                    "ports": ports,
                }
            ],
        },
    }


def network_policy(
    name: str,
    namespace_name: str,
    *,
    pod_selector: Mapping[str, str],
    ingress: Sequence[Mapping[str, object]] = (),
    egress: Sequence[Mapping[str, object]] = (),
) -> Manifest:
    """An allow rule for the pods matching ``pod_selector`` (empty: every pod)."""
    types = [t for t, rules in (("Ingress", ingress), ("Egress", egress)) if rules]
    spec: dict[str, object] = {"podSelector": {"matchLabels": dict(pod_selector)} if pod_selector else {}}
    spec["policyTypes"] = types
    if ingress:
        spec["ingress"] = [dict(r) for r in ingress]
    if egress:
        spec["egress"] = [dict(r) for r in egress]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace_name},
        "spec": spec,
    }


def https_egress_anywhere() -> dict[str, object]:
    """Egress rule: TCP 443 to any address (AWS APIs and the VPC endpoints' addresses, which
    change; S3 through the gateway endpoint has no fixed range either)."""
    return {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}


# The EKS Pod Identity agent: pods fetch their role's credentials from this link-local
# address on their node (port 80; the SDKs read AWS_CONTAINER_CREDENTIALS_FULL_URI).
POD_IDENTITY_AGENT_CIDR = "169.254.170.23/32"
POD_IDENTITY_AGENT_PORT = 80


def pod_identity_agent_egress() -> dict[str, object]:
    """Egress rule: the node's Pod Identity agent, for pods whose service account has a role."""
    return {
        "to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT_CIDR}}],
        "ports": [{"protocol": "TCP", "port": POD_IDENTITY_AGENT_PORT}],
    }


def ingress_from_cidrs(cidrs: Sequence[str], ports: Sequence[int]) -> dict[str, object]:
    """Ingress rule: TCP ``ports`` from the address blocks ``cidrs`` (for example the VPC, where
    the managed Prometheus collector's network interfaces are)."""
    return {
        "from": [{"ipBlock": {"cidr": cidr}} for cidr in cidrs],
        "ports": [{"protocol": "TCP", "port": port} for port in ports],
    }


def privileged_namespace(
    name: str, *, reason: str, warn: PodSecurityLevel = "baseline", labels: Mapping[str, str] | None = None
) -> Manifest:
    """A Namespace whose pods need more than baseline (host paths, privileged containers):
    Pod Security Admission enforces ``privileged`` there, pinned to the cluster's minor and
    stated explicitly so the choice is visible, and warns and audits at ``warn``. ``reason``
    is recorded in the annotation ``neuron-platform/pod-security-reason``."""
    pss_labels: dict[str, str] = {}
    for mode, level in (("enforce", "privileged"), ("warn", warn), ("audit", warn)):
        pss_labels[f"{PSA_PREFIX}/{mode}"] = level
        pss_labels[f"{PSA_PREFIX}/{mode}-version"] = PSA_VERSION
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {**(labels or {}), **pss_labels},
            "annotations": {"neuron-platform/pod-security-reason": reason},
        },
    }
