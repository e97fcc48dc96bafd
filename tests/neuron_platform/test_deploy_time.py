"""The deploy-time model, and the budgets it holds on the shipped configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from neuron_platform.deploy_time import (
    CREATE_MINUTES,
    Assembly,
    critical_path,
    dependencies,
    deploy_plan,
    main,
    report_lines,
    summary_table,
)
from tests.conftest import SynthesizedApp


def template(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"Resources": resources}


CHAIN = template(
    {
        "Key": {"Type": "AWS::KMS::Key"},
        "Cluster": {
            "Type": "AWS::EKS::Cluster",
            "Properties": {"EncryptionConfig": [{"Key": {"Fn::GetAtt": ["Key", "Arn"]}}]},
        },
        "Nodes": {"Type": "AWS::EKS::Nodegroup", "Properties": {"ClusterName": {"Ref": "Cluster"}}},
        "Chart": {"Type": "Custom::AWSCDK-EKS-HelmChart", "DependsOn": ["Nodes"]},
        "Disk": {"Type": "AWS::FSx::FileSystem", "Properties": {"Name": {"Fn::Sub": "${Key.Arn}-fs"}}},
        "Tag": {"Type": "AWS::SSM::Parameter", "Properties": {"Value": {"Fn::Sub": ["${X}", {"X": {"Ref": "Disk"}}]}}},
    }
)


def test_references_through_ref_getatt_sub_and_depends_on() -> None:
    deps = dependencies(CHAIN)
    assert deps["Cluster"] == {"Key"}
    assert deps["Nodes"] == {"Cluster"}
    assert deps["Chart"] == {"Nodes"}
    assert deps["Disk"] == {"Key"}
    assert deps["Tag"] == {"Disk"}


def test_the_critical_path_is_the_longest_weighted_chain() -> None:
    path = critical_path(CHAIN, "s")
    assert [s.logical_id for s in path.chain] == ["Key", "Cluster", "Nodes", "Chart"]
    assert path.minutes == pytest.approx(0.3 + 10 + 4 + 2)
    assert path.chain_text().startswith("Key (Key 0.3) > Cluster (Cluster 10)")


def test_a_cycle_is_reported() -> None:
    cycle = template({"A": {"Type": "X", "DependsOn": "B"}, "B": {"Type": "X", "DependsOn": "A"}})
    with pytest.raises(ValueError, match="dependency cycle"):
        critical_path(cycle, "s")


def test_stacks_deploy_as_their_dependencies_finish_within_the_concurrency() -> None:
    one = {"Resources": {"R": {"Type": "AWS::EKS::Cluster"}}}  # 10 min
    small = {"Resources": {"R": {"Type": "AWS::EKS::Addon"}}}  # 1 min
    assembly = Assembly(
        templates={"net": small, "cluster": one, "compile": small, "serving": small},
        stack_dependencies={"net": set(), "cluster": {"net"}, "compile": {"net"}, "serving": {"cluster", "compile"}},
    )
    serial = deploy_plan(assembly, concurrency=1)
    parallel = deploy_plan(assembly, concurrency=4)
    assert serial.minutes == pytest.approx(13)
    assert parallel.minutes == pytest.approx(12)  # compile deploys beside the cluster
    assert parallel.schedule["compile"] == (1, 2)
    assert parallel.critical_stacks == ["net", "cluster", "serving"]


def test_every_weight_names_its_source() -> None:
    for resource_type, time in CREATE_MINUTES.items():
        assert time.minutes > 0, resource_type
        assert time.source, resource_type


# --- the shipped configs -----------------------------------------------------------------------


def _templates(app: SynthesizedApp) -> dict[str, dict[str, Any]]:
    return Assembly.read(app.outdir).templates


def _waits_for(tmpl: dict[str, Any], resource_type: str, on_type: str) -> list[str]:
    """Resources of ``resource_type`` that transitively wait for one of ``on_type``."""
    deps = dependencies(tmpl)
    types = {k: r["Type"] for k, r in tmpl["Resources"].items()}

    def upstream(node: str, seen: set[str]) -> set[str]:
        for dep in deps[node] - seen:
            seen.add(dep)
            upstream(dep, seen)
        return seen

    return [k for k, t in types.items() if t == resource_type and any(types[u] == on_type for u in upstream(k, set()))]


def test_no_long_resource_waits_for_the_cluster_without_needing_it(synthesized: dict[str, SynthesizedApp]) -> None:
    """The file system and SageMaker endpoints take about as long as the cluster: built beside it,
    never after it."""
    for name, app in synthesized.items():
        for stack, tmpl in _templates(app).items():
            for long_type in ("AWS::FSx::FileSystem", "AWS::SageMaker::Endpoint"):
                assert _waits_for(tmpl, long_type, "AWS::EKS::Cluster") == [], (name, stack, long_type)


def test_training_cluster_stack_is_the_default_plus_its_releases(synthesized: dict[str, SynthesizedApp]) -> None:
    def cluster_minutes(app: SynthesizedApp) -> float:
        (stack,) = [n for n in _templates(app) if n.endswith("-cluster")]
        return critical_path(_templates(app)[stack], stack).minutes

    releases = 2 * CREATE_MINUTES["Custom::AWSCDK-EKS-HelmChart"].minutes  # Kubeflow Trainer and Kueue
    assert cluster_minutes(synthesized["training-multinode"]) <= cluster_minutes(synthesized["default"]) + releases


def test_the_report_prints_each_stacks_chain(synthesized: dict[str, SynthesizedApp]) -> None:
    plan = deploy_plan(Assembly.read(synthesized["default"].outdir), concurrency=1)
    lines = report_lines(plan)
    assert lines[0].startswith("cdk deploy --all --concurrency 1: about ")
    assert any("(Cluster 10) >" in line for line in lines)


def test_module_entry_point(
    synthesized: dict[str, SynthesizedApp], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([str(synthesized["default"].outdir)]) == 0
    assert "cdk deploy --all --concurrency 1" in capsys.readouterr().out
    assert main([str(tmp_path)]) == 2
    assert "is not a synthesized cloud assembly" in capsys.readouterr().err


def test_assembly_reads_stack_dependencies(synthesized: dict[str, SynthesizedApp]) -> None:
    assembly = Assembly.read(synthesized["inference-small"].outdir)
    manifest = json.loads((synthesized["inference-small"].outdir / "manifest.json").read_text())
    stacks = [n for n, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"]
    assert set(assembly.templates) == set(stacks)
    serving = next(n for n in stacks if n.endswith("-serving"))
    assert any(d.endswith("-cluster") for d in assembly.stack_dependencies[serving])


def _upstream_stacks(assembly: Assembly, stack: str) -> set[str]:
    seen: set[str] = set()
    todo = [stack]
    while todo:
        for dependency in assembly.stack_dependencies[todo.pop()]:
            if dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen


def test_compile_and_sagemaker_stacks_never_wait_for_the_cluster(synthesized: dict[str, SynthesizedApp]) -> None:
    """Neither needs the cluster (the pipeline calls the on-pool compile function by name), so
    `cdk deploy --concurrency N` builds both beside it."""
    checked = 0
    for name, app in synthesized.items():
        assembly = Assembly.read(app.outdir)
        for stack in assembly.templates:
            if stack.endswith(("-compile", "-sagemaker")):
                checked += 1
                assert not any(s.endswith("-cluster") for s in _upstream_stacks(assembly, stack)), (name, stack)
    assert checked >= 2


def test_concurrency_overlaps_the_sagemaker_endpoints_with_the_cluster(synthesized: dict[str, SynthesizedApp]) -> None:
    assembly = Assembly.read(synthesized["inference-small"].outdir)
    serial, parallel = deploy_plan(assembly, concurrency=1), deploy_plan(assembly, concurrency=4)
    (cluster,) = [s for s in parallel.schedule if s.endswith("-cluster")]
    (sagemaker,) = [s for s in parallel.schedule if s.endswith("-sagemaker")]
    assert parallel.schedule[sagemaker][1] < parallel.schedule[cluster][1]
    # What is left after the cluster: the EKS endpoints and the operations stack.
    assert parallel.minutes <= parallel.schedule[cluster][1] + 3
    assert parallel.minutes < serial.minutes - 8


def test_the_readme_table_is_the_model_of_the_shipped_configs(synthesized: dict[str, SynthesizedApp]) -> None:
    """`make bench` writes it; a change that moves a modelled time fails here until rerun."""
    from tests.bench.run import CONCURRENCY, DEPLOY_END, DEPLOY_START, README

    text = README.read_text()
    block = text.split(DEPLOY_START, 1)[1].split(DEPLOY_END, 1)[0].strip().splitlines()
    assemblies = {name: Assembly.read(app.outdir) for name, app in synthesized.items()}
    assert block == summary_table(assemblies, concurrency=CONCURRENCY), "README deploy times are stale: run make bench"
