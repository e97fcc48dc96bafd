"""Address planning for accelerator VPCs (plain Python, no CDK).

Pods on Neuron nodes take VPC addresses (the VPC CNI gives each pod an IP), so the
private subnets must be large. ``plan_subnets`` lays subnets out the way the CDK's
``ec2.Vpc`` does (in order, each block aligned to its own size) so a layout that
would fail at synth or deploy is rejected while the configuration is validated.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


class SubnetLayoutError(ValueError):
    """The requested subnets do not fit in the address block."""

    def __init__(self, *, needed: int, available: int, smallest_fitting_prefix: int | None) -> None:
        self.needed = needed
        self.available = available
        # The largest private subnets (lowest prefix number) that would fit, if any.
        self.smallest_fitting_prefix = smallest_fitting_prefix
        super().__init__(f"subnets need {needed} addresses but the block has {available}")


@dataclass(frozen=True)
class SubnetPlan:
    public: tuple[ipaddress.IPv4Network, ...]
    private: tuple[ipaddress.IPv4Network, ...]

    @property
    def private_addresses(self) -> int:
        """Usable addresses across the private subnets (AWS reserves 5 per subnet)."""
        return sum(net.num_addresses - 5 for net in self.private)


def plan_subnets(
    block: ipaddress.IPv4Network,
    *,
    zones: int,
    public_prefix: int | None,
    private_prefix: int,
) -> SubnetPlan:
    """Allocate one public (optional) and one private subnet per zone inside ``block``.

    Public subnets come first, then private ones, each aligned to its size.
    Raises :class:`SubnetLayoutError` when they do not fit.
    """
    public_prefixes = [public_prefix] * zones if public_prefix is not None else []
    allocated = _allocate(block, public_prefixes + [private_prefix] * zones)
    if allocated is None:
        smallest = next(
            (p for p in range(block.prefixlen, 29) if _allocate(block, public_prefixes + [p] * zones) is not None),
            None,
        )
        raise SubnetLayoutError(
            needed=sum(2 ** (32 - p) for p in public_prefixes + [private_prefix] * zones),
            available=block.num_addresses,
            smallest_fitting_prefix=smallest,
        )
    n_public = len(public_prefixes)
    return SubnetPlan(public=tuple(allocated[:n_public]), private=tuple(allocated[n_public:]))


def _allocate(block: ipaddress.IPv4Network, prefixes: list[int]) -> list[ipaddress.IPv4Network] | None:
    cursor = int(block.network_address)
    end = int(block.broadcast_address) + 1
    out: list[ipaddress.IPv4Network] = []
    for prefix in prefixes:
        size = 2 ** (32 - prefix)
        start = -(-cursor // size) * size  # round up to the block's own alignment
        if prefix < block.prefixlen or start + size > end:
            return None
        out.append(ipaddress.IPv4Network((start, prefix)))
        cursor = start + size
    return out
