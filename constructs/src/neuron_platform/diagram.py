"""An architecture diagram (Graphviz DOT) generated from a synthesized cloud assembly.

Plain Python over ``cdk.out``: one box per stack, inside it one node per resource type
(with its count), edges where resources of one type reference another (Ref/GetAtt), and
edges between stacks where one imports another's outputs. Kubernetes objects and Helm
charts applied through the kubectl provider appear by kind and chart name, so the
diagram shows what runs in the cluster too. ``make diagram`` writes
``docs/architecture.dot`` and, with Graphviz installed, ``docs/architecture.svg``.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# Bookkeeping resources that would only clutter the picture.
HIDDEN_TYPES = frozenset(
    {
        "AWS::CDK::Metadata",
        "AWS::IAM::Policy",
        "AWS::Lambda::Permission",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::Route",
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::SNS::Subscription",
        "AWS::KMS::Alias",
    }
)
KUBERNETES_RESOURCE = "Custom::AWSCDK-EKS-KubernetesResource"
HELM_RESOURCE = "Custom::AWSCDK-EKS-HelmChart"


def _references(value: Any) -> Iterator[str]:
    """Logical ids a property value points at (Ref, GetAtt, DependsOn are not followed)."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            yield value["Ref"]
        if "Fn::GetAtt" in value and isinstance(value["Fn::GetAtt"], list):
            yield str(value["Fn::GetAtt"][0])
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _imports(value: Any) -> Iterator[str]:
    """Stacks whose outputs a value reads."""
    if isinstance(value, dict):
        if "Fn::GetStackOutput" in value:
            yield str(value["Fn::GetStackOutput"]["StackName"])
        if isinstance(value.get("Fn::ImportValue"), str):
            yield "export:" + str(value["Fn::ImportValue"])
        for item in value.values():
            yield from _imports(item)
    elif isinstance(value, list):
        for item in value:
            yield from _imports(item)


def _kubernetes_label(resource: Mapping[str, Any]) -> str | None:
    props = resource.get("Properties", {})
    if resource["Type"] == HELM_RESOURCE:
        return f"Helm: {props.get('Chart')}"
    manifest = props.get("Manifest")
    if isinstance(manifest, dict) and "Fn::Join" in manifest:
        # References sit inside JSON strings: stand-ins keep the document parseable, so
        # only the objects' own kinds count (not a scaleTargetRef's or authenticationRef's).
        separator, parts = manifest["Fn::Join"]
        manifest = separator.join(p if isinstance(p, str) else "ref" for p in parts)
    if not isinstance(manifest, str):
        return None
    kinds = sorted({obj.get("kind", "?") for obj in json.loads(manifest)})
    return "Kubernetes: " + ", ".join(kinds)


def _node_id(stack: str, label: str) -> str:
    return json.dumps(f"{stack}/{label}")


def _labels(resources: Mapping[str, Any]) -> dict[str, str]:
    """Logical id -> the node it is drawn in (its type, or its Kubernetes kinds / chart)."""
    labels: dict[str, str] = {}
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        if kind in (KUBERNETES_RESOURCE, HELM_RESOURCE):
            label = _kubernetes_label(resource)
            if label:
                labels[logical_id] = label
        elif kind not in HIDDEN_TYPES:
            labels[logical_id] = kind.removeprefix("AWS::").replace("::", " ")
    return labels


def diagram(assembly: Path) -> str:
    """DOT text for the stacks in ``assembly`` (a ``cdk.out`` directory)."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    templates: dict[str, dict[str, Any]] = {
        name: json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
        for name, artifact in sorted(manifest["artifacts"].items())
        if artifact.get("type") == "aws:cloudformation:stack"
    }
    exports = {
        "export:" + output["Export"]["Name"]: name
        for name, template in templates.items()
        for output in template.get("Outputs", {}).values()
        if isinstance(output.get("Export", {}).get("Name"), str)
    }
    lines = [
        "digraph platform {",
        '  graph [rankdir=LR, fontname="Helvetica", fontsize=12, compound=true];',
        '  node [shape=box, style="rounded,filled", fillcolor="#f5f7fa", fontname="Helvetica", fontsize=10];',
        '  edge [color="#8899aa", arrowsize=0.6];',
    ]
    anchors: dict[str, str] = {}
    stack_edges: set[tuple[str, str]] = set()
    for name, template in templates.items():
        resources: dict[str, Any] = template.get("Resources", {})
        labels = _labels(resources)
        counts = Counter(labels.values())
        anchors[name] = _node_id(name, min(counts)) if counts else ""
        lines.append(f"  subgraph {json.dumps('cluster_' + name)} {{")
        lines.append(f'    label={json.dumps(name)}; style=rounded; color="#556677";')
        for label in sorted(counts):
            shown = label if counts[label] == 1 else f"{label} x{counts[label]}"
            fill = ', fillcolor="#e8f4ea"' if label.startswith(("Helm:", "Kubernetes:")) else ""
            lines.append(f"    {_node_id(name, label)} [label={json.dumps(shown)}{fill}];")
        lines.append("  }")
        edges: defaultdict[str, set[str]] = defaultdict(set)
        for logical_id, resource in resources.items():
            for imported in _imports(resource):
                source = exports.get(imported, imported)
                if source in templates and source != name:
                    stack_edges.add((name, source))
            if logical_id not in labels:
                continue
            for target in _references(resource.get("Properties", {})):
                if target in labels and labels[target] != labels[logical_id]:
                    edges[labels[logical_id]].add(labels[target])
        for source_label in sorted(edges):
            for target_label in sorted(edges[source_label]):
                lines.append(f"  {_node_id(name, source_label)} -> {_node_id(name, target_label)};")
    for user, provider in sorted(stack_edges):
        lines.append(
            f"  {anchors[user]} -> {anchors[provider]} [ltail={json.dumps('cluster_' + user)}, "
            f'lhead={json.dumps("cluster_" + provider)}, style=dashed, color="#334455", label="uses"];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"
