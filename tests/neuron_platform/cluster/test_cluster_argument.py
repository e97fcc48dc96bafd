"""The cluster constructs take our NeuronCluster (or an aws_eks_v2.Cluster) and read its name from it."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_kms as kms

from neuron_platform import versions
from neuron_platform.capacity import plan_pool
from neuron_platform.cluster import (
    GangAdmission,
    Karpenter,
    KarpenterTeardown,
    Keda,
    LoadBalancerController,
    LustreVolume,
    NeuronCluster,
    NeuronDevicePlugins,
    NeuronNodePool,
    TrainingPlatform,
    neuron_cluster,
)
from neuron_platform.config import PoolConfig
from neuron_platform.network import NeuronVpc
from tests.conftest import new_app
from tests.helpers import helm_charts, manifests_by_name, props

NAME = "reused"
REGION = "us-east-2"
ZONES = [f"{REGION}a", f"{REGION}b"]


def _of_type(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == type_name}


def _policy_statements(template: dict[str, Any], logical_prefix: str) -> list[dict[str, Any]]:
    return [
        statement
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Policy" and logical_id.startswith(logical_prefix)
        for statement in props(resource)["PolicyDocument"]["Statement"]
    ]


@pytest.fixture(scope="module")
def reused() -> dict[str, Any]:
    """A stack that passes the NeuronCluster construct itself, never ``.cluster`` or a name."""
    app = new_app()
    stack = cdk.Stack(app, "Reuser", env=cdk.Environment(region=REGION))
    network = NeuronVpc(stack, "Net", zones=ZONES, cluster_name=NAME)
    cluster = NeuronCluster(
        stack, "Cluster", cluster_name=NAME, vpc=network.vpc, control_plane_subnets=network.private_subnets
    )
    karpenter = Karpenter(stack, "Karpenter", cluster=cluster)
    KarpenterTeardown(stack, "Teardown", cluster=cluster, log_key=kms.Key(stack, "Key"))
    plugins = NeuronDevicePlugins(stack, "Plugins", cluster=cluster, efa=True)
    LoadBalancerController(stack, "Lbc", cluster=cluster, vpc_id=network.vpc.vpc_id)
    Keda(stack, "Keda", cluster=cluster, workspace_arn=f"arn:aws:aps:{REGION}:123456789012:workspace/ws-1")
    plan = plan_pool(
        PoolConfig(name="trn1", purpose="training", instance_types=["trn1.32xlarge"], efa=True, zone=ZONES[1])
    )
    NeuronNodePool(
        stack,
        "Pool",
        cluster=cluster,
        plan=plan,
        node_role=karpenter.node_role,
        subnets=[network.node_subnet_in(ZONES[1])],
        security_group_ids=[cluster.cluster.cluster_security_group_id],
        depends_on=[karpenter.controller_chart, *plugins.charts],
    )
    TrainingPlatform(stack, "Training", cluster=cluster, pools=[plan])
    GangAdmission(stack, "Gang", cluster=cluster, pools=[plan])
    LustreVolume(
        stack,
        "Volume",
        cluster=cluster,
        file_system_id="fs-0123456789abcdef0",
        dns_name="fs.example",
        mount_name="abcdefgh",
        storage_gib=1200,
        zone=ZONES[1],
    )
    return stack.resolve(app.synth().get_stack_by_name("Reuser").template)  # type: ignore[no-any-return]


def test_every_cluster_construct_accepts_the_neuron_cluster(reused: dict[str, Any]) -> None:
    charts = helm_charts(reused)
    assert {"karpenter", "karpenter-crd", "neuron", "aws-efa-k8s-device-plugin", "aws-load-balancer-controller"} <= set(
        charts
    )
    assert {"keda", "kubeflow-trainer", "kueue", "aws-fsx-csi-driver"} <= set(charts)
    objects = manifests_by_name(reused)
    assert ("NodePool", "trn1") in objects
    assert ("ClusterTrainingRuntime", "neuronx-trn1") in objects


def test_the_cluster_name_comes_from_the_neuron_cluster(reused: dict[str, Any]) -> None:
    charts = helm_charts(reused)
    assert charts["karpenter"]["Values"]["settings"]["clusterName"] == NAME
    assert charts["aws-load-balancer-controller"]["Values"]["clusterName"] == NAME
    # IAM condition keys cannot hold a token: the literal name is in them.
    owned = {f"aws:ResourceTag/kubernetes.io/cluster/{NAME}": "owned"}
    karpenter = _policy_statements(reused, "KarpenterControllerPolicy")
    assert any(s.get("Condition", {}).get("StringEquals") == owned for s in karpenter)
    (terminate,) = [s for s in _policy_statements(reused, "TeardownRole") if s["Action"] == "ec2:TerminateInstances"]
    assert terminate["Condition"]["StringEquals"] == owned
    (teardown,) = _of_type(reused, "Custom::KarpenterTeardown").values()
    assert props(teardown)["ClusterName"] == NAME
    (cluster_id,) = _of_type(reused, "AWS::EKS::Cluster")
    assert cluster_id in teardown["DependsOn"]  # deleted before the cluster


# --- a plain aws_eks_v2.Cluster -----------------------------------------------------------


def _eks_stack(**cluster_kwargs: Any) -> tuple[cdk.Stack, eks.Cluster]:
    stack = cdk.Stack(new_app(), "Plain", env=cdk.Environment(region=REGION))
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=ZONES)
    cluster = eks.Cluster(
        stack,
        "Cluster",
        version=eks.KubernetesVersion.of(versions.KUBERNETES_VERSION),
        vpc=vpc,
        kubectl_provider_options=eks.KubectlProviderOptions(
            kubectl_layer=neuron_cluster.kubectl_layer(stack, "KubectlLayer")
        ),
        **cluster_kwargs,
    )
    return stack, cluster


def test_a_named_eks_cluster_gives_its_literal_name() -> None:
    stack, cluster = _eks_stack(cluster_name="plain")
    assert cdk.Token.is_unresolved(cluster.cluster_name)  # a Ref, even though the name was given
    assert neuron_cluster.cluster_name_of(cluster) == "plain"
    karpenter = Karpenter(stack, "Karpenter", cluster=cluster)
    assert karpenter.cluster_name == "plain"
    assert neuron_cluster.eks_cluster(cluster) is cluster


def test_an_unnamed_eks_cluster_needs_a_literal_name_for_karpenter() -> None:
    stack, cluster = _eks_stack()
    with pytest.raises(ValueError, match=r"Karpenter: cluster_name: got a token .* IAM condition keys .* literal"):
        Karpenter(stack, "Karpenter", cluster=cluster)
    assert Karpenter(stack, "Named", cluster=cluster, cluster_name="given").cluster_name == "given"
    # Where a token will do (Helm values, descriptions), the cluster's Ref is used.
    resource = cluster.node.default_child
    assert isinstance(resource, eks.CfnCluster)
    assert stack.resolve(neuron_cluster.cluster_name_of(cluster)) == {"Ref": stack.get_logical_id(resource)}
    LoadBalancerController(stack, "Lbc", cluster=cluster, vpc_id="vpc-1")


def test_a_cluster_name_that_contradicts_the_cluster_is_refused() -> None:
    stack, cluster = _eks_stack(cluster_name="plain")
    with pytest.raises(ValueError, match=r"cluster_name: got 'other', but .* named 'plain'; allowed: 'plain'"):
        Karpenter(stack, "Karpenter", cluster=cluster, cluster_name="other")


def test_teardown_needs_a_cluster_or_its_name() -> None:
    stack = cdk.Stack(new_app(), "T", env=cdk.Environment(region=REGION))
    key = kms.Key(stack, "Key")
    with pytest.raises(
        ValueError, match=r"KarpenterTeardown: missing cluster; allowed: pass cluster=\.\.\. or cluster_name"
    ):
        KarpenterTeardown(stack, "Teardown", log_key=key)
    assert KarpenterTeardown(stack, "Named", cluster_name="n", log_key=key).cluster_name == "n"
