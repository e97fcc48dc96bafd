"""Who may call an endpoint: the spec's exposure, TLS, sign-in, ranges and API key rules,
each refused with one line naming the field, the value and what is allowed."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from neuron_platform.config import ConfigError, parse_config
from neuron_platform.serving.spec import ServingSpec
from neuron_platform.validation import read_yaml
from tests.conftest import REPO
from tests.serving_specs import certificate_arn, cognito, oidc

EXAMPLE: dict[str, Any] = yaml.safe_load((REPO / "config" / "examples" / "inference-small.yaml").read_text())
CERT = certificate_arn("us-west-2")
SECRET = "arn:aws:secretsmanager:us-west-2:123456789012:secret:serving/llama-AbCdEf"
COGNITO = cognito("us-west-2")
OIDC = oidc("llama-oidc")


def config_with(index: int = 0, **changes: Any) -> dict[str, Any]:
    """The inference example with endpoint ``index`` changed (``None`` removes a key)."""
    data = copy.deepcopy(EXAMPLE)
    endpoint = data["serving"]["endpoints"][index]
    for key, value in changes.items():
        if value is None:
            endpoint.pop(key, None)
        else:
            endpoint[key] = value
    return data


def problems(data: dict[str, Any]) -> list[str]:
    try:
        parse_config(data)
    except ConfigError as err:
        return err.lines
    return []


GOOD: list[tuple[str, dict[str, Any]]] = [
    ("internal-default", {}),
    ("internal-with-certificate", {"certificate_arn": CERT}),
    ("internal-with-ranges", {"allowed_cidrs": ["10.8.0.0/16"]}),
    ("public-with-ranges", {"exposure": "public", "certificate_arn": CERT, "allowed_cidrs": ["203.0.113.0/24"]}),
    ("public-with-cognito", {"exposure": "public", "certificate_arn": CERT, "authentication": COGNITO}),
    (
        "public-with-oidc-and-ranges",
        {"exposure": "public", "certificate_arn": CERT, "authentication": OIDC, "allowed_cidrs": ["203.0.113.0/24"]},
    ),
    ("own-api-key-secret", {"api_key_secret_arn": SECRET}),
]


@pytest.mark.parametrize(("name", "changes"), GOOD, ids=[g[0] for g in GOOD])
def test_accepted(name: str, changes: dict[str, Any]) -> None:
    assert problems(config_with(**changes)) == [], name


BAD: list[tuple[str, int, dict[str, Any], str]] = [
    (
        "public-without-certificate",
        0,
        {"exposure": "public", "allowed_cidrs": ["203.0.113.0/24"]},
        "serving.endpoints[0]: certificate_arn: required with exposure public (a public endpoint serves HTTPS only); "
        "allowed: an ACM certificate ARN in the project's region",
    ),
    (
        "public-open-to-all-without-sign-in",
        0,
        {"exposure": "public", "certificate_arn": CERT},
        "serving.endpoints[0]: exposure: got 'public' with neither authentication nor allowed_cidrs; allowed: public "
        "with authentication (cognito or oidc), allowed_cidrs (the ranges your clients call from), or both; or "
        "exposure internal",
    ),
    (
        "sign-in-without-https",
        0,
        {"authentication": COGNITO},
        "serving.endpoints[0]: authentication: got type 'cognito' without certificate_arn; the load balancer signs "
        "users in on HTTPS only: set certificate_arn",
    ),
    (
        "everyone-as-a-range",
        0,
        {"exposure": "public", "certificate_arn": CERT, "allowed_cidrs": ["0.0.0.0/0"]},
        "serving.endpoints[0].allowed_cidrs: got '0.0.0.0/0'; allowed: the ranges your clients call from (to admit "
        "everyone, leave allowed_cidrs out and set authentication)",
    ),
    (
        "range-with-host-bits",
        0,
        {"allowed_cidrs": ["203.0.113.7/24"]},
        "serving.endpoints[0].allowed_cidrs: got '203.0.113.7/24'; allowed: an IPv4 CIDR block such as "
        "203.0.113.0/24 (203.0.113.7/24 has host bits set)",
    ),
    (
        "no-ranges",
        0,
        {"allowed_cidrs": []},
        "serving.endpoints[0].allowed_cidrs: got []; allowed: at least one IPv4 range, or leave the key out",
    ),
    (
        "too-many-ranges",
        0,
        {"allowed_cidrs": [f"10.{i}.0.0/16" for i in range(26)]},
        "serving.endpoints[0].allowed_cidrs: got 26 ranges; allowed: at most 25 (each is a rule per listener port on "
        "the load balancer's security group)",
    ),
    (
        "oidc-missing-endpoint",
        0,
        {"certificate_arn": CERT, "authentication": {k: v for k, v in OIDC.items() if k != "token_endpoint"}},
        "serving.endpoints[0].authentication: token_endpoint: required with type oidc",
    ),
    (
        "cognito-with-oidc-field",
        0,
        {"certificate_arn": CERT, "authentication": COGNITO | {"issuer": "https://idp.example.com"}},
        "serving.endpoints[0].authentication: issuer: only applies to type oidc; type is cognito",
    ),
    (
        "oidc-over-http",
        0,
        {"certificate_arn": CERT, "authentication": OIDC | {"token_endpoint": "http://idp.example.com/token"}},
        "serving.endpoints[0].authentication.token_endpoint: got 'http://idp.example.com/token'; allowed: an "
        "https:// URL",
    ),
    (
        "unknown-sign-in",
        0,
        {"certificate_arn": CERT, "authentication": {"type": "saml"}},
        "serving.endpoints[0].authentication.type: got 'saml'; allowed: 'cognito' or 'oidc'",
    ),
    (
        "partial-secret-arn",
        0,
        {"api_key_secret_arn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:serving/llama"},
        "serving.endpoints[0].api_key_secret_arn: got 'arn:aws:secretsmanager:us-west-2:123456789012:secret:"
        "serving/llama'; allowed: the full ARN of a Secrets Manager secret, with the six-character suffix "
        "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf)",
    ),
    (
        "sagemaker-api-key",
        1,
        {"api_key_secret_arn": SECRET},
        f"serving.endpoints[1]: api_key_secret_arn: got '{SECRET}'; only applies to backend eks (SageMaker "
        "endpoints are called through the SageMaker runtime API, authenticated by IAM (SigV4))",
    ),
    (
        "sagemaker-public",
        1,
        {"exposure": "public"},
        "serving.endpoints[1]: exposure: got 'public'; only applies to backend eks (SageMaker endpoints are called "
        "through the SageMaker runtime API, authenticated by IAM (SigV4))",
    ),
    (
        "sagemaker-sign-in",
        1,
        {"authentication": COGNITO},
        "serving.endpoints[1]: authentication: got 'cognito'; only applies to backend eks (SageMaker endpoints are "
        "called through the SageMaker runtime API, authenticated by IAM (SigV4))",
    ),
]


@pytest.mark.parametrize(("name", "index", "changes", "line"), BAD, ids=[b[0] for b in BAD])
def test_refused_with_one_line(name: str, index: int, changes: dict[str, Any], line: str) -> None:
    assert problems(config_with(index, **changes)) == [line], name


def test_unknown_sign_in_key_lists_the_sign_in_keys() -> None:
    found = problems(config_with(certificate_arn=CERT, authentication=COGNITO | {"clientSecret": "x"}))
    assert found == [
        "serving.endpoints[0].authentication.clientSecret: unknown key; allowed keys here: type, user_pool_arn, "
        "user_pool_client_id, user_pool_domain, issuer, authorization_endpoint, token_endpoint, user_info_endpoint, "
        "client_secret_name"
    ]


def test_sign_in_annotations_use_the_controllers_field_names() -> None:
    spec = ServingSpec.model_validate(
        EXAMPLE["serving"]["endpoints"][0] | {"certificate_arn": CERT, "authentication": COGNITO}
    )
    assert spec.authentication is not None
    annotations = spec.authentication.annotations()
    # LBC v3.2.2 pkg/ingress/config_types.go AuthIDPConfigCognito: userPoolARN, userPoolClientID, userPoolDomain.
    assert annotations["alb.ingress.kubernetes.io/auth-idp-cognito"] == (
        '{"userPoolARN":"arn:aws:cognito-idp:us-west-2:123456789012:userpool/us-west-2_AbCdEf123",'
        '"userPoolClientID":"4f1c0dmyclientid","userPoolDomain":"my-team"}'
    )


@pytest.mark.parametrize("path", sorted((REPO / "specs" / "serving").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_serving_specs_validate_and_plan(path: Any) -> None:
    config = parse_config(EXAMPLE)
    spec = ServingSpec.model_validate(read_yaml(path, ServingSpec))
    assert config.plan_endpoint(spec).spec == spec
