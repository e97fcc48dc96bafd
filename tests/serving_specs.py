"""Serving-spec pieces the tests build beyond the shipped configs: a trn2 EKS endpoint and
the TLS and sign-in settings, so each test states only what it changes."""

from __future__ import annotations

from typing import Any

from neuron_platform.serving.spec import ServingSpec


def certificate_arn(region: str) -> str:
    return f"arn:aws:acm:{region}:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"


def cognito(region: str) -> dict[str, str]:
    return {
        "type": "cognito",
        "user_pool_arn": f"arn:aws:cognito-idp:{region}:123456789012:userpool/{region}_AbCdEf123",
        "user_pool_client_id": "4f1c0dmyclientid",
        "user_pool_domain": "my-team",
    }


def oidc(client_secret_name: str) -> dict[str, str]:
    return {
        "type": "oidc",
        "issuer": "https://idp.example.com",
        "authorization_endpoint": "https://idp.example.com/authorize",
        "token_endpoint": "https://idp.example.com/token",
        "user_info_endpoint": "https://idp.example.com/userinfo",
        "client_secret_name": client_secret_name,
    }


def trn2_endpoint(**changes: Any) -> dict[str, Any]:
    """Qwen3-8B on a trn2 pool, public over HTTPS to one range, with ``changes`` applied."""
    base: dict[str, Any] = {
        "name": "qwen-trn2",
        "backend": "eks",
        "pool": "trn2",
        "model": {"s3_uri": "s3://my-models/qwen3-8b/"},
        "architecture": {
            "parameters_billion": 8.2,
            "layers": 36,
            "attention_heads": 32,
            "kv_heads": 8,
            "head_dim": 128,
        },
        "target": "trn2",
        "batch_size": 8,
        "sequence_length": 8192,
        "tensor_parallel_size": 16,
        "replicas": {"min": 2, "max": 8, "target_in_flight": 6},
        "exposure": "public",
        "certificate_arn": certificate_arn("us-east-2"),
        "allowed_cidrs": ["203.0.113.0/24"],
    }
    return base | changes


def trn2_spec(**changes: Any) -> ServingSpec:
    return ServingSpec.model_validate(trn2_endpoint(**changes))
