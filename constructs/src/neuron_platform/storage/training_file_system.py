"""FSx for Lustre (PERSISTENT_2) for training data and checkpoints, linked to S3."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_fsx as fsx
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from neuron_platform import versions
from neuron_platform.k8s.storage import DATA_REPOSITORY_PATH
from neuron_platform.storage.data_bucket import DataBucket

# Lustre's ports: 988 for the servers, 1018-1023 for client/server RPC (FSx for Lustre
# user guide, "File system access control with Amazon VPC").
LUSTRE_PORTS = (ec2.Port.tcp(988), ec2.Port.tcp_range(1018, 1023))
# Mirror every bucket change into the file system and every file change back to S3.
S3_SYNC_EVENTS = ["NEW", "CHANGED", "DELETED"]


class TrainingFileSystem(Construct):
    """A PERSISTENT_2 Lustre file system in one subnet (the EFA pool's zone), encrypted with
    its own KMS key, reachable from ``client_security_group_ids`` on the Lustre ports only,
    with a data repository association that links ``/data`` to an S3 bucket: objects appear
    as files on first access and written files are exported back automatically.

    Without ``data_bucket_name`` a :class:`DataBucket` is created (SSE-S3: the FSx service-
    linked role reads it). File system, key and bucket follow ``removal_policy``.

    Example::

        fs = TrainingFileSystem(
            self, "Fsx", vpc=vpc, subnet=vpc.private_subnets[0], storage_gib=1200,
            client_security_group_ids=[cluster.cluster_security_group_id],
        )
        fs.file_system.file_system_id
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnet: ec2.ISubnet,
        client_security_group_ids: list[str],
        storage_gib: int = 1200,
        throughput_mb_per_tib: int = 250,
        data_bucket_name: str | None = None,
        data_prefix: str = "",
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.storage_gib = storage_gib
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="FSx for Lustre: Lustre ports from training nodes and between file servers",
            allow_all_outbound=False,
        )
        # Between file servers: LustreFileSystem itself opens TCP 988-1023 from the group to
        # itself; the egress side is ours because the group allows no other outbound traffic.
        for j, port in enumerate(LUSTRE_PORTS):
            self.security_group.add_egress_rule(self.security_group, port, "Lustre between file servers")
            rule = port.to_rule_json()
            for i, group_id in enumerate(client_security_group_ids):
                # Separate resources, not inline rules: an inline rule naming the cluster's
                # security group would make the group, and so the file system (about ten
                # minutes), wait for the cluster (about ten more) instead of building beside it.
                ec2.CfnSecurityGroupIngress(
                    self,
                    f"ClientIngress{i}Port{j}",
                    group_id=self.security_group.security_group_id,
                    source_security_group_id=group_id,
                    ip_protocol=rule["ipProtocol"],
                    from_port=rule["fromPort"],
                    to_port=rule["toPort"],
                    description=f"Lustre from training nodes ({i})",
                )
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the training FSx for Lustre file system",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.file_system = fsx.LustreFileSystem(
            self,
            "FileSystem",
            vpc=vpc,
            vpc_subnet=subnet,
            security_group=self.security_group,
            storage_capacity_gib=storage_gib,
            file_system_type_version=fsx.FileSystemTypeVersion.V_2_15
            if versions.LUSTRE_VERSION == "2.15"
            else fsx.FileSystemTypeVersion.V_2_12,
            kms_key=self.key,
            lustre_configuration=fsx.LustreConfiguration(
                deployment_type=fsx.LustreDeploymentType.PERSISTENT_2,
                per_unit_storage_throughput=throughput_mb_per_tib,
                # Text datasets and checkpoints compress well; LZ4 costs little CPU.
                data_compression_type=fsx.LustreDataCompressionType.LZ4,
            ),
            removal_policy=removal_policy,
        )
        self.data_bucket: DataBucket | None = None
        if data_bucket_name:
            bucket: s3.IBucket = s3.Bucket.from_bucket_name(self, "ImportedData", data_bucket_name)
        else:
            self.data_bucket = DataBucket(self, "Data", removal_policy=removal_policy)
            bucket = self.data_bucket.bucket
        self.bucket = bucket
        self.data_repository = fsx.CfnDataRepositoryAssociation(
            self,
            "DataRepository",
            file_system_id=self.file_system.file_system_id,
            file_system_path=DATA_REPOSITORY_PATH,
            data_repository_path=f"s3://{bucket.bucket_name}/{data_prefix}",
            # Metadata of existing objects is listed at creation so datasets show up at once.
            batch_import_meta_data_on_create=True,
            s3=fsx.CfnDataRepositoryAssociation.S3Property(
                auto_import_policy=fsx.CfnDataRepositoryAssociation.AutoImportPolicyProperty(events=S3_SYNC_EVENTS),
                auto_export_policy=fsx.CfnDataRepositoryAssociation.AutoExportPolicyProperty(events=S3_SYNC_EVENTS),
            ),
        )
        if self.data_bucket is not None:
            self.data_repository.node.add_dependency(self.data_bucket)
