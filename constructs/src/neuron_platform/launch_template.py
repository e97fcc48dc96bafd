"""The launch template every instance we launch directly uses (system nodes, compile machines)."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2

from constructs import Construct


def hardened_launch_template(scope: Construct, construct_id: str, *, root_volume_gib: int) -> ec2.LaunchTemplate:
    """IMDSv2 only with hop limit 1 (containers cannot reach the instance role) and an
    encrypted gp3 root volume of ``root_volume_gib`` deleted with the instance."""
    return ec2.LaunchTemplate(
        scope,
        construct_id,
        require_imdsv2=True,
        http_put_response_hop_limit=1,
        block_devices=[
            ec2.BlockDevice(
                device_name="/dev/xvda",
                volume=ec2.BlockDeviceVolume.ebs(
                    root_volume_gib,
                    volume_type=ec2.EbsDeviceVolumeType.GP3,
                    encrypted=True,
                    delete_on_termination=True,
                ),
            )
        ],
    )
