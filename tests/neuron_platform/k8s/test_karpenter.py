"""NodePool / EC2NodeClass builders, validated against the Karpenter v1.14.1 CRDs."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from neuron_platform.capacity import PoolPlan, plan_pool
from neuron_platform.config import PoolConfig
from neuron_platform.k8s.karpenter import ec2_node_class, node_pool
from tests.k8s_schemas import validate

EFA_POOL = PoolConfig.model_validate(
    {
        "name": "trn1-efa",
        "purpose": "training",
        "instance_types": ["trn1.32xlarge"],
        "efa": True,
        "zone": "us-east-1a",
        "capacity_types": ["reserved", "on-demand"],
        "capacity_reservations": {"ids": ["cr-0123456789abcdef0"], "tags": {"purpose": "capacity-block"}},
    }
)
INF_POOL = PoolConfig.model_validate(
    {
        "name": "inf2",
        "purpose": "inference",
        "instance_types": ["inf2.xlarge", "inf2.48xlarge"],
        "capacity_types": ["spot", "on-demand"],
    }
)


def node_class(plan: PoolPlan, **kwargs: object) -> dict[str, object]:
    args: dict[str, object] = {
        "node_role": "KarpenterNodeRole-neuron",
        "subnet_ids": ["subnet-0123456789abcdef0"],
        "security_group_ids": ["sg-0123456789abcdef0"],
    }
    return ec2_node_class(plan, **(args | kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize("pool", [EFA_POOL, INF_POOL], ids=["efa", "inf2"])
def test_objects_match_the_crds(pool: PoolConfig) -> None:
    plan = plan_pool(pool)
    validate(node_pool(plan))
    validate(node_class(plan, placement_group_name="pg-name" if pool.efa else None))


def test_efa_node_class() -> None:
    spec = node_class(plan_pool(EFA_POOL), placement_group_name="trn-efa-pg", security_group_ids=["sg-0a", "sg-0b"])[
        "spec"
    ]
    assert spec["placementGroupSelector"] == {"name": "trn-efa-pg"}  # type: ignore[index]
    assert spec["capacityReservationSelectorTerms"] == [  # type: ignore[index]
        {"id": "cr-0123456789abcdef0"},
        {"tags": {"purpose": "capacity-block"}},
    ]
    assert spec["instanceStorePolicy"] == "RAID0"  # type: ignore[index]


def test_inf2_pool_requirements() -> None:
    spec = node_pool(plan_pool(INF_POOL))["spec"]["template"]["spec"]
    by_key = {r["key"]: r["values"] for r in spec["requirements"]}
    assert by_key["node.kubernetes.io/instance-type"] == ["inf2.xlarge", "inf2.48xlarge"]
    assert by_key["karpenter.sh/capacity-type"] == ["on-demand", "spot"]
    assert "topology.kubernetes.io/zone" not in by_key
    assert spec["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "inf2"}


def test_schema_gate_catches_a_misspelt_field() -> None:
    broken = copy.deepcopy(node_class(plan_pool(INF_POOL)))
    broken["spec"]["metadataOption"] = broken["spec"].pop("metadataOptions")  # type: ignore[index, union-attr]
    with pytest.raises(jsonschema.ValidationError, match="metadataOption"):
        validate(broken)


def test_schema_gate_catches_a_bad_value() -> None:
    broken = copy.deepcopy(node_pool(plan_pool(INF_POOL)))
    broken["spec"]["disruption"]["consolidationPolicy"] = "Sometimes"
    with pytest.raises(jsonschema.ValidationError, match="Sometimes"):
        validate(broken)
