"""An OpenAI-compatible smoke test for a serving endpoint, on EKS or SageMaker.

Sends one chat completion and prints the answer with token counts and latency:

    python smoke_client.py --url http://internal-k8s-serving-....elb.amazonaws.com --model llama3-8b "Hello"
    python smoke_client.py --sagemaker-endpoint neuron-llama3-8b-sm --region us-west-2 "Hello"

``python -m neuron_platform endpoint invoke NAME "prompt"`` finds the URL or endpoint name
from the platform config and calls this module. Standard library only, plus boto3 for
SageMaker (SigV4 through the SageMaker runtime API). Exit codes: 0 answered, 1 the
endpoint answered with an error, 2 unreachable or a malformed answer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
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


def chat_http(url: str, model: str, prompt: str, *, max_tokens: int = 128, timeout: float = 300) -> Answer:
    """POST /v1/chat/completions to an EKS endpoint (its ALB) or any OpenAI-compatible server."""
    if not url.startswith(("http://", "https://")):
        raise EndpointError(2, f"got {url!r}; allowed: an http:// or https:// URL")
    body = json.dumps(request_body(model, prompt, max_tokens)).encode()
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url.rstrip("/") + "/v1/chat/completions",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            payload = response.read()
    except urllib.error.HTTPError as err:
        detail = err.read()[:300].decode(errors="replace").strip()
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
    parser.add_argument("--region", default=None)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("prompt")
    args = parser.parse_args(argv)
    try:
        if args.url:
            answer = chat_http(args.url, args.model, args.prompt, max_tokens=args.max_tokens)
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
