"""The FSx for Lustre CSI driver and a static volume + claim for one file system."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_eks_v2 as eks

from constructs import Construct, IDependable
from neuron_platform import versions
from neuron_platform.cluster.helm import install_chart
from neuron_platform.cluster.neuron_cluster import NeuronCluster, eks_cluster
from neuron_platform.k8s.helm_values import fsx_csi_driver_values
from neuron_platform.k8s.storage import SHARED_CLAIM_NAME, lustre_claim, lustre_persistent_volume


class LustreVolume(Construct):
    """Installs the pinned FSx CSI driver and exposes an existing Lustre file system as the
    ``neuron-training-fsx`` PersistentVolume and a claim of that name in ``namespace``.

    ``cluster``: a :class:`NeuronCluster` or an ``aws_eks_v2.Cluster``.

    Example::

        fs = TrainingFileSystem(self, "Fsx", ...)
        volume = LustreVolume(
            self, "Volume", cluster=cluster, file_system_id=fs.file_system.file_system_id,
            dns_name=fs.file_system.dns_name, mount_name=fs.file_system.mount_name,
            storage_gib=1200, zone="us-east-1a", namespace="default",
        )
        volume.claim_name  # mount it in pods
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster | NeuronCluster,
        file_system_id: str,
        dns_name: str,
        mount_name: str,
        storage_gib: int,
        zone: str,
        namespace: str = "default",
        depends_on: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        cluster = eks_cluster(cluster)
        self.claim_name = SHARED_CLAIM_NAME
        self.driver_chart = install_chart(
            cluster,
            "FsxCsiDriver",
            versions.FSX_CSI_DRIVER_CHART,
            release="aws-fsx-csi-driver",
            values=fsx_csi_driver_values(),
        )
        self.manifest = cluster.add_manifest(
            "TrainingVolume",
            lustre_persistent_volume(
                file_system_id=file_system_id,
                dns_name=dns_name,
                mount_name=mount_name,
                storage_gib=storage_gib,
                zone=zone,
            ),
            lustre_claim(namespace=namespace, storage_gib=storage_gib),
        )
        self.manifest.node.add_dependency(self.driver_chart)
        for dependency in depends_on:
            self.driver_chart.node.add_dependency(dependency)
            self.manifest.node.add_dependency(dependency)
