"""runtime_assets/karpenter_teardown: moto for EC2, a local HTTP server for CloudFormation."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import REPO
from tests.local_http import RecordingServer


def _load() -> ModuleType:
    path = REPO / "runtime_assets" / "karpenter_teardown" / "handler.py"
    spec = importlib.util.spec_from_file_location("karpenter_teardown_handler", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


teardown = _load()
CLUSTER = "neuron"


@pytest.fixture
def ec2(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("ec2", region_name="us-east-1")


def launch(ec2: Any, count: int, tags: dict[str, str]) -> list[str]:
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    reservation = ec2.run_instances(
        ImageId=image,
        MinCount=count,
        MaxCount=count,
        InstanceType="m5.large",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )
    return [i["InstanceId"] for i in reservation["Instances"]]


KARPENTER_TAGS = {f"kubernetes.io/cluster/{CLUSTER}": "owned", "karpenter.sh/nodepool": "trn1-efa"}


@pytest.fixture
def responses() -> Iterator[RecordingServer]:
    """A local stand-in for CloudFormation's pre-signed response URL."""
    server = RecordingServer()
    yield server
    server.close()


def event(kind: str, url: str) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/neuron-cluster/x",
        "RequestId": "req-1",
        "LogicalResourceId": "Teardown",
        "ResourceProperties": {"ClusterName": CLUSTER},
    }


class Context:
    def __init__(self, millis: int) -> None:
        self.millis = millis

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def test_finds_only_this_clusters_karpenter_instances(ec2: Any) -> None:
    ours = launch(ec2, 2, KARPENTER_TAGS)
    launch(ec2, 1, {f"kubernetes.io/cluster/{CLUSTER}": "owned"})  # managed node group: not Karpenter's
    launch(ec2, 1, {"kubernetes.io/cluster/other": "owned", "karpenter.sh/nodepool": "x"})  # other cluster
    assert sorted(teardown.karpenter_instances(ec2, CLUSTER)) == sorted(ours)


def test_delete_terminates_and_reports_success(
    ec2: Any, responses: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(teardown, "POLL_S", 0)  # moto terminates at once; do not wait 15 s between polls
    ids = launch(ec2, 3, KARPENTER_TAGS)
    teardown.handler(event("Delete", responses.url), Context(600_000), ec2=ec2)
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
        for i in r["Instances"]
    }
    assert set(states.values()) == {"terminated"}
    (body,) = responses.bodies
    assert body["Status"] == "SUCCESS"
    assert body["Reason"] == "no Karpenter instances left"
    assert body["PhysicalResourceId"] == "karpenter-teardown-neuron"
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (
        "arn:aws:cloudformation:us-east-1:123456789012:stack/neuron-cluster/x",
        "req-1",
        "Teardown",
    )


def test_create_and_update_touch_nothing(ec2: Any, responses: RecordingServer) -> None:
    ids = launch(ec2, 1, KARPENTER_TAGS)
    for kind in ("Create", "Update"):
        teardown.handler(event(kind, responses.url), Context(600_000), ec2=ec2)
    assert [b["Status"] for b in responses.bodies] == ["SUCCESS", "SUCCESS"]
    assert teardown.karpenter_instances(ec2, CLUSTER) == {ids[0]: "running"}


class StuckEc2:
    """EC2 whose instances never finish terminating."""

    def __init__(self) -> None:
        self.terminated: list[list[str]] = []

    def get_paginator(self, _name: str) -> Any:
        outer = self

        class Paginator:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                state = "shutting-down" if outer.terminated else "running"
                return [{"Reservations": [{"Instances": [{"InstanceId": "i-0abc", "State": {"Name": state}}]}]}]

        return Paginator()

    def terminate_instances(self, InstanceIds: list[str]) -> None:
        self.terminated.append(InstanceIds)


def test_reports_failure_with_ids_when_time_runs_out(responses: RecordingServer) -> None:
    stuck = StuckEc2()
    teardown.handler(event("Delete", responses.url), Context(70_000), ec2=stuck)
    assert stuck.terminated == [["i-0abc"]]
    (body,) = responses.bodies
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "1 Karpenter instance(s) still terminating: i-0abc; retry the delete"


def test_drain_waits_for_shutting_down_instances_without_terminating_twice() -> None:
    stuck = StuckEc2()
    clock = iter([600.0, 600.0, 70.0])
    naps: list[float] = []
    left = teardown.drain(stuck, CLUSTER, seconds_left=lambda: next(clock), sleep=naps.append)
    assert left == ["i-0abc"]
    assert stuck.terminated == [["i-0abc"]]  # the second pass saw shutting-down and only waited
    assert naps == [teardown.POLL_S, teardown.POLL_S]


def test_api_errors_are_reported_not_raised(responses: RecordingServer) -> None:
    class Broken:
        def get_paginator(self, _name: str) -> Any:
            raise RuntimeError("AccessDenied")

    teardown.handler(event("Delete", responses.url), Context(600_000), ec2=Broken())
    (body,) = responses.bodies
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "RuntimeError: AccessDenied"
