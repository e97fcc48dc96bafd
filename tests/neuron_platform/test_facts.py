from __future__ import annotations

import pytest

from neuron_platform import facts


@pytest.mark.parametrize(
    ("name", "devices", "cores", "device_gib", "vcpu", "host_gib", "efa"),
    [
        ("inf2.xlarge", 1, 2, 32, 4, 16, 0),
        ("inf2.8xlarge", 1, 2, 32, 32, 128, 0),
        ("inf2.24xlarge", 6, 12, 192, 96, 384, 0),
        ("inf2.48xlarge", 12, 24, 384, 192, 768, 0),
        ("trn1.2xlarge", 1, 2, 32, 8, 32, 0),
        ("trn1.32xlarge", 16, 32, 512, 128, 512, 8),
        ("trn1n.32xlarge", 16, 32, 512, 128, 512, 16),
        ("trn2.48xlarge", 16, 128, 1536, 192, 2048, 16),
    ],
)
def test_instance_table_matches_neuron_docs(
    name: str, devices: int, cores: int, device_gib: int, vcpu: int, host_gib: int, efa: int
) -> None:
    t = facts.instance_type(name)
    assert (t.neuron_devices, t.neuron_cores, t.device_memory_gib, t.vcpu, t.host_memory_gib, t.efa_interfaces) == (
        devices,
        cores,
        device_gib,
        vcpu,
        host_gib,
        efa,
    )


def test_every_device_has_the_same_memory_per_core_within_a_generation() -> None:
    # NeuronCore-v2 (inf2/trn1): 16 GiB per core; trn2 NeuronCore-v3: 12 GiB per physical core.
    for t in facts.INSTANCE_TYPES.values():
        expected = 12 if t.family is facts.Family.TRN2 else 16
        assert t.device_memory_per_core_gib == expected, t.name


def test_compile_targets_share_neuroncore_v2_between_trn1_and_trn1n() -> None:
    assert facts.instance_type("trn1n.32xlarge").compile_target is facts.CompileTarget.TRN1
    assert facts.instance_type("inf2.48xlarge").compile_target is facts.CompileTarget.INF2
    assert facts.instance_type("trn2.48xlarge").compile_target is facts.CompileTarget.TRN2


def test_only_large_trainium_types_have_efa() -> None:
    assert sorted(n for n, t in facts.INSTANCE_TYPES.items() if t.efa_capable) == [
        "trn1.32xlarge",
        "trn1n.32xlarge",
        "trn2.48xlarge",
    ]


def test_inf2_has_no_instance_store_and_trainium_does() -> None:
    assert not any(t.instance_store for t in facts.INSTANCE_TYPES.values() if t.family is facts.Family.INF2)
    assert all(t.instance_store for t in facts.INSTANCE_TYPES.values() if t.family is not facts.Family.INF2)


def test_unknown_instance_type_lists_known_ones() -> None:
    with pytest.raises(facts.UnknownInstanceType, match=r"got 'inf3.xlarge'; allowed: inf2.xlarge, "):
        facts.instance_type("inf3.xlarge")


def test_every_region_offering_a_family_has_zone_facts() -> None:
    for family, regions in facts.FAMILY_REGIONS.items():
        for region in regions:
            assert facts.zones_of(region), f"{family} region {region} has no zone list"


def test_zone_names_follow_region() -> None:
    assert facts.zones_of("us-east-2") == ("us-east-2a", "us-east-2b", "us-east-2c")
    assert "ap-northeast-1b" not in facts.zones_of("ap-northeast-1")
    assert facts.zones_of("mars-1") == ()


def test_trn2_is_only_offered_where_we_know_it_is() -> None:
    assert facts.is_offered(facts.Family.TRN2, "us-east-2")
    assert not facts.is_offered(facts.Family.TRN2, "us-east-1")
    assert facts.is_offered(facts.Family.INF2, "us-east-1")


@pytest.mark.parametrize(
    ("target", "degrees"),
    [
        (facts.CompileTarget.INF2, (1, 2, 4, 8, 24)),
        (facts.CompileTarget.TRN1, (1, 2, 8, 16, 32)),
        (facts.CompileTarget.TRN2, (1, 2, 4, 8, 16, 32, 64)),
    ],
)
def test_tensor_parallel_degrees(target: facts.CompileTarget, degrees: tuple[int, ...]) -> None:
    assert facts.tensor_parallel_degrees(target) == degrees


def test_tensor_parallel_degrees_never_exceed_the_largest_instance() -> None:
    for target, degrees in facts.TENSOR_PARALLEL_DEGREES.items():
        largest = max(
            (t.neuron_cores // (2 if t.family is facts.Family.TRN2 else 1))
            for t in facts.INSTANCE_TYPES.values()
            if t.compile_target is target
        )
        assert max(degrees) <= largest, target


def test_every_instance_type_we_know_is_one_ec2_knows() -> None:
    """The facts tables name real EC2 types (botocore's EC2 model), as config validation requires."""
    from neuron_platform.ec2_instance_types import ec2_instance_types, unknown_instance_type

    known = ec2_instance_types()
    assert set(facts.INSTANCE_TYPES) <= known
    assert set(facts.COMPILE_MACHINES) <= known
    assert unknown_instance_type("m7i.xlarge") is None
    assert unknown_instance_type("m7i.xlage") == (
        "got 'm7i.xlage', which is not an EC2 instance type (did you mean m7i.xlarge or m7i.8xlarge?)"
    )


def test_the_model_file_reader_agrees_with_botocores_own_loader() -> None:
    """ec2_instance_types reads botocore's EC2 model file directly (synth speed); botocore's
    session, which the AWS calls use, must give the same set."""
    import botocore.session

    from neuron_platform.ec2_instance_types import ec2_instance_types

    model = botocore.session.get_session().get_service_model("ec2")
    assert ec2_instance_types() == frozenset(model.shape_for("InstanceType").enum)
    assert len(ec2_instance_types()) > 1000
