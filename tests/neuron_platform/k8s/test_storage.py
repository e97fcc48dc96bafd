"""The shared training volume objects."""

from __future__ import annotations

from typing import Any

from neuron_platform.capacity import plan_pool
from neuron_platform.config import PoolConfig
from neuron_platform.k8s.storage import lustre_claim, lustre_persistent_volume
from neuron_platform.k8s.training import neuron_training_runtime
from tests.k8s_schemas import validate


def _volume() -> dict[str, Any]:
    return lustre_persistent_volume(
        file_system_id="fs-0123456789abcdef0",
        dns_name="fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com",
        mount_name="abcdefgh",
        storage_gib=2400,
        zone="us-east-1a",
    )


def test_volume_and_claim_are_schema_valid_and_bound_by_name() -> None:
    volume = _volume()
    claim = lustre_claim(namespace="ml", storage_gib=2400)
    validate(volume)
    validate(claim)
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]
    # Static binding: an empty class keeps a default StorageClass from provisioning a new volume.
    assert claim["spec"]["storageClassName"] == volume["spec"]["storageClassName"] == ""
    assert claim["spec"]["resources"]["requests"]["storage"] == "2400Gi"


def test_volume_points_at_the_file_system() -> None:
    spec = _volume()["spec"]
    assert spec["csi"] == {
        "driver": "fsx.csi.aws.com",
        "volumeHandle": "fs-0123456789abcdef0",
        "volumeAttributes": {"dnsname": "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com", "mountname": "abcdefgh"},
    }
    assert spec["accessModes"] == ["ReadWriteMany"]
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"


def test_runtime_mounts_the_claim_only_when_given() -> None:
    plan = plan_pool(
        PoolConfig(name="trn1-efa", purpose="training", instance_types=["trn1.32xlarge"], efa=True, zone="us-east-1a")
    )
    with_fsx = neuron_training_runtime(plan, image="img:1", shared_claim="neuron-training-fsx")
    without = neuron_training_runtime(plan, image="img:1")
    validate(with_fsx)

    def pod(runtime: dict[str, Any]) -> Any:
        return runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]

    assert {"name": "fsx", "persistentVolumeClaim": {"claimName": "neuron-training-fsx"}} in pod(with_fsx)["volumes"]
    assert [v["name"] for v in pod(without)["volumes"]] == ["dshm"]
