"""The compile CLI's AWS side: find the pipeline, start runs, follow them, read the registry.

``python -m neuron_platform compile submit|status|list|show`` (see ``__main__``). AWS
clients are passed in, so tests run against moto and botocore stubs.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from neuron_platform import facts
from neuron_platform.compile import spec_rules
from neuron_platform.compile.spec import CompileSpec, estimate_memory
from neuron_platform.exit_codes import ExitCode

# CloudFormation output names of the compile stack (stacks/compile_stack.py writes them).
OUTPUT_STATE_MACHINE = "StateMachineArn"
OUTPUT_REGISTRY = "RegistryTableName"
OUTPUT_BUCKET = "ArtifactsBucketName"
OUTPUT_REPOSITORY = "RepositoryUri"
OUTPUT_MAX_MEMORY = "MaxCompileMemoryGiB"
DEFAULT_MEMORY_GIB = 64
CONTAINER_MEMORY_FRACTION = 0.9
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def compile_stack_name(project: str) -> str:
    return f"{project}-compile"


def cluster_compile_function_name(project: str) -> str:
    """The fixed name of the function that runs a project's on-pool compiles (the serving stack
    creates it; the compile stack's pipeline calls it by this name)."""
    return f"{project}-compile-on-cluster"


class CompileCliError(Exception):
    """A problem the user can act on, printed as one line, and its exit code (see
    :mod:`neuron_platform.exit_codes`): by default AWS could not give an answer."""

    def __init__(self, message: str, code: ExitCode = ExitCode.UNAVAILABLE) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Pipeline:
    state_machine_arn: str
    registry_table: str
    max_memory_gib: int


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """A deployed stack's outputs; a stack that does not exist is the user's to fix (one line)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as err:
        # Credential problems are not caught here: the CLI reports them as input errors.
        if err.response.get("Error", {}).get("Code") == "ValidationError":
            raise CompileCliError(
                f"stack {stack_name} does not exist in {cloudformation.meta.region_name}: deploy it, or pass the "
                "--config you deployed"
            ) from None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def find_pipeline(cloudformation: Any, stack_name: str) -> Pipeline:
    outputs = stack_outputs(cloudformation, stack_name)
    missing = [k for k in (OUTPUT_STATE_MACHINE, OUTPUT_REGISTRY, OUTPUT_MAX_MEMORY) if k not in outputs]
    if missing:
        raise CompileCliError(f"stack {stack_name} has no output {', '.join(missing)}; is compile.enabled deployed?")
    return Pipeline(outputs[OUTPUT_STATE_MACHINE], outputs[OUTPUT_REGISTRY], int(outputs[OUTPUT_MAX_MEMORY]))


def check_cluster_compile(lambda_client: Any, project: str, *, serving_stack: str) -> None:
    """An on-pool compile needs the serving stack's function: say so before starting a run
    that would fail at its first cluster step."""
    name = cluster_compile_function_name(project)
    try:
        lambda_client.get_function(FunctionName=name)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise CompileCliError(
                f"the on-pool compile function {name} does not exist in {lambda_client.meta.region_name}: "
                f"deploy the serving stack ({serving_stack}) first, then submit again",
                ExitCode.INPUT,
            ) from None
        raise


def check_image_home(image: str, *, project: str, region: str, account: str) -> None:
    """The compile image must be the project's repository in the caller's account and the
    project's region: the only images the deployed pipeline accepts."""
    problems = spec_rules.compile_image_problems(image, repository_name=f"{project}-neuron", region=region)
    if not problems and spec_rules.image_parts(image)["account"] != account:
        problems = [
            f"got {image!r}; these credentials are account {account}'s, whose pipeline compiles only images of its "
            "own repository"
        ]
    if problems:
        raise CompileCliError(f"image: {problems[0]}", ExitCode.INPUT)


def image_tags(ecr: Any, image: str) -> list[str]:
    """The tags of ``image`` (``<repository uri>@sha256:...``) in its ECR repository."""
    parts = spec_rules.image_parts(image)
    try:
        details = ecr.describe_images(
            registryId=parts["account"],
            repositoryName=parts["name"],
            imageIds=[{"imageDigest": f"sha256:{parts['digest']}"}],
        )["imageDetails"]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("ImageNotFoundException", "RepositoryNotFoundException"):
            raise CompileCliError(
                f"image: {image} is not in {parts['repository']}: build and push it with make compile-image, then "
                "use the reference it prints",
                ExitCode.INPUT,
            ) from None
        raise
    return sorted({tag for detail in details for tag in detail.get("imageTags") or []})


