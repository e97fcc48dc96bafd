"""CloudFormation custom resource: no Karpenter instance outlives the cluster stack.

On Delete (after the NodePools and the Karpenter controller are gone), terminate every
EC2 instance that Karpenter launched for this cluster and wait until they are all
terminated, so the security groups, subnets and VPC behind them can be deleted.
Create and Update do nothing. The resource reports FAILED, with the instance ids, if
instances are still alive when the Lambda is about to time out: the stack then stops
in DELETE_FAILED instead of orphaning instances, and a retry continues the work.

Runs in AWS Lambda (Python 3.14, boto3 from the runtime); not imported by CDK code.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

ALIVE = ["pending", "running", "stopping", "stopped", "shutting-down"]
SAFETY_MARGIN_S = 60
POLL_S = 15


def karpenter_instances(ec2: Any, cluster_name: str) -> dict[str, str]:
    """Instance id -> state for instances Karpenter launched for ``cluster_name`` and not yet terminated."""
    paginator = ec2.get_paginator("describe_instances")
    found: dict[str, str] = {}
    filters = [
        {"Name": f"tag:kubernetes.io/cluster/{cluster_name}", "Values": ["owned"]},
        {"Name": "tag-key", "Values": ["karpenter.sh/nodepool"]},
        {"Name": "instance-state-name", "Values": ALIVE},
    ]
    for page in paginator.paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                found[instance["InstanceId"]] = instance["State"]["Name"]
    return found


def drain(
    ec2: Any,
    cluster_name: str,
    *,
    seconds_left: Callable[[], float],
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Terminate and wait. Returns the ids still alive when time ran out (empty: done)."""
    while True:
        alive = karpenter_instances(ec2, cluster_name)
        if not alive:
            return []
        to_terminate = sorted(i for i, state in alive.items() if state != "shutting-down")
        if to_terminate:
            LOG.info("terminating %d instance(s): %s", len(to_terminate), to_terminate)
            for start in range(0, len(to_terminate), 500):  # API limit per call
                ec2.terminate_instances(InstanceIds=to_terminate[start : start + 500])
        if seconds_left() < SAFETY_MARGIN_S + POLL_S:
            return sorted(alive)
        sleep(POLL_S)


def respond(event: dict[str, Any], status: str, reason: str, physical_id: str) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:3000],
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": {},
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's pre-signed https URL
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        LOG.info("CloudFormation response: %s", response.status)


def handler(event: dict[str, Any], context: Any, ec2: Any = None) -> None:
    cluster_name = event["ResourceProperties"]["ClusterName"]
    physical_id = f"karpenter-teardown-{cluster_name}"
    status, reason = "SUCCESS", "nothing to do"
    try:
        if event["RequestType"] == "Delete":
            ec2 = ec2 or boto3.client("ec2")
            left = drain(ec2, cluster_name, seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
            if left:
                status = "FAILED"
                reason = f"{len(left)} Karpenter instance(s) still terminating: {', '.join(left)}; retry the delete"
            else:
                reason = "no Karpenter instances left"
    except Exception as err:  # report, never hang the stack for an hour
        LOG.exception("teardown failed")
        status, reason = "FAILED", f"{type(err).__name__}: {err}"
    LOG.info("%s: %s", status, reason)
    respond(event, status, reason, physical_id)
