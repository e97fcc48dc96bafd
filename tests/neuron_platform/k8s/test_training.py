"""Training objects, validated against the Kubeflow Trainer v2.3.0 and Karpenter CRDs."""

from __future__ import annotations

import pytest
import yaml

from neuron_platform.capacity import PoolPlan, plan_pool
from neuron_platform.config import PoolConfig, load_config
from neuron_platform.k8s.karpenter import ec2_node_class
from neuron_platform.k8s.training import (
    hugepages_overlay,
    neuron_cores_per_node,
    neuron_training_runtime,
    node_resources,
    train_job,
)
from neuron_platform.train_jobs import TrainJobRequest, build_train_job
from tests.conftest import REPO
from tests.k8s_schemas import validate


def efa_plan(instance_type: str = "trn1.32xlarge") -> PoolPlan:
    return plan_pool(
        PoolConfig.model_validate(
            {
                "name": "trn-efa",
                "purpose": "training",
                "instance_types": [instance_type],
                "efa": True,
                "zone": "us-east-1a",
            }
        )
    )


def test_objects_match_their_crds() -> None:
    plan = efa_plan()
    validate(hugepages_overlay(plan))
    validate(neuron_training_runtime(plan, image=plan.neuron.image("training")))
    validate(
        train_job(
            name="llama",
            pool="trn-efa",
            instance_type="trn1.32xlarge",
            image=plan.neuron.image("training"),
            command=["torchrun", "train.py"],
            env={"MODEL": "llama"},
        )
    )


@pytest.mark.parametrize(
    ("instance_type", "devices", "efa", "memory"),
    [
        ("trn1.32xlarge", "16", "8", "384Gi"),
        ("trn1n.32xlarge", "16", "16", "384Gi"),
        ("trn2.48xlarge", "16", "16", "1536Gi"),
    ],
)
def test_node_resources_follow_the_instance_facts(instance_type: str, devices: str, efa: str, memory: str) -> None:
    assert node_resources(instance_type) == {
        "aws.amazon.com/neuron": devices,
        "vpc.amazonaws.com/efa": efa,
        "hugepages-2Mi": "5120Mi",
        "memory": memory,
    }


@pytest.mark.parametrize(
    ("instance_type", "procs"), [("trn1.32xlarge", 32), ("trn1n.32xlarge", 32), ("trn2.48xlarge", 64)]
)
def test_one_process_per_neuroncore(instance_type: str, procs: int) -> None:
    assert neuron_cores_per_node(instance_type) == procs


def test_hugepages_the_overlay_declares_are_reserved_by_the_node_class() -> None:
    plan = efa_plan()
    reserved_mib = 5128 * 2
    declared_mib = int(hugepages_overlay(plan)["spec"]["capacity"]["hugepages-2Mi"].removesuffix("Mi"))
    assert declared_mib <= reserved_mib
    node_class = ec2_node_class(plan, node_role="r", subnet_ids=["subnet-0a"], security_group_ids=["sg-0a"])
    assert "sysctl -w vm.nr_hugepages=5128" in node_class["spec"]["userData"]


def test_train_job_uses_the_pool_runtime() -> None:
    job = train_job(name="j", pool="trn-efa", instance_type="trn2.48xlarge", image="i:1", command=["torchrun"])
    assert job["spec"]["runtimeRef"] == {"name": "neuronx-trn-efa"}
    assert job["spec"]["trainer"]["numNodes"] == 2
    assert job["spec"]["trainer"]["numProcPerNode"] == 64


LLAMA_SFT_IMAGE = "<account>.dkr.ecr.us-east-1.amazonaws.com/llama-sft:1"
LLAMA_SFT_MODEL = [
    "--hf-model-dir",
    "/fsx/data/models/llama3-8b",
    "--checkpoint-dir",
    "/fsx/data/models/llama3-8b-nxdt-tp32",
]
LLAMA_SFT_DATA = ["--data-dir", "/fsx/data/llama-sft/dataset"]
LAUNCH = ["python", "/opt/llama-sft/launch.py"]


