"""The OpenAI-compatible smoke client against a local HTTP server and a stubbed SageMaker runtime."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from neuron_platform.__main__ import main
from tests.conftest import REPO
from tests.local_http import RecordingServer

PATH = REPO / "runtime_assets" / "serve" / "smoke_client.py"
spec = importlib.util.spec_from_file_location("smoke_client_under_test", PATH)
assert spec is not None
assert spec.loader is not None
client = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = client
spec.loader.exec_module(client)

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hello from Neuron."}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
}


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    """An OpenAI-compatible server that records requests and answers as told."""
    fake = RecordingServer(body=json.dumps(COMPLETION).encode())
    yield fake
    fake.close()


def test_chat_sends_an_openai_request_and_reads_the_answer(server: RecordingServer) -> None:
    answer = client.chat_http(server.url + "/", "llama3-8b", "Say hello", max_tokens=32)
    ((method, path, body),) = server.requests
    assert method == "POST"
    assert path == "/v1/chat/completions"
    assert body == {"model": "llama3-8b", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 32}
    assert answer.text == "Hello from Neuron."
    assert (answer.prompt_tokens, answer.completion_tokens) == (12, 5)
    assert answer.summary().startswith("-- 12 prompt + 5 completion tokens in ")


def test_the_api_key_goes_in_the_authorization_header(server: RecordingServer) -> None:
    client.chat_http(server.url, "llama3-8b", "hi", api_key="k3y")
    client.chat_http(server.url, "llama3-8b", "hi")
    assert server.headers[0]["Authorization"] == "Bearer k3y"
    assert "Authorization" not in server.headers[1]


def test_a_refused_key_says_so(server: RecordingServer) -> None:
    server.status = 401
    server.body = b'{"error": "Unauthorized"}'
    with pytest.raises(client.EndpointError) as err:
        client.chat_http(server.url, "m", "hi", api_key="wrong")
    assert err.value.code == 1
    assert str(err.value) == f'{server.url} answered HTTP 401: {{"error": "Unauthorized"}} (the API key was refused)'
    with pytest.raises(client.EndpointError, match=r"\(the API key was missing\)"):
        client.chat_http(server.url, "m", "hi")


@pytest.fixture
def redirecting() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A load balancer that redirects every request to the ``Location`` its path names."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(302 if "signin" in self.path else 301)
            location = {"/signin/v1/chat/completions": "https://idp.example.com/authorize?client_id=x"}.get(
                self.path, f"https://127.0.0.1:{self.server.server_port}/v1/chat/completions"
            )
            self.send_header("Location", location)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", seen
    httpd.shutdown()
    httpd.server_close()


def test_redirects_are_reported_not_followed(redirecting: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = redirecting
    # HTTP to an HTTPS-only endpoint: the load balancer's redirect names the URL to use.
    with pytest.raises(client.EndpointError) as err:
        client.chat_http(url, "m", "hi", api_key="k3y")
    assert err.value.code == 1
    assert str(err.value) == (
        f"{url} answered HTTP 301 (redirect to https://127.0.0.1:{url.rsplit(':', 1)[1]}/v1/chat/completions): "
        "use the https:// URL"
    )
    # A sign-in redirect: never followed (the key stays with the endpoint), and explained.
    with pytest.raises(client.EndpointError) as err:
        client.chat_http(url + "/signin", "m", "hi", api_key="k3y")
    assert "redirect to https://idp.example.com/authorize?client_id=x): the endpoint signs users in" in str(err.value)
    assert len(seen) == 2  # one request each: nothing followed


def test_fetch_api_key_reads_the_secret() -> None:
    secrets = boto3.client("secretsmanager", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(secrets) as stub:
        stub.add_response("get_secret_value", {"SecretString": "k3y\n"}, {"SecretId": "arn:s"})
        assert client.fetch_api_key(secrets, "arn:s") == "k3y"
        stub.add_client_error("get_secret_value", service_error_code="ResourceNotFoundException")
        with pytest.raises(client.EndpointError) as err:
            client.fetch_api_key(secrets, "arn:s")
        assert err.value.code == 2
        stub.add_response("get_secret_value", {"SecretBinary": b"x"}, {"SecretId": "arn:s"})
        with pytest.raises(client.EndpointError, match="has no SecretString: store the key as plain text"):
            client.fetch_api_key(secrets, "arn:s")


def test_main_reads_the_key_from_the_named_secret(
    server: RecordingServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    real = boto3.client
    stubs: list[Stubber] = []

    def stubbed(name: str, *args: Any, **kwargs: Any) -> Any:
        made = real(name, *args, **kwargs)
        stub = Stubber(made)
        stub.add_response("get_secret_value", {"SecretString": "k3y"}, {"SecretId": "serving/llama"})
        stub.activate()
        stubs.append(stub)
        return made

    monkeypatch.setattr(boto3, "client", stubbed)
    argv = ["--url", server.url, "--model", "m", "--api-key-secret", "serving/llama", "--region", "us-west-2", "hi"]
    assert client.main(argv) == 0
    assert server.headers[0]["Authorization"] == "Bearer k3y"
    assert capsys.readouterr().out.splitlines()[0] == "Hello from Neuron."


def test_server_error_is_exit_1_with_the_body(server: RecordingServer) -> None:
    server.status = 503
    server.body = b'{"error": "model is loading"}'
    with pytest.raises(client.EndpointError) as err:
        client.chat_http(server.url, "m", "hi")
    assert err.value.code == 1
    assert str(err.value) == f'{server.url} answered HTTP 503: {{"error": "model is loading"}}'


def test_malformed_answer_is_exit_1(server: RecordingServer) -> None:
    server.body = b'{"choices": []}'
    with pytest.raises(client.EndpointError) as err:
        client.chat_http(server.url, "m", "hi")
    assert err.value.code == 1
    assert "not an OpenAI chat completion" in str(err.value)


def test_unreachable_is_exit_3() -> None:
    probe = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_port
    probe.server_close()  # nothing listens there now
    with pytest.raises(client.EndpointError) as err:
        client.chat_http(f"http://127.0.0.1:{port}", "m", "hi", timeout=5)
    assert err.value.code == 3
    assert str(err.value).startswith(f"cannot reach http://127.0.0.1:{port}: ")


def test_only_http_urls() -> None:
    with pytest.raises(client.EndpointError, match="allowed: an http:// or https:// URL"):
        client.chat_http("file:///etc/passwd", "m", "hi")


def test_sagemaker_runtime_gets_the_same_request() -> None:
    runtime = boto3.client(
        "sagemaker-runtime", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(runtime) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": io.BytesIO(json.dumps(COMPLETION).encode()), "ContentType": "application/json"},
            {
                "EndpointName": "inf-small-llama3-8b-sm",
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body": json.dumps(client.request_body("llama3-8b-sm", "hi", 128)).encode(),
            },
        )
        answer = client.chat_sagemaker(runtime, "inf-small-llama3-8b-sm", "llama3-8b-sm", "hi")
    assert answer.text == "Hello from Neuron."


def test_sagemaker_model_error_is_exit_1() -> None:
    runtime = boto3.client(
        "sagemaker-runtime", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(runtime) as stub:
        stub.add_client_error(
            "invoke_endpoint", service_error_code="ModelError", service_message="boom", http_status_code=424
        )
        with pytest.raises(client.EndpointError) as err:
            client.chat_sagemaker(runtime, "e", "m", "hi")
    assert err.value.code == 1
    assert "ModelError" in str(err.value)


# --- python -m neuron_platform endpoint invoke ---------------------------------------------------


CONFIG = str(REPO / "config" / "examples" / "inference-small.yaml")


SERVING_SECRET = "arn:aws:secretsmanager:us-west-2:123456789012:secret:Eksllama38bApiKey-AbCdEf"


@pytest.fixture
def serving_stack(monkeypatch: pytest.MonkeyPatch) -> list[Stubber]:
    """Stubbed AWS: the serving stack's output naming llama3-8b's API key secret, and the secret."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    real = boto3.session.Session.client
    stubs: list[Stubber] = []

    def stubbed(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        made = real(self, name, *args, **kwargs)
        stub = Stubber(made)
        if name == "cloudformation":
            stack = {
                "StackName": "inf-small-serving",
                "CreationTime": "2026-01-01T00:00:00Z",
                "StackStatus": "CREATE_COMPLETE",
                "Outputs": [{"OutputKey": "ApiKeySecretllama3D8b", "OutputValue": SERVING_SECRET}],
            }
            stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "inf-small-serving"})
        elif name == "secretsmanager":
            stub.add_response("get_secret_value", {"SecretString": "k3y"}, {"SecretId": SERVING_SECRET})
        stub.activate()
        stubs.append(stub)
        return made

    monkeypatch.setattr(boto3.session.Session, "client", stubbed)
    return stubs


