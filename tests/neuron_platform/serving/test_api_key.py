"""Finding and reading an EKS endpoint's API key, as `endpoint invoke` does (stubbed AWS)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from neuron_platform.compile.client import CompileCliError
from neuron_platform.config import load_config
from neuron_platform.exit_codes import ExitCode
from neuron_platform.serving.api_key import (
    api_key_output_key,
    endpoint_api_key,
    fetch_api_key,
    find_api_key_secret,
    secret_region,
)
from tests.conftest import REPO

CONFIG = load_config(REPO / "config" / "examples" / "inference-small.yaml")
EKS = CONFIG.endpoint("llama3-8b")
SAGEMAKER = CONFIG.endpoint("llama3-8b-sm")
SECRET = "arn:aws:secretsmanager:us-west-2:123456789012:secret:Eksllama38bApiKey-AbCdEf"
CREDENTIALS = {"aws_access_key_id": "x", "aws_secret_access_key": "x"}


def client(name: str, region: str = "us-west-2") -> Any:
    return boto3.client(name, region_name=region, **CREDENTIALS)  # type: ignore[call-overload]


def stack(outputs: dict[str, str]) -> dict[str, Any]:
    return {
        "Stacks": [
            {
                "StackName": "inf-small-serving",
                "CreationTime": "2026-01-01T00:00:00Z",
                "StackStatus": "CREATE_COMPLETE",
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
            }
        ]
    }


def test_output_keys_are_distinct_for_distinct_names() -> None:
    assert api_key_output_key("llama3-8b") == "ApiKeySecretllama3D8b"
    assert api_key_output_key("llama3-8b") != api_key_output_key("llama38b")


def test_the_platform_secret_is_found_through_the_serving_stack_output() -> None:
    assert EKS is not None
    cloudformation = client("cloudformation")
    with Stubber(cloudformation) as stub:
        stub.add_response(
            "describe_stacks", stack({"ApiKeySecretllama3D8b": SECRET}), {"StackName": "inf-small-serving"}
        )
        assert find_api_key_secret(cloudformation, project="inf-small", spec=EKS) == SECRET


def test_a_named_secret_needs_no_stack() -> None:
    assert EKS is not None
    own = EKS.model_copy(update={"api_key_secret_arn": "arn:aws:secretsmanager:eu-west-1:1:secret:k-AbCdEf"})
    assert find_api_key_secret(object(), project="inf-small", spec=own) == own.api_key_secret_arn
    assert secret_region(str(own.api_key_secret_arn)) == "eu-west-1"
    assert secret_region("my/secret") is None


def test_missing_stack_or_output_is_one_line() -> None:
    assert EKS is not None
    cloudformation = client("cloudformation")
    with Stubber(cloudformation) as stub:
        stub.add_client_error("describe_stacks", service_error_code="ValidationError", http_status_code=400)
        with pytest.raises(CompileCliError) as err:
            find_api_key_secret(cloudformation, project="inf-small", spec=EKS)
    assert str(err.value) == (
        "stack inf-small-serving does not exist in us-west-2: deploy it, or pass the --config you deployed"
    )
    assert err.value.code == ExitCode.UNAVAILABLE
    with Stubber(cloudformation) as stub:
        stub.add_response("describe_stacks", stack({}))
        with pytest.raises(CompileCliError, match="has no output ApiKeySecretllama3D8b: deploy endpoint llama3-8b"):
            find_api_key_secret(cloudformation, project="inf-small", spec=EKS)


def test_sagemaker_endpoints_have_no_api_key() -> None:
    assert SAGEMAKER is not None
    with pytest.raises(CompileCliError, match="SageMaker endpoint: it has no API key") as err:
        find_api_key_secret(object(), project="inf-small", spec=SAGEMAKER)
    assert err.value.code == ExitCode.INPUT


def test_fetch_reads_the_secret_string() -> None:
    secrets = client("secretsmanager")
    with Stubber(secrets) as stub:
        stub.add_response("get_secret_value", {"SecretString": "k3y\n"}, {"SecretId": SECRET})
        assert fetch_api_key(secrets, SECRET) == "k3y"
        stub.add_client_error("get_secret_value", service_error_code="AccessDeniedException", http_status_code=400)
        with pytest.raises(CompileCliError) as err:
            fetch_api_key(secrets, SECRET)
    assert str(err.value) == f"cannot read the API key secret {SECRET}: AccessDeniedException"
    assert err.value.code == ExitCode.INPUT


def test_endpoint_api_key_end_to_end(monkeypatch: pytest.MonkeyPatch) -> None:
    assert EKS is not None
    made: dict[str, Any] = {}
    cloudformation, secrets = client("cloudformation"), client("secretsmanager")

    class Session:
        def client(self, name: str, region_name: str | None = None) -> Any:
            made[name] = region_name
            return {"cloudformation": cloudformation, "secretsmanager": secrets}[name]

    with Stubber(cloudformation) as cfn, Stubber(secrets) as sm:
        cfn.add_response("describe_stacks", stack({"ApiKeySecretllama3D8b": SECRET}))
        sm.add_response("get_secret_value", {"SecretString": "k3y"}, {"SecretId": SECRET})
        assert endpoint_api_key(Session(), project="inf-small", spec=EKS) == "k3y"
    assert made == {"cloudformation": None, "secretsmanager": "us-west-2"}