@pytest.mark.parametrize(
    ("file", "name", "nodes", "command"),
    [
        ("llama-sft-1-convert.yaml", "llama-sft-convert", 1, [*LAUNCH, "convert", *LLAMA_SFT_MODEL]),
        (
            "llama-sft-2-compile.yaml",
            "llama-sft-compile",
            2,
            [
                *LAUNCH,
                "train",
                "--compile-only",
                *LLAMA_SFT_MODEL,
                *LLAMA_SFT_DATA,
                "--output-dir",
                "/fsx/data/llama-sft/compile",
            ],
        ),
        (
            "llama-sft-3-train.yaml",
            "llama-sft",
            2,
            [*LAUNCH, "train", *LLAMA_SFT_MODEL, *LLAMA_SFT_DATA, "--output-dir", "/fsx/data/llama-sft/run-1"],
        ),
    ],
)
def test_committed_llama_sft_trainjobs_are_current_and_valid(
    file: str, name: str, nodes: int, command: list[str]
) -> None:
    committed = yaml.safe_load((REPO / "docs" / "training" / file).read_text())
    validate(committed)
    config = load_config(REPO / "config" / "examples" / "training-multinode.yaml")
    request = TrainJobRequest(name=name, pool="trn1-efa", command=tuple(command), nodes=nodes, image=LLAMA_SFT_IMAGE)
    assert committed == build_train_job(config, request), (
        "regenerate with: python -m neuron_platform train-job (see docs/training.md 'Worked example')"
    )
    # The worked example goes through the pool's queue and prefers one network block.
    assert committed["metadata"]["labels"] == {"kueue.x-k8s.io/queue-name": "neuron-trn1-efa"}
    (patch,) = committed["spec"]["runtimePatches"]
    (replicated,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert replicated["template"]["spec"]["template"]["metadata"]["annotations"] == {
        "kueue.x-k8s.io/podset-preferred-topology": "topology.k8s.aws/network-node-layer-3"
    }


def test_runtime_names_its_queue_and_topology_only_when_placed_by_it() -> None:
    labels = neuron_training_runtime(efa_plan(), image="i:1")["metadata"]["labels"]
    assert labels["neuron-platform/queue"] == "neuron-trn-efa"
    assert "neuron-platform/network-topology" not in labels
    static = plan_pool(
        PoolConfig.model_validate(
            {
                "name": "trn-efa",
                "purpose": "training",
                "instance_types": ["trn1.32xlarge"],
                "efa": True,
                "zone": "us-east-1a",
                "static_nodes": 2,
            }
        )
    )
    assert neuron_training_runtime(static, image="i:1")["metadata"]["labels"]["neuron-platform/network-topology"] == (
        "neuron-network"
    )


@pytest.mark.parametrize("topology", ["required", "preferred"])
def test_topology_request_is_a_schema_valid_runtime_patch_on_the_node_job(topology: str) -> None:
    job = train_job(name="j", pool="p", instance_type="trn1.32xlarge", image="i:1", command=["x"], topology=topology)
    validate(job)
    (patch,) = job["spec"]["runtimePatches"]
    assert patch["manager"] == "neuron-platform.io/train-job"  # not Kueue's own manager name
    (replicated,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert replicated["name"] == "node"  # the runtime's replicated job
    assert replicated["template"]["spec"]["template"]["metadata"]["annotations"] == {
        f"kueue.x-k8s.io/podset-{topology}-topology": "topology.k8s.aws/network-node-layer-3"
    }


def test_unknown_topology_request_is_refused() -> None:
    with pytest.raises(ValueError, match="topology: got 'rack'; allowed: required, preferred, none"):
        train_job(name="j", pool="p", instance_type="trn1.32xlarge", image="i:1", command=["x"], topology="rack")
