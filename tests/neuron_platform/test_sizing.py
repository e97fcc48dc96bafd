from __future__ import annotations

import ipaddress

import pytest

from neuron_platform.sizing import SubnetLayoutError, plan_subnets


def net(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr)


def test_default_layout_gives_three_large_private_subnets() -> None:
    plan = plan_subnets(net("10.0.0.0/16"), zones=3, public_prefix=24, private_prefix=18)
    assert [str(n) for n in plan.public] == ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]
    # Private /18s are aligned to their size, so they start at 10.0.64.0 (what ec2.Vpc does).
    assert [str(n) for n in plan.private] == ["10.0.64.0/18", "10.0.128.0/18", "10.0.192.0/18"]
    assert plan.private_addresses == 3 * (16384 - 5)


def test_private_only_layout_for_secondary_blocks() -> None:
    plan = plan_subnets(net("100.64.0.0/16"), zones=3, public_prefix=None, private_prefix=18)
    assert plan.public == ()
    assert [str(n) for n in plan.private] == ["100.64.0.0/18", "100.64.64.0/18", "100.64.128.0/18"]


def test_layout_that_does_not_fit_reports_the_largest_that_would() -> None:
    with pytest.raises(SubnetLayoutError) as info:
        plan_subnets(net("10.0.0.0/16"), zones=4, public_prefix=24, private_prefix=18)
    assert info.value.needed == 4 * 256 + 4 * 16384
    assert info.value.available == 65536
    assert info.value.smallest_fitting_prefix == 19


def test_subnet_larger_than_block_is_rejected() -> None:
    with pytest.raises(SubnetLayoutError) as info:
        plan_subnets(net("10.0.0.0/20"), zones=2, public_prefix=24, private_prefix=16)
    assert info.value.smallest_fitting_prefix == 22


def test_nothing_fits_in_a_tiny_block() -> None:
    with pytest.raises(SubnetLayoutError) as info:
        plan_subnets(net("10.0.0.0/28"), zones=6, public_prefix=24, private_prefix=28)
    assert info.value.smallest_fitting_prefix is None
