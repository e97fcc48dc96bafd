"""Zone-level offering checks: is each pool's instance type offered in its zones?

Zone names map to different physical zones in every account (``us-east-1a`` here may be
``use1-az4`` there), and Trainium types are offered only in some zones, so this cannot be
decided from a table at synth time. It asks EC2 in the deploying account
(``DescribeInstanceTypeOfferings`` and ``DescribeAvailabilityZones``, read-only) and is
run by ``python -m neuron_platform config check-offerings`` before ``cdk deploy``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from neuron_platform.config import PlatformConfig


class Ec2Client(Protocol):
    def describe_instance_type_offerings(self, **kwargs: Any) -> dict[str, Any]: ...

    def describe_availability_zones(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class OfferingReport:
    problems: list[str]
    warnings: list[str]
    checked: list[str]


def offered_zones(ec2: Ec2Client, instance_types: Iterable[str]) -> dict[str, set[str]]:
    """Zone names offering each type, in the client's account and region."""
    types = sorted(set(instance_types))
    zones: dict[str, set[str]] = {t: set() for t in types}
    kwargs: dict[str, Any] = {
        "LocationType": "availability-zone",
        "Filters": [{"Name": "instance-type", "Values": types}],
    }
    while True:
        page = ec2.describe_instance_type_offerings(**kwargs)
        for offering in page.get("InstanceTypeOfferings", []):
            zones.setdefault(offering["InstanceType"], set()).add(offering["Location"])
        token = page.get("NextToken")
        if not token:
            return zones
        kwargs["NextToken"] = token


def zone_ids(ec2: Ec2Client) -> dict[str, str]:
    """Zone name -> zone id (``use1-az6``): the id is the same physical zone in every account."""
    page = ec2.describe_availability_zones()
    return {z["ZoneName"]: z["ZoneId"] for z in page.get("AvailabilityZones", [])}


def check_offerings(config: PlatformConfig, ec2: Ec2Client) -> OfferingReport:
    """Problems (EFA pool zone or no zone at all) and warnings (some zones only)."""
    offered = offered_zones(ec2, (t for p in config.pools for t in p.instance_types))
    ids = zone_ids(ec2)

    def named(zones: Iterable[str]) -> str:
        return ", ".join(f"{z} ({ids.get(z, '?')})" for z in sorted(zones)) or "none"

    problems: list[str] = []
    warnings: list[str] = []
    checked: list[str] = []
    for i, pool in enumerate(config.pools):
        wanted = [pool.zone] if pool.zone else list(config.network.zones)
        for j, type_name in enumerate(pool.instance_types):
            where = f"pools[{i}].instance_types[{j}]"
            here = offered.get(type_name, set())
            missing = [z for z in wanted if z not in here]
            if pool.zone and missing:
                problems.append(
                    f"{where}: {type_name} is not offered in {named([pool.zone])} in this account; "
                    f"offered in: {named(here)} (set pools[{i}].zone to one of them that is in network.zones)"
                )
            elif not pool.zone and len(missing) == len(wanted):
                problems.append(
                    f"{where}: {type_name} is offered in none of network.zones ({named(wanted)}); "
                    f"offered in: {named(here)}"
                )
            elif missing:
                warnings.append(
                    f"{where}: {type_name} is not offered in {named(missing)}; Karpenter launches it in "
                    f"{named(set(wanted) - set(missing))} only"
                )
            else:
                checked.append(f"{pool.name}: {type_name} in {named(wanted)}")
    return OfferingReport(problems=problems, warnings=warnings, checked=checked)


def summarize(report: OfferingReport, source: str) -> Mapping[str, list[str]]:
    """Lines for stdout and stderr, in the CLI's formats."""
    stderr = [f"offering error: {source}: {p}" for p in report.problems]
    stderr += [f"offering warning: {source}: {w}" for w in report.warnings]
    stdout = [f"ok: {line}" for line in report.checked]
    return {"stdout": stdout, "stderr": stderr}
