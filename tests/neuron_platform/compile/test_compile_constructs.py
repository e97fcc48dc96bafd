"""The compile constructs' defaults: the Lambda steps come from runtime_assets/compile/lambdas."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms

from neuron_platform.cluster import NeuronCluster
from neuron_platform.compile import cache_key, spec_rules
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


def _pipeline_with_cluster_step(tmp_path: Path, **shared: object) -> cdk.Stack:
    """A CompilePipeline and a ClusterCompile in one stack, with their default Lambda code;
    ``shared`` goes to both (model buckets, token secret)."""
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
        **shared,  # type: ignore[arg-type]
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
        cluster_compile=on_cluster.target,
        **shared,  # type: ignore[arg-type]
    )
    app.synth()
    return stack


def test_pipeline_and_cluster_step_deploy_the_repository_lambdas_by_default(tmp_path: Path) -> None:
    _pipeline_with_cluster_step(tmp_path)
    bundles = _bundles(tmp_path, "validate.py")
    assert len(bundles) == 2  # the pipeline's steps, and the cluster step with its Job templates
    for bundle in bundles:
        for source in LAMBDAS.glob("*.py"):
            assert (bundle / source.name).read_bytes() == source.read_bytes()
        # One copy of the key function and of the spec rules: the library's, byte for byte.
        for module in (cache_key, spec_rules):
            assert (bundle / Path(module.__file__ or "").name).read_bytes() == Path(module.__file__ or "").read_bytes()
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
    assert sorted(p.name for p in bundle.iterdir()) == ["cache_key.py", "spec_rules.py", "validate.py"]


def test_the_token_secret_and_model_buckets_are_scoped_to_the_compile_jobs(tmp_path: Path) -> None:
    """Issue 15: the Hugging Face token was injected into the container by a separate execution
    role, and configured model buckets were granted without an owner check."""
    import json

    from aws_cdk.assertions import Template

    from tests.helpers import props, render_json, resources

    secret = "arn:aws:secretsmanager:us-east-2:123456789012:secret:hf-token-AbCdEf"
    shared = {"model_buckets": ["my-models"], "hf_token_secret_arn": secret, "model_bucket_account": "210987654321"}
    stack = _pipeline_with_cluster_step(tmp_path, **shared)
    template = Template.from_stack(stack).to_json()
    roles = resources(Template.from_stack(stack), "AWS::IAM::Role")
    assert not [k for k in roles if "ExecutionRole" in k]  # nothing injects the token any more
    policies = resources(Template.from_stack(stack), "AWS::IAM::Policy")
    readers = []
    for name, policy in policies.items():
        for statement in props(policy)["PolicyDocument"]["Statement"]:
            if "secretsmanager:GetSecretValue" in json.dumps(statement["Action"]):
                assert statement["Resource"] == secret
                readers.append(name)
            if "my-models" in json.dumps(statement["Resource"]):
                assert statement["Condition"] == {"StringEquals": {"s3:ResourceAccount": "210987654321"}}
    assert sorted(r.split("DefaultPolicy")[0] for r in readers) == ["OnClusterPodRole", "PipelineJobRole"]
    (machine,) = resources(Template.from_stack(stack), "AWS::StepFunctions::StateMachine").values()
    definition = render_json(props(machine)["DefinitionString"], template)
    container = definition["States"]["RegisterJobDefinition"]["Parameters"]["ContainerProperties"]
    assert {"Name": "HF_TOKEN_SECRET_ARN", "Value": secret} in container["Environment"]
    assert "Secrets" not in container
    assert "ExecutionRoleArn" not in container