def size_job(spec: CompileSpec, compile_machines: list[str], max_memory_gib: int) -> dict[str, int]:
    """Memory and vCPUs for the job: the estimate on the cheapest machine that holds it."""
    arch = spec.resolved_architecture()
    memory = estimate_memory(spec, arch).compile_host_gib if arch else DEFAULT_MEMORY_GIB
    if memory > max_memory_gib:
        raise CompileCliError(
            f"the compile needs about {memory} GiB; the pipeline's machines give a job at most {max_memory_gib} GiB",
            ExitCode.INPUT,
        )
    machines = sorted(
        (facts.compile_machine(m) for m in compile_machines),
        key=lambda m: (m.on_demand_usd_per_hour, m.host_memory_gib),
    )
    machine = next((m for m in machines if m.host_memory_gib * CONTAINER_MEMORY_FRACTION >= memory), machines[-1])
    return {"memory_gib": memory, "vcpus": machine.vcpu}


def execution_name(spec: CompileSpec, now: float) -> str:
    digest = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:16]
    return f"compile-{digest}-{int(now)}"


def start(
    sfn: Any,
    pipeline: Pipeline,
    spec: CompileSpec,
    resources: dict[str, int],
    *,
    now: float,
    neuron: dict[str, str],
    endpoint: str | None = None,
) -> str:
    """Start a run. ``neuron``: the engine and the compiler/runtime the spec's SDK ships (from
    the Neuron data); ``endpoint``: the endpoint whose pool compiles it (vLLM engines)."""
    payload: dict[str, Any] = {
        "spec": spec.model_dump(mode="json", exclude_none=True),
        "resources": resources,
        "neuron": dict(neuron),
    }
    if endpoint is not None:
        payload["endpoint"] = endpoint
    payload["spec"].pop("architecture", None)
    response = sfn.start_execution(
        stateMachineArn=pipeline.state_machine_arn, name=execution_name(spec, now), input=json.dumps(payload)
    )
    return str(response["executionArn"])


def current_step(sfn: Any, execution_arn: str) -> str | None:
    events = sfn.get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=25)["events"]
    for event in events:
        details = event.get("stateEnteredEventDetails")
        if details:
            return str(details["name"])
    return None


def follow(
    sfn: Any,
    execution_arn: str,
    *,
    poll_seconds: float = 15,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Print each step as the run enters it; return the final describe_execution."""
    last = None
    while True:
        execution = sfn.describe_execution(executionArn=execution_arn)
        step = current_step(sfn, execution_arn)
        if step and step != last:
            say(f"  {step}")
            last = step
        if execution["status"] in TERMINAL:
            return dict(execution)
        sleep(poll_seconds)


def describe_outcome(execution: dict[str, Any]) -> tuple[int, list[str]]:
    """Exit code and lines for a finished run."""
    status = execution["status"]
    if status == "SUCCEEDED":
        output = json.loads(execution.get("output") or "{}")
        verb = "cache hit" if output.get("cacheHit") else "compiled"
        lines = [f"{verb}: {output.get('cacheKey')}", f"artifacts: {output.get('artifactsUrl')}"]
        if not output.get("cacheHit"):
            lines.append(f"files: {len(output.get('files') or [])}")
        return 0, lines
    return 1, [f"{status}: {execution.get('error', 'error')}: {execution.get('cause', '')}".rstrip(": ")]


def registry_items(dynamodb: Any, table: str) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = dynamodb.scan(**kwargs)
        yield from (_plain(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def registry_item(dynamodb: Any, table: str, cache_key: str) -> dict[str, Any]:
    item = dynamodb.get_item(TableName=table, Key={"cache_key": {"S": cache_key}}, ConsistentRead=True).get("Item")
    if not item:
        raise CompileCliError(
            f"no registry entry {cache_key!r}; 'compile list' shows the registered keys", ExitCode.INPUT
        )
    plain = _plain(item)
    for field in ("spec_json", "files_json"):
        if field in plain:
            plain[field.removesuffix("_json")] = json.loads(plain.pop(field))
    return plain


def _plain(item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in item.items():
        if "S" in value:
            out[name] = value["S"]
        elif "N" in value:
            number = value["N"]
            out[name] = int(number) if number.lstrip("-").isdigit() else float(number)
    return out


def table_lines(items: list[dict[str, Any]]) -> list[str]:
    rows = [("CACHE KEY", "STATUS", "MODEL", "SDK", "FINISHED")]
    rows += [
        (
            i["cache_key"],
            i.get("status", ""),
            i.get("model_name", ""),
            i.get("sdk_version", ""),
            i.get("finished_at", ""),
        )
        for i in sorted(items, key=lambda i: i.get("started_at", ""), reverse=True)
    ]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
