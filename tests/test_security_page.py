"""docs/security.md is the threat model: its tables must say exactly what the synthesized
templates of every shipped config grant (access entries, namespaces, Pod Identity), and what
the spec validator and the Ingress builder do with each exposure setting."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from neuron_platform.k8s.serving import endpoint_ingress
from neuron_platform.serving.planner import plan
from neuron_platform.serving.spec import ServingSpec
from tests.conftest import REPO, SynthesizedApp
from tests.helpers import manifests
from tests.serving_specs import certificate_arn, cognito, trn2_endpoint

PAGE = REPO / "docs" / "security.md"
_HASH = re.compile(r"[0-9A-F]{8}$")


def section(title: str) -> str:
    text = PAGE.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def table(title: str) -> list[list[str]]:
    """The first Markdown table of a section, as rows of stripped cells (header and rule dropped)."""
    lines = [line for line in section(title).splitlines() if line.startswith("|")]
    assert len(lines) > 2, f"no table under '## {title}' in {PAGE.name}"
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def code(cell: str) -> str:
    """The first `code` span of a cell: how a row names its subject."""
    found = re.search(r"`([^`]+)`", cell)
    assert found, f"no `name` in table cell {cell!r} of {PAGE.name}"
    return found.group(1)


def stacks(synthesized: dict[str, SynthesizedApp]) -> Iterator[tuple[SynthesizedApp, str, dict[str, Any]]]:
    for app in synthesized.values():
        for stack in app.platform.stacks:
            yield app, stack.stack_name, app.template_json(stack)


def role_name(value: Any, app: SynthesizedApp) -> str:
    """What the page calls a principal: the config key for configured ARNs, else the
    logical id (without CDK's hash) of the role the template points at."""
    if isinstance(value, str):
        assert value in app.config.cluster.admin_principal_arns, value
        return "cluster.admin_principal_arns"
    found = re.search(r"'Fn::GetAtt': \['([A-Za-z0-9]+)'", str(value))
    assert found, value
    return _HASH.sub("", found.group(1))


def test_the_access_entries_are_the_ones_the_page_lists(synthesized: dict[str, SynthesizedApp]) -> None:
    synthesized_rows = set()
    for app, _, template in stacks(synthesized):
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::EKS::AccessEntry":
                continue
            entry = resource["Properties"]
            policies = entry.get("AccessPolicies", [])
            assert len(policies) <= 1
            policy, scope = "none", "-"
            if policies:
                policy = str(policies[0]["PolicyArn"]).rsplit("/", 1)[1].rstrip("']}")
                access = policies[0]["AccessScope"]
                scope = "cluster" if access["Type"] == "cluster" else f"namespace {','.join(access['Namespaces'])}"
            synthesized_rows.add((role_name(entry["PrincipalArn"], app), entry.get("Type", "STANDARD"), policy, scope))
    documented = {
        (code(principal), kind, policy.split(" ")[0], scope.replace("`", ""))
        for principal, kind, policy, scope in table("Cluster administrators")
    }
    assert documented == synthesized_rows


def test_the_cluster_creator_is_no_admin(synthesized: dict[str, SynthesizedApp]) -> None:
    assert "`bootstrapClusterCreatorAdminPermissions` is `false`" in section("Cluster administrators")
    clusters = [
        r["Properties"]
        for _, _, t in stacks(synthesized)
        for r in t["Resources"].values()
        if r["Type"] == "AWS::EKS::Cluster"
    ]
    assert clusters
    for cluster in clusters:
        assert cluster["AccessConfig"] == {
            "AuthenticationMode": "API",
            "BootstrapClusterCreatorAdminPermissions": False,
        }


def namespace_rows(synthesized: dict[str, SynthesizedApp]) -> set[tuple[str, str, str, str, str]]:
    rows = set()
    for _, stack_name, template in stacks(synthesized):
        objects = manifests(template)
        denied = {
            m["metadata"]["namespace"]
            for m in objects
            if m["kind"] == "NetworkPolicy"
            and m["spec"]["podSelector"] == {}
            and set(m["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not m["spec"].get("ingress")
            and not m["spec"].get("egress")
        }
        for m in objects:
            if m["kind"] != "Namespace":
                continue
            name, labels = m["metadata"]["name"], m["metadata"].get("labels", {})
            psa = {k.split("/")[1]: v for k, v in labels.items() if k.startswith("pod-security.kubernetes.io/")}
            assert psa["warn"] == psa["audit"], name
            kind = stack_name.rsplit("-", 1)[1]
            rows.add((name, kind, psa["enforce"], psa["warn"], "yes" if name in denied else "no"))
    return rows


def test_the_namespaces_and_their_pod_security_are_the_ones_the_page_lists(
    synthesized: dict[str, SynthesizedApp],
) -> None:
    documented = {
        (code(namespace), kind, enforce, warn, deny)
        for namespace, kind, enforce, warn, deny, _ in table("Pods per namespace")
    }
    assert documented == namespace_rows(synthesized)


def test_the_pod_identity_roles_are_the_ones_the_page_lists(synthesized: dict[str, SynthesizedApp]) -> None:
    endpoints = {e.name for app in synthesized.values() for e in app.config.serving.endpoints}
    found = set()
    for _, _, template in stacks(synthesized):
        for resource in template["Resources"].values():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::EKS::PodIdentityAssociation":
                account = properties["ServiceAccount"]
                found.add((properties["Namespace"], "<endpoint name>" if account in endpoints else account))
            elif resource["Type"] == "AWS::EKS::Addon":
                found |= {("kube-system", a["ServiceAccount"]) for a in properties.get("PodIdentityAssociations", [])}
    documented = {(code(namespace), code(account)) for namespace, account, _ in table("AWS roles of pods")}
    assert documented == found


def test_only_the_promote_role_may_write_artifacts(inference_app: SynthesizedApp) -> None:
    (_, writers) = next(row for row in table("Who can change what serving loads") if code(row[0]) == "artifacts/")
    documented = code(writers)
    assert inference_app.platform.compile is not None
    template = inference_app.template_json(inference_app.platform.compile)
    statements = [
        statement
        for r in template["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    (deny,) = [s for s in statements if s.get("Sid") == "OnlyThePromoteStepWritesArtifacts"]
    assert deny["Effect"] == "Deny"
    assert role_name(deny["Condition"], inference_app) == documented


VPC = ["10.0.0.0/16"]
LISTED = ["203.0.113.0/24"]


def spec(exposure: str, certificate: str, cidrs: str, authentication: str) -> dict[str, Any]:
    """The trn2 test endpoint with one row's exposure settings ("yes"/"no", "listed"/"no", "cognito"/"no")."""
    return trn2_endpoint(
        exposure=exposure,
        certificate_arn=certificate_arn("us-east-2") if certificate == "yes" else None,
        allowed_cidrs=LISTED if cidrs == "listed" else None,
        authentication=cognito("us-east-2") if authentication == "cognito" else None,
    )


@pytest.mark.parametrize("row", table("Who can call an endpoint"), ids=lambda row: "-".join(row[:4]))
def test_each_exposure_row_is_what_the_spec_and_the_ingress_do(row: list[str]) -> None:
    exposure, certificate, cidrs, authentication, result, listeners, open_to = row
    fields = spec(exposure, certificate, cidrs, authentication)
    if result == "refused":
        with pytest.raises(ValidationError):
            ServingSpec.model_validate(fields)
        return
    served = plan(ServingSpec.model_validate(fields), pool_types=["trn2.48xlarge"])
    annotations = endpoint_ingress(served, "serving", load_balancer="lb", vpc_cidrs=VPC)["metadata"]["annotations"]
    prefix = "alb.ingress.kubernetes.io"
    scheme = {"internal ALB": "internal", "internet-facing ALB": "internet-facing"}[result]
    assert annotations[f"{prefix}/scheme"] == scheme
    if listeners.startswith("HTTPS 443"):
        assert annotations[f"{prefix}/listen-ports"] == '[{"HTTP": 80}, {"HTTPS": 443}]'
        assert annotations[f"{prefix}/ssl-redirect"] == "443"
    else:
        assert listeners == "HTTP 80"
        assert annotations[f"{prefix}/listen-ports"] == '[{"HTTP": 80}]'
    expected_cidrs = {
        "the VPC's ranges": VPC,
        "the listed ranges": LISTED,
        "anyone, after sign-in": ["0.0.0.0/0"],
    }[open_to]
    assert annotations[f"{prefix}/inbound-cidrs"] == ",".join(expected_cidrs)
    assert (annotations.get(f"{prefix}/auth-type") == "cognito") == (authentication == "cognito")
