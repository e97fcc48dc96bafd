from __future__ import annotations

from typing import Any

import pytest

from neuron_platform.capacity import plan_pool
from neuron_platform.config import PoolConfig


def pool(**overrides: Any) -> PoolConfig:
    base: dict[str, Any] = {"name": "p", "purpose": "inference", "instance_types": ["inf2.xlarge"]}
    return PoolConfig.model_validate(base | overrides)


@pytest.mark.parametrize(
    ("types", "max_nodes", "limits"),
    [
        (["inf2.48xlarge"], 3, {"cpu": "576", "memory": "2304Gi", "aws.amazon.com/neuron": "36"}),
        (["inf2.xlarge", "inf2.8xlarge"], 10, {"cpu": "320", "memory": "1280Gi", "aws.amazon.com/neuron": "10"}),
        (["trn1.32xlarge"], 2, {"cpu": "256", "memory": "1024Gi", "aws.amazon.com/neuron": "32"}),
        (["trn2.48xlarge"], 1, {"cpu": "192", "memory": "2048Gi", "aws.amazon.com/neuron": "16"}),
    ],
)
def test_limits_admit_max_nodes_of_the_largest_type(types: list[str], max_nodes: int, limits: dict[str, str]) -> None:
    assert plan_pool(pool(instance_types=types, max_nodes=max_nodes)).limits == limits


def test_training_consolidates_only_empty_nodes_after_a_while() -> None:
    plan = plan_pool(pool(purpose="training", instance_types=["trn1.2xlarge"]))
    assert (plan.consolidation_policy, plan.consolidate_after) == ("WhenEmpty", "30m")


def test_inference_consolidates_underutilized_nodes_quickly() -> None:
    plan = plan_pool(pool())
    assert (plan.consolidation_policy, plan.consolidate_after) == ("WhenEmptyOrUnderutilized", "5m")


def test_consolidate_after_override() -> None:
    assert plan_pool(pool(consolidate_after="1h")).consolidate_after == "1h"


@pytest.mark.parametrize(
    ("types", "volume", "raid0"),
    [(["inf2.xlarge"], 500, False), (["trn1.32xlarge"], 100, True), (["trn2.48xlarge"], 100, True)],
)
def test_root_volume_and_instance_store(types: list[str], volume: int, raid0: bool) -> None:
    plan = plan_pool(pool(purpose="training", instance_types=types))
    assert (plan.root_volume_gib, plan.raid0_instance_store) == (volume, raid0)


def test_root_volume_override() -> None:
    assert plan_pool(pool(root_volume_gib=1000)).root_volume_gib == 1000


@pytest.mark.parametrize(
    ("instance_type", "efa"), [("trn1.32xlarge", 8), ("trn1n.32xlarge", 16), ("trn2.48xlarge", 16)]
)
def test_efa_interface_count_per_type(instance_type: str, efa: int) -> None:
    plan = plan_pool(pool(purpose="training", instance_types=[instance_type], efa=True, zone="us-east-1a"))
    assert plan.efa_interfaces == efa
    assert plan.labels["neuron-platform/efa"] == "true"


def test_non_efa_pool_has_no_efa() -> None:
    plan = plan_pool(pool(purpose="training", instance_types=["trn1.32xlarge"]))
    assert plan.efa_interfaces == 0
    assert "neuron-platform/efa" not in plan.labels


def test_reserved_capacity_is_ordered_first() -> None:
    plan = plan_pool(
        pool(
            purpose="training",
            instance_types=["trn1.32xlarge"],
            capacity_types=["on-demand", "reserved"],
            capacity_reservations={"ids": ["cr-0123456789abcdef0"], "tags": {"team": "ml"}},
        )
    )
    assert plan.capacity_types == ("reserved", "on-demand")
    assert plan.reservation_ids == ("cr-0123456789abcdef0",)
    assert plan.reservation_tags == {"team": "ml"}
