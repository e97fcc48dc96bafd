"""The shared training volume: a static FSx for Lustre PersistentVolume and its claim."""

from __future__ import annotations

from neuron_platform.k8s import Manifest

FSX_CSI_DRIVER = "fsx.csi.aws.com"
SHARED_VOLUME_NAME = "neuron-training-fsx"
SHARED_CLAIM_NAME = "neuron-training-fsx"
# Where training pods see the file system; the S3 data repository is linked at /data in
# the file system, so /fsx/data mirrors the bucket (imports and exports automatically).
SHARED_MOUNT_PATH = "/fsx"
DATA_REPOSITORY_PATH = "/data"


def lustre_persistent_volume(
    *, file_system_id: str, dns_name: str, mount_name: str, storage_gib: int, zone: str
) -> Manifest:
    """A PersistentVolume for an existing FSx for Lustre file system (static provisioning).

    ``zone`` pins consumers to the file system's zone: EFA training nodes live there, and
    crossing zones would add latency and inter-zone transfer to every read.
    """
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": SHARED_VOLUME_NAME, "labels": {"neuron-platform/volume": "training-fsx"}},
        "spec": {
            "capacity": {"storage": f"{storage_gib}Gi"},
            "volumeMode": "Filesystem",
            "accessModes": ["ReadWriteMany"],
            # The file system belongs to CloudFormation; deleting the claim must not touch it.
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            # flock: torch checkpoint and dataset caches take file locks.
            "mountOptions": ["flock"],
            "csi": {
                "driver": FSX_CSI_DRIVER,
                "volumeHandle": file_system_id,
                "volumeAttributes": {"dnsname": dns_name, "mountname": mount_name},
            },
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}
                            ]
                        }
                    ]
                }
            },
        },
    }


def lustre_claim(*, namespace: str, storage_gib: int) -> Manifest:
    """The claim training pods mount, bound to :func:`lustre_persistent_volume` by name."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": SHARED_CLAIM_NAME, "namespace": namespace},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "volumeName": SHARED_VOLUME_NAME,
            "resources": {"requests": {"storage": f"{storage_gib}Gi"}},
        },
    }
