"""The compile pipeline's cluster step: run a compile as a Kubernetes Job on the endpoint's pool.

vLLM on Neuron compiles by loading the model onto Neuron devices, so the pipeline runs
those compiles on the cluster, on a node of the endpoint's own pool. Two actions, called by
the state machine:

- ``start``: fill the endpoint's Job template (``job_templates.json``, generated at synthesis
  from the endpoint's plan: node, devices, toolchain and the pinned compile image) with this
  run's job name, spec, cache key and staging location, and create the Job. The run's spec
  must name the endpoint's pinned image (``<repository>@sha256:...``): the cache key the
  pipeline computed from it is then the key serving computes, and the Job runs exactly it.
- ``status``: ``RUNNING``, ``SUCCEEDED``, or ``FAILED`` with the reason and the pod's last
  log lines.

The function runs in the VPC with the cluster security group (the API endpoint may be
private) and authenticates the way ``aws eks get-token`` does: a presigned STS
GetCallerIdentity URL. An EKS access entry scoped to the compile namespace authorizes it.
Environment: ``CLUSTER_NAME``, ``CLUSTER_ENDPOINT``, ``CLUSTER_CA`` (base64 PEM),
``NAMESPACE``, ``IMAGE_REPOSITORY`` (the compile images' ECR repository URI) and
``CACHE_URL``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

TEMPLATES_FILE = Path(__file__).resolve().parent / "job_templates.json"
TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - the token format, not a secret
LOG_LINES = 20
_DIGEST_REFERENCE = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


class ClusterJobError(Exception):
    """The Job could not be created or read (the state machine records the failure)."""


def eks_token(sts: Any, cluster_name: str) -> str:
    """A bearer token for the cluster: a presigned GetCallerIdentity URL naming the cluster."""

    def add_cluster_header(request: Any, **_kwargs: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster_name

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def fill(template: Any, values: Mapping[str, str]) -> Any:
    """Replace every ``__PLACEHOLDER__`` string in the template (whole values only)."""
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    if isinstance(template, str) and template in values:
        return values[template]
    return template


def job_name(execution_id: str) -> str:
    """A DNS-1123 name per execution (a retried run must not collide with a finished Job)."""
    import hashlib

    return "compile-" + hashlib.sha256(execution_id.encode()).hexdigest()[:20]


class Kubernetes:
    """The few API calls this step needs, over HTTPS with the cluster's CA."""

    def __init__(self, endpoint: str, ca_pem: str | None, token: Callable[[], str]) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
        self.token = token

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the cluster's https endpoint from the stack
            self.endpoint + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token()}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=20) as response:  # noqa: S310
                payload = response.read().decode()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:500]
            raise ClusterJobError(f"{method} {path}: HTTP {err.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError) as err:
            raise ClusterJobError(f"{method} {path}: cannot reach the cluster API: {err}") from None
        return json.loads(payload) if payload.startswith(("{", "[")) else payload


def start(event: Mapping[str, Any], env: Mapping[str, str], kube: Kubernetes, templates: Mapping[str, Any]) -> dict:
    endpoint = event.get("endpoint")
    if endpoint not in templates:
        raise ClusterJobError(
            f"endpoint: got {endpoint!r}; this pipeline compiles on the cluster for {sorted(templates)}"
        )
    pinned = templates[endpoint].get("image")
    if not pinned:
        raise ClusterJobError(
            f"endpoint {endpoint} has no pinned compile image in the deployed compile stack: build it (make "
            "compile-image), set the endpoint's compile_image and deploy the compile stack"
        )
    image = str(event["spec"]["image"])
    if image != pinned or not _DIGEST_REFERENCE.match(image) or not image.startswith(env["IMAGE_REPOSITORY"] + "@"):
        raise ClusterJobError(
            f"spec.image: got {image!r}; endpoint {endpoint} compiles in its pinned image {pinned} "
            "(deploy the compile stack after changing compile_image)"
        )
    name = job_name(str(event["executionId"]))
    values = {
        "__JOB_NAME__": name,
        "__IMAGE__": pinned,
        "__SPEC_JSON__": str(event["specJson"]),
        "__CACHE_KEY__": str(event["cacheKey"]),
        "__OUTPUT_URL__": str(event["outputUrl"]),
        "__CACHE_URL__": env["CACHE_URL"],
    }
    job = fill(templates[endpoint]["job"], values)
    namespace = env["NAMESPACE"]
    kube.request("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", job)
    return {"jobName": name, "namespace": namespace}


def status(event: Mapping[str, Any], env: Mapping[str, str], kube: Kubernetes) -> dict:
    namespace, name = env["NAMESPACE"], str(event["jobName"])
    job = kube.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
    job_status = job.get("status") or {}
    if job_status.get("succeeded"):
        return {"state": "SUCCEEDED", "jobName": name}
    failed = next(
        (c for c in job_status.get("conditions") or [] if c.get("type") == "Failed" and c.get("status") == "True"),
        None,
    )
    if failed is None:
        return {"state": "RUNNING", "jobName": name}
    reason = f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".strip(": ")
    return {"state": "FAILED", "jobName": name, "reason": reason, "logs": last_log_lines(kube, namespace, name)}


def last_log_lines(kube: Kubernetes, namespace: str, name: str) -> str:
    try:
        pods = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector=job-name%3D{name}")
        items = pods.get("items") or []
        if not items:
            return "no pod was created (check the pool's capacity and the node selector)"
        pod = items[-1]["metadata"]["name"]
        text = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log?tailLines={LOG_LINES}")
        return str(text)[-2000:]
    except ClusterJobError as err:
        return f"logs unavailable: {err}"


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    import boto3

    env = os.environ
    sts = boto3.client("sts", region_name=env.get("AWS_REGION"))
    ca = base64.b64decode(env["CLUSTER_CA"]).decode()
    kube = Kubernetes(env["CLUSTER_ENDPOINT"], ca, lambda: eks_token(sts, env["CLUSTER_NAME"]))
    if event.get("action") == "start":
        return start(event, env, kube, json.loads(TEMPLATES_FILE.read_text()))
    if event.get("action") == "status":
        result = status(event, env, kube)
        if result["state"] == "FAILED":
            # Raised, so the state machine's catch marks the registry entry failed and notifies.
            raise ClusterJobError(f"compile job {result['jobName']} failed: {result['reason']}\n{result['logs']}")
        return result
    raise ClusterJobError(f"action: got {event.get('action')!r}; allowed: start, status")
