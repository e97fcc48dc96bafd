"""Karpenter NodePool and EC2NodeClass objects for Neuron pools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from neuron_platform.capacity import NEURON_TAINT_KEY, PoolPlan
from neuron_platform.k8s import Manifest

NODEPOOL_API = "karpenter.sh/v1"
NODECLASS_API = "karpenter.k8s.aws/v1"

# EFA nodes reserve 2 MiB hugepages for libfabric before kubelet starts, so kubelet
# reports hugepages-2Mi capacity (5128 pages = 10,256 MiB; jobs ask for 5120Mi). Karpenter
# merges this MIME part with the NodeConfig it generates for AL2023.
EFA_HUGEPAGES_PAGES = 5128
EFA_HUGEPAGES_USER_DATA = f"""MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="//"

--//
Content-Type: text/x-shellscript; charset="us-ascii"

#!/bin/bash
# Reserve 2 MiB hugepages for EFA (libfabric) before kubelet starts.
echo "vm.nr_hugepages = {EFA_HUGEPAGES_PAGES}" > /etc/sysctl.d/90-efa-hugepages.conf
sysctl -w vm.nr_hugepages={EFA_HUGEPAGES_PAGES}
--//--
"""


def node_pool(plan: PoolPlan) -> Manifest:
    """A NodePool for ``plan``: its types, capacity types, zone, taint, limits, disruption."""
    requirements: list[dict[str, object]] = [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(plan.instance_types)},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(plan.capacity_types)},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    if plan.zone:
        requirements.append({"key": "topology.kubernetes.io/zone", "operator": "In", "values": [plan.zone]})
    return {
        "apiVersion": NODEPOOL_API,
        "kind": "NodePool",
        "metadata": {"name": plan.name, "labels": dict(plan.labels)},
        "spec": {
            "template": {
                "metadata": {"labels": dict(plan.labels)},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": plan.name},
                    "requirements": requirements,
                    # Only pods that tolerate Neuron capacity land here.
                    "taints": [{"key": NEURON_TAINT_KEY, "effect": "NoSchedule"}],
                    "expireAfter": plan.expire_after,
                },
            },
            "limits": dict(plan.limits),
            **({"replicas": plan.static_nodes} if plan.static_nodes else {}),
            "disruption": {
                "consolidationPolicy": plan.consolidation_policy,
                "consolidateAfter": plan.consolidate_after,
                "budgets": [{"nodes": "10%"}],
            },
        },
    }


def ec2_node_class(
    plan: PoolPlan,
    *,
    node_role: str,
    subnet_ids: Sequence[str],
    security_group_ids: Sequence[str],
    placement_group_name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Manifest:
    """The EC2NodeClass behind ``plan``'s NodePool.

    IMDSv2 only with hop limit 1 (pods cannot reach node credentials), encrypted gp3
    root volume, RAID0 over the NVMe instance store where the type has one, no public
    IPs, and for EFA pools the EFA security group and cluster placement group.
    """
    spec: dict[str, object] = {
        "role": node_role,
        # Pinned per pool: the newest AMI whose Neuron driver runs the pool's runtimes.
        "amiSelectorTerms": [{"alias": plan.ami_alias}],
        "subnetSelectorTerms": [{"id": s} for s in subnet_ids],
        "securityGroupSelectorTerms": [{"id": g} for g in security_group_ids],
        "associatePublicIPAddress": False,
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "rootVolume": True,
                "ebs": {
                    "volumeSize": f"{plan.root_volume_gib}Gi",
                    "volumeType": "gp3",
                    "iops": 3000,
                    "throughput": 250,
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
        "detailedMonitoring": True,
        "tags": {"neuron-platform/pool": plan.name, **(tags or {})},
    }
    if plan.raid0_instance_store:
        spec["instanceStorePolicy"] = "RAID0"
    if placement_group_name:
        spec["placementGroupSelector"] = {"name": placement_group_name}
    if plan.efa:
        spec["userData"] = EFA_HUGEPAGES_USER_DATA
    terms: list[dict[str, object]] = [{"id": r} for r in plan.reservation_ids]
    if plan.reservation_tags:
        terms.append({"tags": dict(plan.reservation_tags)})
    if terms:
        spec["capacityReservationSelectorTerms"] = terms
    return {
        "apiVersion": NODECLASS_API,
        "kind": "EC2NodeClass",
        "metadata": {"name": plan.name, "labels": dict(plan.labels)},
        "spec": spec,
    }
