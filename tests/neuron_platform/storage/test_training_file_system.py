"""TrainingFileSystem and DataBucket, synthesized on their own."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template

from neuron_platform.storage import DataBucket, TrainingFileSystem
from tests.conftest import new_app
from tests.helpers import group_id, props, resources


def _template(**kwargs: Any) -> tuple[cdk.Stack, TrainingFileSystem, Template]:
    stack = cdk.Stack(new_app(), "Test", env=cdk.Environment(region="us-east-1"))
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["us-east-1a", "us-east-1b"], nat_gateways=0)
    fs = TrainingFileSystem(
        stack,
        "Fsx",
        vpc=vpc,
        subnet=vpc.isolated_subnets[1],
        client_security_group_ids=["sg-0123456789abcdef0"],
        **kwargs,
    )
    return stack, fs, Template.from_stack(stack)


def test_persistent_2_lz4_encrypted_in_the_given_subnet() -> None:
    stack, fs, t = _template(storage_gib=2400, throughput_mb_per_tib=500)
    (file_system,) = resources(t, "AWS::FSx::FileSystem").values()
    p = props(file_system)
    assert p["FileSystemType"] == "LUSTRE"
    assert p["FileSystemTypeVersion"] == "2.15"
    assert p["StorageCapacity"] == 2400
    assert p["LustreConfiguration"]["DeploymentType"] == "PERSISTENT_2"
    assert p["LustreConfiguration"]["PerUnitStorageThroughput"] == 500
    assert p["LustreConfiguration"]["DataCompressionType"] == "LZ4"
    assert p["SubnetIds"] == [stack.resolve(fs.file_system.stack.node.find_child("Vpc").isolated_subnets[1].subnet_id)]
    assert p["KmsKeyId"] == stack.resolve(fs.key.key_id)
    (key,) = resources(t, "AWS::KMS::Key").values()
    assert props(key)["EnableKeyRotation"] is True


def test_lustre_ports_only_from_clients_and_between_servers() -> None:
    stack, fs, t = _template()
    sg = stack.resolve(fs.security_group.security_group_id)["Fn::GetAtt"][0]
    group = resources(t, "AWS::EC2::SecurityGroup")[sg]
    inline = props(group).get("SecurityGroupIngress", [])
    standalone = [props(r) for r in resources(t, "AWS::EC2::SecurityGroupIngress").values()]
    rules = {(str(r["SourceSecurityGroupId"]), r["FromPort"], r["ToPort"]) for r in [*inline, *standalone]}
    assert rules == {
        ("sg-0123456789abcdef0", 988, 988),
        ("sg-0123456789abcdef0", 1018, 1023),
        (str(group_id(sg)), 988, 1023),  # LustreFileSystem's own rule between its servers
    }
    egress = [props(r) for r in resources(t, "AWS::EC2::SecurityGroupEgress").values()]
    assert {(r["FromPort"], r["ToPort"]) for r in egress} == {(988, 988), (1018, 1023)}
    assert all(r["DestinationSecurityGroupId"] == group_id(sg) for r in egress)
    assert "0.0.0.0/0" not in str(props(group))


def test_data_repository_links_data_path_both_ways() -> None:
    stack, fs, t = _template(data_prefix="datasets/")
    (dra,) = resources(t, "AWS::FSx::DataRepositoryAssociation").values()
    p = props(dra)
    assert p["FileSystemPath"] == "/data"
    assert p["BatchImportMetaDataOnCreate"] is True
    events = ["NEW", "CHANGED", "DELETED"]
    assert p["S3"] == {"AutoImportPolicy": {"Events": events}, "AutoExportPolicy": {"Events": events}}
    path = stack.resolve(fs.data_repository.data_repository_path)
    assert path == {"Fn::Join": ["", ["s3://", stack.resolve(fs.bucket.bucket_name), "/datasets/"]]}


def test_existing_bucket_is_linked_and_none_created() -> None:
    _, fs, t = _template(data_bucket_name="my-datasets")
    assert resources(t, "AWS::S3::Bucket") == {}
    assert fs.data_bucket is None
    (dra,) = resources(t, "AWS::FSx::DataRepositoryAssociation").values()
    assert props(dra)["DataRepositoryPath"] == "s3://my-datasets/"


def test_everything_holding_data_is_retained_by_default() -> None:
    _, _, t = _template()
    for type_name in ("AWS::FSx::FileSystem", "AWS::KMS::Key", "AWS::S3::Bucket"):
        for resource in resources(t, type_name).values():
            assert resource["DeletionPolicy"] == "Retain", type_name


def test_destroy_when_the_user_opts_out() -> None:
    _, _, t = _template(removal_policy=cdk.RemovalPolicy.DESTROY)
    for type_name in ("AWS::FSx::FileSystem", "AWS::S3::Bucket"):
        for resource in resources(t, type_name).values():
            assert resource["DeletionPolicy"] == "Delete", type_name


def test_data_bucket_is_private_versioned_tls_only_and_logged() -> None:
    stack = cdk.Stack(new_app(), "Test", env=cdk.Environment(region="us-east-1"))
    data = DataBucket(stack, "Data")
    t = Template.from_stack(stack)
    bucket_id = stack.resolve(data.bucket.bucket_name)["Ref"]
    logs_id = stack.resolve(data.access_logs.bucket_name)["Ref"]
    bucket = props(resources(t, "AWS::S3::Bucket")[bucket_id])
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["LoggingConfiguration"] == {"DestinationBucketName": {"Ref": logs_id}, "LogFilePrefix": "access/"}
    policies = [props(p) for p in resources(t, "AWS::S3::BucketPolicy").values()]
    (policy,) = [p for p in policies if p["Bucket"] == {"Ref": bucket_id}]
    (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
