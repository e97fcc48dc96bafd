"""The compile constructs' defaults: the Lambda steps come from runtime_assets/compile/lambdas."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms

from neuron_platform.cluster import NeuronCluster
from neuron_platform.compile.artifact_store import ArtifactStore
from neuron_platform.compile.cluster_compile import TEMPLATES_FILE, ClusterCompile, ClusterJobTemplate
from neuron_platform.compile.compile_pipeline import CompilePipeline
from neuron_platform.network import NeuronVpc
from tests.conftest import REPO, new_app

LAMBDAS = REPO / "runtime_assets" / "compile" / "lambdas"
ZONES = ["us-east-2a", "us-east-2b"]


def _bundles(outdir: Path, name: str) -> list[Path]:
    """Asset folders of the assembly that hold ``name``."""
    return [p.parent for p in outdir.glob(f"asset.*/{name}")]


def test_pipeline_and_cluster_step_deploy_the_repository_lambdas_by_default(tmp_path: Path) -> None:
    app = new_app(tmp_path)
    stack = cdk.Stack(app, "Compile", env=cdk.Environment(region="us-east-2"))
    network = NeuronVpc(stack, "Net", zones=ZONES, cluster_name="c")
    cluster = NeuronCluster(
        stack, "Cluster", cluster_name="c", vpc=network.vpc, control_plane_subnets=network.private_subnets
    )
    store = ArtifactStore(stack, "Artifacts")
    key = kms.Key(stack, "Key")
    on_cluster = ClusterCompile(
        stack,
        "OnCluster",
        cluster=cluster,  # the NeuronCluster itself
        vpc=network.vpc,
        subnets=network.private_subnets,
        store=store,
        templates={"llama": ClusterJobTemplate(tag="1.0", job={"kind": "Job"})},
        log_key=key,
    )
    CompilePipeline(
        stack,
        "Pipeline",
        project="c",
        vpc=network.vpc,
        subnets=network.private_subnets,
        store=store,
        instance_types=["r7i.4xlarge"],
        log_key=key,
        cluster_compile=on_cluster,
    )
    app.synth()
    bundles = _bundles(tmp_path, "validate.py")
    assert len(bundles) == 2  # the pipeline's steps, and the cluster step with its Job templates
    for bundle in bundles:
        for source in LAMBDAS.glob("*.py"):
            assert (bundle / source.name).read_bytes() == source.read_bytes()
        assert (bundle / "cache_key.py").is_file()
    assert [b for b in bundles if (b / TEMPLATES_FILE).is_file()]
    assert not list(tmp_path.glob("asset.*/__pycache__"))


def test_an_explicit_lambda_folder_still_wins(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "validate.py").write_text("def handler(event, context):\n    return event\n")
    app = new_app(tmp_path / "out")
    stack = cdk.Stack(app, "Compile", env=cdk.Environment(region="us-east-2"))
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=ZONES)
    CompilePipeline(
        stack,
        "Pipeline",
        project="c",
        vpc=vpc,
        subnets=vpc.private_subnets,
        store=ArtifactStore(stack, "Artifacts"),
        instance_types=["r7i.4xlarge"],
        log_key=kms.Key(stack, "Key"),
        lambda_code=own,
    )
    app.synth()
    (bundle,) = _bundles(tmp_path / "out", "validate.py")
    assert sorted(p.name for p in bundle.iterdir()) == ["cache_key.py", "validate.py"]
