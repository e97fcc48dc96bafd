"""The pipeline's cluster step against a local stand-in for the Kubernetes API."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from neuron_platform.config import load_config
from neuron_platform.k8s.compile import compile_job_template
from tests.conftest import REPO
from tests.local_http import RecordingServer
from tests.runtime_assets.compile.conftest import COMPILE, load

cluster_job = load(COMPILE / "lambdas" / "cluster_job.py", "compile_cluster_job")

CONFIG = load_config(REPO / "config" / "examples" / "inference-small.yaml")
PLAN = CONFIG.plan_endpoint(CONFIG.serving.endpoints[0])
REPOSITORY = "123456789012.dkr.ecr.us-west-2.amazonaws.com/inf-small-neuron"
PINNED = f"{REPOSITORY}@sha256:{'5' * 64}"
TEMPLATES = {
    "llama3-8b": {
        "tag": PLAN.compile_image_tag,
        "image": PINNED,
        "job": compile_job_template(PLAN, timeout_seconds=14400),
    },
    "unpinned": {"tag": PLAN.compile_image_tag, "image": None, "job": compile_job_template(PLAN, timeout_seconds=60)},
}
ENV = {"NAMESPACE": "neuron-compile", "IMAGE_REPOSITORY": REPOSITORY, "CACHE_URL": "s3://artifacts/neuron-cache/"}
EVENT = {
    "endpoint": "llama3-8b",
    "spec": {"image": PINNED},
    "specJson": '{"target": "inf2"}',
    "cacheKey": "llama-key",
    "outputUrl": "s3://artifacts/staging/llama-key/run-1/",
    "executionId": "arn:aws:states:us-west-2:123456789012:execution:compile:run-1",
}
JOBS = "/apis/batch/v1/namespaces/neuron-compile/jobs"


@pytest.fixture
def api() -> Iterator[RecordingServer]:
    server = RecordingServer(status=201, body=b"{}")
    yield server
    server.close()


def _kube(server: RecordingServer) -> Any:
    return cluster_job.Kubernetes(server.url, None, lambda: "k8s-aws-v1.token")


def test_start_creates_the_endpoints_job_with_this_runs_values(api: RecordingServer) -> None:
    out = cluster_job.start(EVENT, ENV, _kube(api), TEMPLATES)
    name = cluster_job.job_name(EVENT["executionId"])
    assert out == {"jobName": name, "namespace": "neuron-compile"}
    ((method, path, job),) = api.requests
    assert (method, path) == ("POST", JOBS)
    assert api.headers[0]["Authorization"] == "Bearer k8s-aws-v1.token"
    assert job["metadata"]["name"] == name
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == PINNED  # the endpoint's pinned image, by digest
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SPEC_JSON"] == EVENT["specJson"]
    assert env["OUTPUT_URL"] == EVENT["outputUrl"]  # the run's staging prefix, never artifacts/
    assert env["NEURON_COMPILE_CACHE_URL"] == ENV["CACHE_URL"]
    # Fixed at synthesis from the endpoint's plan, not by the caller.
    assert (env["ENGINE"], env["EXPECTED_NEURONX_CC"]) == ("vllm-nxdi", PLAN.compiler)
    assert "__" not in json.dumps(job)  # every placeholder filled


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"endpoint": "other"}, "endpoint: got 'other'; this pipeline compiles on the cluster for"),
        ({"spec": {"image": "attacker/anything:1"}}, "spec.image: got 'attacker/anything:1'; endpoint llama3-8b"),
        # The right repository and tag used to be enough; now only the pinned digest is.
        ({"spec": {"image": f"{REPOSITORY}:{PLAN.compile_image_tag}"}}, "compiles in its pinned image"),
        ({"spec": {"image": f"{REPOSITORY}@sha256:{'6' * 64}"}}, "compiles in its pinned image"),
        ({"endpoint": "unpinned"}, "endpoint unpinned has no pinned compile image"),
    ],
)
def test_start_refuses_what_the_templates_do_not_allow(
    api: RecordingServer, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(cluster_job.ClusterJobError, match=message):
        cluster_job.start(EVENT | change, ENV, _kube(api), TEMPLATES)
    assert api.requests == []


def _job(**status: Any) -> bytes:
    return json.dumps({"status": status}).encode()


def test_status_reports_running_and_succeeded(api: RecordingServer) -> None:
    api.routes[f"{JOBS}/compile-x"] = (200, _job(active=1))
    assert cluster_job.status({"jobName": "compile-x"}, ENV, _kube(api))["state"] == "RUNNING"
    api.routes[f"{JOBS}/compile-x"] = (200, _job(succeeded=1))
    assert cluster_job.status({"jobName": "compile-x"}, ENV, _kube(api))["state"] == "SUCCEEDED"


def test_a_failed_job_reports_its_reason_and_last_log_lines(api: RecordingServer) -> None:
    condition = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached"}
    selector = urllib.parse.quote("job-name=compile-x", safe="")
    api.routes[f"{JOBS}/compile-x"] = (200, _job(failed=1, conditions=[condition]))
    api.routes[f"/api/v1/namespaces/neuron-compile/pods?labelSelector={selector}"] = (
        200,
        json.dumps({"items": [{"metadata": {"name": "compile-x-abcde"}}]}).encode(),
    )
    api.routes["/api/v1/namespaces/neuron-compile/pods/compile-x-abcde/log?tailLines=20"] = (
        200,
        b"compile failed: vllm LLM() exited 1: out of device memory",
    )
    out = cluster_job.status({"jobName": "compile-x"}, ENV, _kube(api))
    assert out["state"] == "FAILED"
    assert out["reason"] == "BackoffLimitExceeded: Job has reached"
    assert out["logs"] == "compile failed: vllm LLM() exited 1: out of device memory"


def test_an_api_error_is_one_line(api: RecordingServer) -> None:
    api.routes[f"{JOBS}/compile-x"] = (403, b'{"message": "forbidden"}')
    with pytest.raises(cluster_job.ClusterJobError, match=r"GET .*compile-x: HTTP 403: .*forbidden"):
        cluster_job.status({"jobName": "compile-x"}, ENV, _kube(api))


def test_the_token_is_a_presigned_caller_identity_for_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sts = boto3.client("sts", region_name="us-west-2")
    token = cluster_job.eks_token(sts, "inf-small")
    assert token.startswith("k8s-aws-v1.")
    body = token.removeprefix("k8s-aws-v1.")
    url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    assert query["Action"] == ["GetCallerIdentity"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0]
    assert query["X-Amz-Expires"] == ["60"]


def test_job_names_are_dns_labels_per_execution() -> None:
    a, b = cluster_job.job_name("exec-a"), cluster_job.job_name("exec-b")
    assert a != b
    assert len(a) <= 63
    assert a.replace("-", "").isalnum()
    assert a == a.lower()
