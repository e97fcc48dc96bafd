"""The API key of an EKS endpoint: where it lives, and how a client gets it.

Plain Python (boto3 clients are passed in). Every EKS endpoint's vLLM requires
``Authorization: Bearer <key>``; the key is the ``SecretString`` of a Secrets Manager
secret: the one the spec names (``api_key_secret_arn``), or the one the serving stack
creates for the endpoint. A created secret has a generated name (so a secret kept by
``cdk destroy`` never blocks the next deploy); the serving stack publishes its ARN as the
output :func:`api_key_output_key`. SageMaker endpoints have no API key: the SageMaker
runtime API authenticates every call with IAM (SigV4).

``endpoint invoke`` calls :func:`endpoint_api_key`::

    key = endpoint_api_key(session, project=config.project.name, spec=spec)
    client.chat_http(url, spec.name, prompt, api_key=key)
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from neuron_platform.compile.client import CompileCliError, stack_outputs
from neuron_platform.exit_codes import ExitCode
from neuron_platform.serving.spec import ServingSpec

# Where the init container writes the key (a memory-backed emptyDir) for the wrapper that
# exports it as VLLM_API_KEY before it execs vLLM.
API_KEY_DIR = "/run/neuron-platform/api-key"
API_KEY_FILE = f"{API_KEY_DIR}/key"


def serving_stack_name(project: str) -> str:
    """The serving stack's name (stacks/serving_stack.py uses this too)."""
    return f"{project}-serving"


def api_key_output_key(endpoint: str) -> str:
    """The serving stack output holding the ARN of the secret the platform created for
    ``endpoint``. Endpoint names are lowercase letters, digits and '-'; '-' becomes 'D' so
    that distinct names never share an output (CloudFormation keys are alphanumeric)."""
    return "ApiKeySecret" + endpoint.replace("-", "D")


def find_api_key_secret(cloudformation: Any, *, project: str, spec: ServingSpec) -> str:
    """The secret ARN holding ``spec``'s API key: the spec's own, or the serving stack's output."""
    if spec.backend != "eks":
        raise CompileCliError(
            f"endpoint {spec.name} is a SageMaker endpoint: it has no API key (IAM authenticates its callers)",
            ExitCode.INPUT,
        )
    if spec.api_key_secret_arn:
        return spec.api_key_secret_arn
    stack_name = serving_stack_name(project)
    outputs = stack_outputs(cloudformation, stack_name)
    key = api_key_output_key(spec.name)
    if key not in outputs:
        raise CompileCliError(f"stack {stack_name} has no output {key}: deploy endpoint {spec.name} first")
    return str(outputs[key])


def fetch_api_key(secretsmanager: Any, secret_id: str) -> str:
    """The key itself: the secret's ``SecretString``, surrounding whitespace removed."""
    try:
        value = secretsmanager.get_secret_value(SecretId=secret_id).get("SecretString")
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in ("ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure"):
            raise CompileCliError(f"cannot read the API key secret {secret_id}: {code}", ExitCode.INPUT) from None
        raise
    key = (value or "").strip()
    if not key:
        raise CompileCliError(f"the API key secret {secret_id} has no SecretString: store the key as plain text")
    return key


def endpoint_api_key(session: Any, *, project: str, spec: ServingSpec) -> str:
    """The API key of EKS endpoint ``spec`` (``session``: a boto3 Session in the project's region;
    a secret of another region is read in its own)."""
    secret = find_api_key_secret(session.client("cloudformation"), project=project, spec=spec)
    return fetch_api_key(session.client("secretsmanager", region_name=secret_region(secret)), secret)


def secret_region(secret_arn: str) -> str | None:
    """The region of a secret ARN (``arn:PARTITION:secretsmanager:REGION:...``), or None for a name."""
    parts = secret_arn.split(":")
    return parts[3] if len(parts) > 3 and parts[0] == "arn" and parts[3] else None
