"""Recording scanner decisions next to the resources they concern.

Every acknowledgment carries a reason, and is as narrow as the tools allow: a cdk-nag
acknowledgment names the rule (and finding, where the rule reports several), a checkov
skip lives in the metadata of the one resource it applies to.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk.aws_iam import ManagedPolicy, Policy

from constructs import IConstruct


def acknowledge_nag(scope: IConstruct, rule: str, reason: str, *, finding: str | None = None) -> None:
    """Acknowledge cdk-nag AwsSolutions ``rule`` (e.g. ``AwsSolutions-IAM4``) on ``scope``.

    ``finding`` narrows it to one finding, e.g. ``Policy::arn:<AWS::Partition>:iam::aws:policy/...``.
    """
    rule_id = f"AwsSolutions::{rule}" + (f"[{finding}]" if finding else "")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def skip_checkov(resource: CfnResource, check_id: str, comment: str) -> None:
    """Record a justified checkov skip in the resource's template metadata."""
    current: Any = resource.get_metadata("checkov") or {}
    skips = [*current.get("skip", []), {"id": check_id, "comment": comment}]
    resource.add_metadata("checkov", {"skip": skips})


def nag_resource_id(stack: Stack, value: Any) -> str:
    """How cdk-nag names a (possibly tokenized) resource ARN in its finding ids."""
    resolved = stack.resolve(value)
    if isinstance(resolved, str):
        return str(resolved)
    if isinstance(resolved, dict) and "Fn::Join" in resolved:
        separator, parts = resolved["Fn::Join"]
        return str(separator).join(_nag_part(p) for p in parts)
    return _nag_part(resolved)


def _nag_part(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and "Ref" in part:
        return f"<{part['Ref']}>"
    if isinstance(part, dict) and "Fn::GetAtt" in part:
        return "<{}.{}>".format(*part["Fn::GetAtt"])
    if isinstance(part, dict) and isinstance(part.get("Fn::ImportValue"), str):
        return str(part["Fn::ImportValue"])  # cdk-nag names an import by its export
    if isinstance(part, dict) and "Fn::GetStackOutput" in part:
        # A cross-stack reference: cdk-nag prints the intrinsic as compact JSON.
        return json.dumps(part, separators=(",", ":"))
    raise ValueError(f"cannot name {part!r} the way cdk-nag does")


def acknowledge_wildcard_resources(policy: Policy | ManagedPolicy, reason_for: Callable[[str], str]) -> list[str]:
    """Acknowledge AwsSolutions-IAM5 once per wildcard resource in ``policy``, each with its own reason.

    ``reason_for`` gets the finding's resource (as cdk-nag prints it) and returns why
    that wildcard is needed. Returns the acknowledged resources (for tests).
    """
    stack = Stack.of(policy)
    document = stack.resolve(policy.document.to_json())
    seen: list[str] = []
    for statement in document.get("Statement", []):
        resources = statement.get("Resource", [])
        for resource in resources if isinstance(resources, list) else [resources]:
            name = nag_resource_id(stack, resource)
            if "*" in name and name not in seen:
                seen.append(name)
                acknowledge_nag(policy, "AwsSolutions-IAM5", reason_for(name), finding=f"Resource::{name}")
    return seen


def acknowledge_managed_policies(role: IConstruct, policy_names: Sequence[str], reason: str) -> None:
    """Acknowledge AwsSolutions-IAM4 for each named AWS managed policy on ``role``."""
    for name in policy_names:
        acknowledge_nag(
            role, "AwsSolutions-IAM4", reason, finding=f"Policy::arn:<AWS::Partition>:iam::aws:policy/{name}"
        )
