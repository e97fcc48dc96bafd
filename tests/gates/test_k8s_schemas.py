"""Every Kubernetes object the synthesized apps apply validates against its schema."""

from __future__ import annotations

from tests.conftest import SynthesizedApp
from tests.helpers import manifests
from tests.k8s_schemas import crd_schemas, validate


def test_vendored_crds_are_the_karpenter_release() -> None:
    assert ("karpenter.sh/v1", "NodePool") in crd_schemas()
    assert ("karpenter.k8s.aws/v1", "EC2NodeClass") in crd_schemas()


def test_every_applied_object_is_schema_valid(synthesized: dict[str, SynthesizedApp]) -> None:
    checked = 0
    for app in synthesized.values():
        for stack in app.platform.stacks:
            for obj in manifests(app.template_json(stack)):
                validate(obj)
                checked += 1
    # EC2NodeClass + NodePool per pool; where training is enabled, the training service
    # account plus NodeOverlay + ClusterTrainingRuntime per EFA training pool.
    expected = sum(
        2 * len(app.config.pools) + (1 + 2 * len(app.config.efa_training_pools) if app.config.training.enabled else 0)
        for app in synthesized.values()
    )
    assert checked == expected
