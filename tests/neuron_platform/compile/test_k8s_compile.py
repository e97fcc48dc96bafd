"""The compile namespace and Job: Pod Security Admission, pod security contexts, NetworkPolicies."""

from __future__ import annotations

from typing import Any

import pytest

from neuron_platform.config import load_config
from neuron_platform.k8s.compile import (
    COMPILE_APP_LABEL,
    COMPILE_NAMESPACE,
    POD_IDENTITY_AGENT_CIDR,
    compile_job_template,
    compile_namespace_objects,
)
from neuron_platform.k8s.pod_security import PSA_VERSION
from tests.conftest import REPO

CONFIG = load_config(REPO / "config" / "examples" / "inference-small.yaml")
PLAN = CONFIG.plan_endpoint(CONFIG.serving.endpoints[0])
JOB = compile_job_template(PLAN, timeout_seconds=14400, hf_token_secret_arn="arn:aws:secretsmanager:x:1:secret:hf")
POD = JOB["spec"]["template"]["spec"]


def _objects() -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in compile_namespace_objects()}


def test_the_namespace_enforces_baseline_and_warns_at_restricted() -> None:
    labels = _objects()[("Namespace", COMPILE_NAMESPACE)]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/enforce-version"] == PSA_VERSION
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


def test_the_compile_pod_has_no_api_token_no_capabilities_no_escalation() -> None:
    assert POD["automountServiceAccountToken"] is False
    assert _objects()[("ServiceAccount", "neuron-compile")]["automountServiceAccountToken"] is False
    assert POD["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    (container,) = POD["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    # Baseline admits it: no privileged, host namespaces, hostPath or added capabilities.
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(POD)
    assert all("hostPath" not in v for v in POD["volumes"])
    assert "privileged" not in container["securityContext"]


def test_the_job_gets_the_secrets_arn_never_a_token_and_writes_staging() -> None:
    (container,) = POD["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["HF_TOKEN_SECRET_ARN"]["value"] == "arn:aws:secretsmanager:x:1:secret:hf"
    assert "HF_TOKEN" not in env
    assert all("valueFrom" not in e for e in container["env"])  # no Kubernetes Secret
    assert env["OUTPUT_URL"]["value"] == "__OUTPUT_URL__"
    assert "ARTIFACTS_URL" not in env


def test_the_namespace_denies_all_traffic_but_dns_pod_identity_and_https_out() -> None:
    objects = _objects()
    deny = objects[("NetworkPolicy", "default-deny")]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert objects[("NetworkPolicy", "allow-dns")]["spec"]["policyTypes"] == ["Egress"]
    allow = objects[("NetworkPolicy", "allow-compile-egress")]["spec"]
    assert allow["podSelector"] == {"matchLabels": COMPILE_APP_LABEL}
    assert allow["policyTypes"] == ["Egress"]  # nothing may connect in
    agent, https = allow["egress"]
    assert agent == {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT_CIDR}}], "ports": [{"protocol": "TCP", "port": 80}]}
    assert https["ports"] == [{"protocol": "TCP", "port": 443}]
    # The policies select the Job's pods.
    assert JOB["spec"]["template"]["metadata"]["labels"].items() >= COMPILE_APP_LABEL.items()


@pytest.mark.parametrize("kind", ["Namespace", "ServiceAccount", "NetworkPolicy"])
def test_every_object_is_in_the_compile_namespace(kind: str) -> None:
    for (found, _), obj in _objects().items():
        if found == kind and kind != "Namespace":
            assert obj["metadata"]["namespace"] == COMPILE_NAMESPACE
