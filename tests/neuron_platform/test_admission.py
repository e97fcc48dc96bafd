"""Kueue quotas from the pools, and the plain model of Kueue's quota check."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuron_platform import facts
from neuron_platform.admission import (
    COVERED_RESOURCES,
    PodSet,
    fits,
    parse_quantity,
    queue_name,
    training_queue,
    training_queues,
    trainjob_pod_sets,
)
from neuron_platform.capacity import PoolPlan, plan_pool
from neuron_platform.config import load_config
from neuron_platform.k8s.karpenter import ec2_node_class
from neuron_platform.k8s.training import neuron_training_runtime, train_job
from tests.conftest import ALL_CONFIGS, config_id
from tests.pools import training_plan as plan


def test_quota_is_nodes_times_one_node_of_the_runtimes_type() -> None:
    queue = training_queue(plan(max_nodes=4))
    assert queue.quota == {
        "cpu": "512",
        "memory": "2048Gi",
        "aws.amazon.com/neuron": "64",
        "vpc.amazonaws.com/efa": "32",
        "hugepages-2Mi": "41024Mi",
    }


def test_static_pools_are_sized_by_the_nodes_they_keep() -> None:
    queue = training_queue(plan(static_nodes=2, max_nodes=6))
    assert queue.nodes == 2
    assert queue.quota["aws.amazon.com/neuron"] == "32"


def test_hugepages_quota_is_what_the_node_class_reserves() -> None:
    pool = plan(max_nodes=1)
    node_class = ec2_node_class(pool, node_role="r", subnet_ids=["subnet-0a"], security_group_ids=["sg-0a"])
    pages = int(node_class["spec"]["userData"].split("sysctl -w vm.nr_hugepages=")[1].split()[0])
    assert training_queue(pool).quota["hugepages-2Mi"] == f"{pages * 2}Mi"


@pytest.mark.parametrize("path", [p for p in ALL_CONFIGS if load_config(p).training.enabled], ids=config_id)
def test_every_shipped_training_config_has_quotas_equal_to_pool_capacity(path: Path) -> None:
    config = load_config(path)
    queues = {q.pool: q for q in training_queues([plan_pool(p) for p in config.pools])}
    assert set(queues) == {p.name for p in config.efa_training_pools}
    for pool in config.efa_training_pools:
        t = facts.instance_type(pool.instance_types[0])
        nodes = pool.static_nodes or pool.max_nodes
        assert queues[pool.name].quota_amounts == {
            "cpu": nodes * t.vcpu,
            "memory": nodes * t.host_memory_gib,
            "aws.amazon.com/neuron": nodes * t.neuron_devices,
            "vpc.amazonaws.com/efa": nodes * t.efa_interfaces,
            "hugepages-2Mi": nodes * 10256,
        }, pool.name


def test_queues_only_for_pools_with_runtimes_reserved_first() -> None:
    plans = [
        plan(name="b-on-demand"),
        plan(name="a-dev", efa=False, zone=None, instance_types=["trn1.2xlarge"]),
        plan(name="c-reserved", capacity_types=["reserved", "on-demand"], capacity_reservations={"ids": ["cr-0a"]}),
        plan(name="serve", purpose="inference", efa=False, zone=None, instance_types=["inf2.xlarge"]),
    ]
    assert [q.name for q in training_queues(plans)] == ["neuron-c-reserved", "neuron-b-on-demand"]


@pytest.mark.parametrize(
    ("overrides", "topology"),
    [
        ({"static_nodes": 2}, True),
        ({}, False),  # Karpenter launches nodes for pods; Kueue's topology sees only existing nodes
        ({"static_nodes": 2, "instance_types": ["trn2.48xlarge"]}, True),
        ({"static_nodes": 2, "efa": False, "zone": None}, False),
    ],
)
def test_topology_only_for_efa_pools_whose_nodes_exist(overrides: dict[str, object], topology: bool) -> None:
    assert training_queue(plan(**overrides)).topology is topology


def test_every_type_with_a_network_topology_has_the_three_layers_the_topology_names() -> None:
    assert set(facts.NETWORK_TOPOLOGY_LAYERS.values()) == {3}
    assert all(facts.instance_type(name).family.value.startswith("trn") for name in facts.NETWORK_TOPOLOGY_LAYERS)


@pytest.mark.parametrize(
    ("value", "resource", "amount"),
    [("384Gi", "memory", 384), ("512Mi", "memory", 1), ("5120Mi", "hugepages-2Mi", 5120), ("16", "cpu", 16)],
)
def test_parse_quantity(value: str, resource: str, amount: int) -> None:
    assert parse_quantity(value, resource) == amount


def test_cpu_millis_round_up() -> None:
    assert parse_quantity("500m", "cpu") == 1
    assert parse_quantity("2000m", "cpu") == 2


def _job_on(pool: PoolPlan, nodes: int) -> list[PodSet]:
    job = train_job(
        name="j", pool=pool.name, instance_type=pool.node_type.name, image="i:1", command=["x"], num_nodes=nodes
    )
    return trainjob_pod_sets(job, neuron_training_runtime(pool, image="i:1"))


def test_pod_sets_come_from_the_runtime_and_the_job() -> None:
    (pod_set,) = _job_on(plan(), 3)
    assert pod_set.name == "node"
    assert pod_set.count == 3
    assert pod_set.requests == {
        "aws.amazon.com/neuron": "16",
        "vpc.amazonaws.com/efa": "8",
        "hugepages-2Mi": "5120Mi",
        "memory": "384Gi",
    }


def test_a_job_of_every_node_fits_and_one_more_does_not() -> None:
    pool = plan(max_nodes=4)
    queue = training_queue(pool)
    assert fits(_job_on(pool, 4), queue) == []
    problems = fits(_job_on(pool, 5), queue)
    assert problems[0] == ("aws.amazon.com/neuron: the job asks 80, queue neuron-trn holds 64 (4 x trn1.32xlarge)")
    assert any(p.startswith("vpc.amazonaws.com/efa") for p in problems)


def test_a_resource_the_queue_does_not_cover_is_never_admitted() -> None:
    queue = training_queue(plan())
    (problem,) = fits([PodSet(name="node", count=1, requests={"nvidia.com/gpu": "1"})], queue)
    assert problem.startswith("nvidia.com/gpu is not a resource queue neuron-trn covers")


def test_every_resource_a_runtime_requests_is_covered() -> None:
    for instance_type in ("trn1.32xlarge", "trn1n.32xlarge", "trn2.48xlarge"):
        (pod_set,) = _job_on(plan(instance_types=[instance_type]), 1)
        assert set(pod_set.requests) <= set(COVERED_RESOURCES)


def test_queue_name() -> None:
    assert queue_name("trn1-efa") == "neuron-trn1-efa"
