"""Small readers over synthesized templates."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template


def resources(template: Template, type_name: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template.find_resources(type_name)
    return found


def props(resource: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = resource.get("Properties", {})
    return value


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in props(resource).get("Tags", [])}


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def group_id(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "GroupId"]}


def _placeholder(intrinsic: dict[str, Any], template: dict[str, Any]) -> str:
    """A schema-plausible stand-in for a CloudFormation intrinsic inside a manifest."""
    resources = template.get("Resources", {})
    if "Ref" in intrinsic:
        kind = resources.get(intrinsic["Ref"], {}).get("Type", "")
        return {
            "AWS::IAM::Role": "role-name",
            "AWS::EC2::Subnet": "subnet-0placeholder0",
            "AWS::EC2::PlacementGroup": "placement-group-name",
        }.get(kind, "placeholder")
    if "Fn::GetAtt" in intrinsic:
        attribute = intrinsic["Fn::GetAtt"][1]
        if attribute in {"ClusterSecurityGroupId", "GroupId"}:
            return "sg-0placeholder0"
        return "placeholder"
    name = json.dumps(intrinsic)
    if "Subnet" in name:
        return "subnet-0imported0"
    if "SecurityGroup" in name or "GroupId" in name:
        return "sg-0imported0"
    if "Vpc" in name:
        return "vpc-0imported0"
    return "placeholder"


def render_json(value: Any, template: dict[str, Any]) -> Any:
    """Parse a JSON property that may be an Fn::Join of strings and intrinsics."""
    if isinstance(value, str):
        return json.loads(value)
    separator, parts = value["Fn::Join"]
    text = separator.join(p if isinstance(p, str) else _placeholder(p, template) for p in parts)
    return json.loads(text)


def manifests(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Kubernetes object applied through the kubectl provider."""
    out: list[dict[str, Any]] = []
    for resource in template["Resources"].values():
        if resource["Type"] == "Custom::AWSCDK-EKS-KubernetesResource":
            out.extend(render_json(resource["Properties"]["Manifest"], template))
    return out


def manifests_by_name(template: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> every Kubernetes object applied through the kubectl provider."""
    return {(m["kind"], m["metadata"]["name"]): m for m in manifests(template)}


def helm_charts(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Release name -> chart properties, with Values parsed."""
    out: dict[str, dict[str, Any]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "Custom::AWSCDK-EKS-HelmChart":
            chart = dict(resource["Properties"])
            chart["Values"] = render_json(chart["Values"], template) if "Values" in chart else {}
            out[chart["Release"]] = chart
    return out