def test_invoke_an_eks_endpoint(
    server: RecordingServer, capsys: pytest.CaptureFixture[str], serving_stack: list[Stubber]
) -> None:
    assert main(["endpoint", "invoke", "llama3-8b", "Say hello", "--config", CONFIG, "--url", server.url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Hello from Neuron."
    assert out[1].startswith("-- 12 prompt + 5 completion tokens")
    assert server.bodies[0]["model"] == "llama3-8b"  # vLLM serves it under the endpoint name


def test_invoke_an_eks_endpoint_sends_its_api_key(server: RecordingServer, serving_stack: list[Stubber]) -> None:
    assert main(["endpoint", "invoke", "llama3-8b", "Say hello", "--config", CONFIG, "--url", server.url]) == 0
    assert server.headers[0]["Authorization"] == "Bearer k3y"
    for stub in serving_stack:
        stub.assert_no_pending_responses()


def test_invoke_a_sagemaker_endpoint(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    real = boto3.session.Session.client
    stubs: list[Stubber] = []

    def stubbed(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        made = real(self, name, *args, **kwargs)
        stub = Stubber(made)
        stub.add_response(
            "invoke_endpoint",
            {"Body": io.BytesIO(json.dumps(COMPLETION).encode()), "ContentType": "application/json"},
            {
                "EndpointName": "inf-small-llama3-8b-sm",
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body": ANY,
            },
        )
        stub.activate()
        stubs.append(stub)
        return made

    monkeypatch.setattr(boto3.session.Session, "client", stubbed)
    assert main(["endpoint", "invoke", "llama3-8b-sm", "hi", "--config", CONFIG]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "Hello from Neuron."
    stubs[0].assert_no_pending_responses()


def test_invoke_unknown_endpoint_names_the_configured_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["endpoint", "invoke", "nope", "hi", "--config", CONFIG]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"endpoint: {CONFIG}: no endpoint 'nope'; configured: llama3-8b, llama3-8b-sm"
    )


def test_invoke_without_a_load_balancer_suggests_port_forward(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no kubectl
    assert main(["endpoint", "invoke", "llama3-8b", "hi", "--config", CONFIG]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("endpoint: kubectl not found to look up the load balancer; pass --url")
    assert "kubectl port-forward -n serving svc/llama3-8b 8000:80" in err
