"""The architecture diagram: generated from the synthesized app, kept current in docs/."""

from __future__ import annotations

import json
from pathlib import Path

from neuron_platform.diagram import diagram
from tests.conftest import REPO, SynthesizedApp


def test_committed_diagram_is_current(inference_app: SynthesizedApp) -> None:
    committed = (REPO / "docs" / "architecture.dot").read_text()
    assert diagram(inference_app.outdir) == committed, "regenerate with: make diagram"
    assert (REPO / "docs" / "architecture.svg").is_file()


def test_diagram_shows_stacks_types_kubernetes_and_cross_stack_use(inference_app: SynthesizedApp) -> None:
    dot = diagram(inference_app.outdir)
    for stack in (
        "inf-small-network",
        "inf-small-cluster",
        "inf-small-compile",
        "inf-small-serving",
        "inf-small-operations",
    ):
        assert f'subgraph "cluster_{stack}"' in dot
    assert '"inf-small-cluster/EKS Cluster"' in dot
    assert '"inf-small-cluster/Helm: karpenter"' in dot
    assert (
        "Kubernetes: ConfigMap, Deployment, Ingress, PodDisruptionBudget, ScaledObject, Service, ServiceAccount" in dot
    )
    assert 'lhead="cluster_inf-small-compile"' in dot  # serving imports the artifact bucket
    assert "IAM Policy" not in dot  # bookkeeping resources are left out


def test_counts_references_and_exports(tmp_path: Path) -> None:
    def write(name: str, template: dict[str, object]) -> None:
        (tmp_path / f"{name}.template.json").write_text(json.dumps(template))

    write(
        "a",
        {
            "Resources": {
                "Q1": {"Type": "AWS::SQS::Queue"},
                "Q2": {"Type": "AWS::SQS::Queue"},
                "T": {"Type": "AWS::SNS::Topic", "Properties": {"Dlq": {"Fn::GetAtt": ["Q1", "Arn"]}}},
            },
            "Outputs": {"TopicArn": {"Value": {"Ref": "T"}, "Export": {"Name": "a-topic"}}},
        },
    )
    write(
        "b",
        {"Resources": {"F": {"Type": "AWS::Lambda::Function", "Properties": {"T": {"Fn::ImportValue": "a-topic"}}}}},
    )
    manifest = {
        "artifacts": {
            n: {"type": "aws:cloudformation:stack", "properties": {"templateFile": f"{n}.template.json"}}
            for n in ("a", "b")
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    dot = diagram(tmp_path)
    assert '"a/SQS Queue" [label="SQS Queue x2"];' in dot
    assert '"a/SNS Topic" -> "a/SQS Queue";' in dot
    assert '"b/Lambda Function" -> "a/SNS Topic" [ltail="cluster_b", lhead="cluster_a"' in dot


def test_kubernetes_node_names_only_top_level_kinds(tmp_path: Path) -> None:
    # A ScaledObject names other kinds (its target, its authentication): those are not drawn.
    manifest = {
        "Fn::Join": [
            "",
            [
                '[{"apiVersion":"keda.sh/v1alpha1","kind":"ScaledObject","metadata":{"name":"e"},"spec":{'
                '"scaleTargetRef":{"kind":"Deployment","name":"e"},"triggers":[{"metadata":{"serverAddress":"',
                {"Fn::GetStackOutput": {"StackName": "c", "OutputName": "Url"}},
                '"},"authenticationRef":{"kind":"ClusterTriggerAuthentication","name":"a"}}]}}]',
            ],
        ]
    }
    template = {
        "Resources": {
            "Objects": {"Type": "Custom::AWSCDK-EKS-KubernetesResource", "Properties": {"Manifest": manifest}}
        }
    }
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    "s": {"type": "aws:cloudformation:stack", "properties": {"templateFile": "s.template.json"}}
                }
            }
        )
    )
    (tmp_path / "s.template.json").write_text(json.dumps(template))
    dot = diagram(tmp_path)
    assert "Kubernetes: ScaledObject" in dot
    assert "ClusterTriggerAuthentication" not in dot
