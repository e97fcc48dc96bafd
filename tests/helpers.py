"""Small readers over synthesized templates."""

from __future__ import annotations

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
