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
    # Two objects (EC2NodeClass + NodePool) per configured pool across all configs.
    assert checked == 2 * sum(len(app.config.pools) for app in synthesized.values())
