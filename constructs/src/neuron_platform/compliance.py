"""Recording scanner decisions next to the resources they concern.

Every acknowledgment carries a reason, and is as narrow as the tools allow: a cdk-nag
acknowledgment names the rule (and finding, where the rule reports several), a checkov
skip lives in the metadata of the one resource it applies to.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Validations

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
