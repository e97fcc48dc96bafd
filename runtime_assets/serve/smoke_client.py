"""An OpenAI-compatible smoke test for a serving endpoint, on EKS or SageMaker.

Sends one chat completion and prints the answer with token counts and latency:

    python smoke_client.py --url https://llama.example.com --model llama3-8b \
        --api-key-secret arn:aws:secretsmanager:us-west-2:123456789012:secret:llama-AbCdEf "Hello"
    python smoke_client.py --sagemaker-endpoint neuron-llama3-8b-sm --region us-west-2 "Hello"

EKS endpoints require their API key (``Authorization: Bearer <key>``): the client reads it
from the endpoint's Secrets Manager secret (``--api-key-secret``). SageMaker endpoints need
none: the SageMaker runtime API signs every call with your IAM credentials (SigV4).
``python -m neuron_platform endpoint invoke NAME "prompt"`` finds the URL, the secret or the
endpoint name from the platform config and calls this module. Standard library only, plus
boto3 for Secrets Manager and SageMaker. Exit codes: 0 answered, 1 the endpoint answered
with an error, 2 a bad argument or an unreadable key, 3 the endpoint could not be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


class EndpointError(Exception):
    """One line and the exit code: 1 the endpoint answered with an error (or not a chat
    completion), 2 a bad argument, 3 the endpoint could not be reached (the platform CLI's
    exit-code table)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Answer:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    seconds: float

    def summary(self) -> str:
        if self.completion_tokens is None:
            return f"-- answered in {self.seconds:.2f} s"
        rate = self.completion_tokens / self.seconds if self.seconds > 0 else 0.0
        return (
            f"-- {self.prompt_tokens} prompt + {self.completion_tokens} completion tokens in {self.seconds:.2f} s "
            f"({rate:.1f} tokens/s)"
        )


def request_body(model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}


def parse_answer(payload: bytes, seconds: float) -> Answer:
    try:
        data = json.loads(payload)
        text = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise EndpointError(1, f"not an OpenAI chat completion ({err!r}): {payload[:200]!r}") from None
    usage = data.get("usage") or {}
    return Answer(str(text), usage.get("prompt_tokens"), usage.get("completion_tokens"), seconds)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are reported, never followed: a POST must not turn into a GET of a sign-in
    page, and the API key is never sent to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch_api_key(secretsmanager: Any, secret_id: str) -> str:
    """An EKS endpoint's API key: the ``SecretString`` of its secret (``secretsmanager``: a boto3 client)."""
    try:
        value = secretsmanager.get_secret_value(SecretId=secret_id).get("SecretString")
    except Exception as err:  # botocore ClientError (not found, access denied), connection errors
        code = getattr(err, "response", {}).get("Error", {}).get("Code")
        raise EndpointError(2 if code else 3, f"cannot read the API key secret {secret_id}: {err}") from None
    key = (value or "").strip()
    if not key:
        raise EndpointError(2, f"the API key secret {secret_id} has no SecretString: store the key as plain text")
    return key


def chat_http(
    url: str, model: str, prompt: str, *, max_tokens: int = 128, timeout: float = 300, api_key: str | None = None
) -> Answer:
    """POST /v1/chat/completions to an EKS endpoint (its ALB) or any OpenAI-compatible server,
    with ``Authorization: Bearer <api_key>`` when a key is given."""
    if not url.startswith(("http://", "https://")):
        raise EndpointError(2, f"got {url!r}; allowed: an http:// or https:// URL")
    body = json.dumps(request_body(model, prompt, max_tokens)).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url.rstrip("/") + "/v1/chat/completions", data=body, headers=headers, method="POST"
    )
    opener = urllib.request.build_opener(_NoRedirect)
    started = time.monotonic()
    try:
        with opener.open(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as err:
        if 300 <= err.code < 400:
            location = err.headers.get("Location", "")
            hint = (
                "use the https:// URL"
                if location.startswith("https://")
                and urllib.parse.urlsplit(location).netloc == urllib.parse.urlsplit(url).netloc
                else "the endpoint signs users in at the load balancer (authentication): call it from an "
                "allowed_cidrs range without sign-in, or through kubectl port-forward"
            )
            raise EndpointError(1, f"{url} answered HTTP {err.code} (redirect to {location or '?'}): {hint}") from None
        detail = err.read()[:300].decode(errors="replace").strip()
        if err.code == 401:
            detail = f"{detail or err.reason} (the API key was {'refused' if api_key else 'missing'})"
        raise EndpointError(1, f"{url} answered HTTP {err.code}: {detail or err.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise EndpointError(3, f"cannot reach {url}: {reason}") from None
    return parse_answer(payload, time.monotonic() - started)


def chat_sagemaker(runtime: Any, endpoint: str, model: str, prompt: str, *, max_tokens: int = 128) -> Answer:
    """The same request through the SageMaker runtime API (``runtime``: a boto3 sagemaker-runtime client)."""
    started = time.monotonic()
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint,
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps(request_body(model, prompt, max_tokens)).encode(),
        )
    except Exception as err:  # botocore ClientError (ModelError, ValidationError), connection errors
        code = getattr(err, "response", {}).get("Error", {}).get("Code")
        raise EndpointError(1 if code else 3, f"SageMaker endpoint {endpoint}: {err}") from None
    return parse_answer(response["Body"].read(), time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Send one chat completion to a serving endpoint")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="base URL of an OpenAI-compatible server (the EKS endpoint's load balancer)")
    target.add_argument("--sagemaker-endpoint", help="SageMaker endpoint name")
    parser.add_argument("--model", default="default", help="served model name (the endpoint name on EKS)")
    parser.add_argument(
        "--api-key-secret", default=None, help="EKS: the Secrets Manager secret (ARN or name) holding the API key"
    )
    parser.add_argument("--region", default=None)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("prompt")
    args = parser.parse_args(argv)
    try:
        if args.url:
            api_key = None
            if args.api_key_secret:
                import boto3

                api_key = fetch_api_key(boto3.client("secretsmanager", region_name=args.region), args.api_key_secret)
            answer = chat_http(args.url, args.model, args.prompt, max_tokens=args.max_tokens, api_key=api_key)
        else:
            import boto3

            runtime = boto3.client("sagemaker-runtime", region_name=args.region)
            answer = chat_sagemaker(
                runtime, args.sagemaker_endpoint, args.model, args.prompt, max_tokens=args.max_tokens
            )
    except EndpointError as err:
        print(f"invoke: {err}", file=sys.stderr)
        return err.code
    print(answer.text)
    print(answer.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
