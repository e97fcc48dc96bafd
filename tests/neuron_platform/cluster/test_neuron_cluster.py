"""NeuronCluster reused outside this app: its scanner acknowledgments must still match."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from neuron_platform.cluster import NeuronCluster
from neuron_platform.network import NeuronVpc
from tests.conftest import new_app


def test_cdk_nag_passes_whatever_the_construct_ids() -> None:
    app = new_app()
    stack = cdk.Stack(app, "Reuser", env=cdk.Environment(region="us-east-2"))
    network = NeuronVpc(stack, "Net", zones=["us-east-2a", "us-east-2b"], cluster_name="reused")
    NeuronCluster(
        stack,
        "SomeOtherName",
        cluster_name="reused",
        vpc=network.vpc,
        control_plane_subnets=network.private_subnets,
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises ValidationFailed on any unacknowledged finding
