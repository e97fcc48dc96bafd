"""The serving spec: one endpoint, its model shape, replicas, exposure and backend.

Who may call an endpoint is part of the spec: every EKS endpoint checks an API key (a
Secrets Manager secret); a public one also serves HTTPS only and needs an authentication
layer in front of vLLM (ALB sign-in with Cognito or OIDC) or an explicit list of client
ranges (``allowed_cidrs``), or both. SageMaker endpoints are called through the SageMaker
runtime API, which authenticates every request with IAM (SigV4).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from neuron_platform.compile import spec_rules
from neuron_platform.compile.spec import ModelShape
from neuron_platform.validation import StrictModel

_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$")
_CERTIFICATE = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$")
# A full secret ARN (with the six-character suffix Secrets Manager appends), so the
# endpoint's role can be granted exactly that secret.
_SECRET = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$")
_USER_POOL = re.compile(r"^arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:\d{12}:userpool/[a-z0-9-]+_[A-Za-z0-9]+$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9+]{1,128}$")
_COGNITO_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
_HTTPS_URL = re.compile(r"^https://[A-Za-z0-9.-]+(?::\d+)?(?:/\S*)?$")
# Kubernetes object names (RFC 1123 subdomain).
_K8S_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")
# Each range becomes one inbound rule per listener port on the ALB's security group
# (60 rules per group by default; a public endpoint listens on 80 and 443).
MAX_ALLOWED_CIDRS = 25
SIGV4_NOTE = "SageMaker endpoints are called through the SageMaker runtime API, authenticated by IAM (SigV4)"
COGNITO_FIELDS = ("user_pool_arn", "user_pool_client_id", "user_pool_domain")
OIDC_FIELDS = ("issuer", "authorization_endpoint", "token_endpoint", "user_info_endpoint", "client_secret_name")


class Replicas(StrictModel):
    """How many copies of the model serve, and when to add one."""

    min: int = Field(default=1, ge=1, le=100)
    max: int = Field(default=2, ge=1, le=100)
    target_in_flight: int | None = Field(
        default=None, ge=1, le=1024, description="In-flight requests per replica to scale at; default batch_size."
    )

    @model_validator(mode="after")
    def _order(self) -> Replicas:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Authentication(StrictModel):
    """Sign-in at the load balancer before a request reaches vLLM (the AWS Load Balancer
    Controller's ``auth-type`` and ``auth-idp-cognito``/``auth-idp-oidc`` annotations).

    The ALB authenticates on its HTTPS listener and keeps a session cookie: this suits
    browser clients (a chat front end). Programs call with the API key from an
    ``allowed_cidrs`` range instead.
    """

    type: Literal["cognito", "oidc"]
    user_pool_arn: str | None = Field(default=None, description="cognito: the user pool's ARN.")
    user_pool_client_id: str | None = Field(
        default=None,
        description="cognito: an app client of the pool with a secret, the authorization code grant "
        "and the callback https://<endpoint host>/oauth2/idpresponse.",
    )
    user_pool_domain: str | None = Field(
        default=None, description="cognito: the pool's domain prefix (my-domain) or custom domain name."
    )
    issuer: str | None = Field(default=None, description="oidc: the IdP's issuer URL (https).")
    authorization_endpoint: str | None = Field(default=None, description="oidc: authorization endpoint (https).")
    token_endpoint: str | None = Field(default=None, description="oidc: token endpoint (https).")
    user_info_endpoint: str | None = Field(default=None, description="oidc: user info endpoint (https).")
    client_secret_name: str | None = Field(
        default=None,
        description="oidc: a Kubernetes Secret in the serving namespace with keys clientID and clientSecret "
        "(create it with kubectl; the platform lets the load balancer controller read that one Secret).",
    )

    @field_validator("user_pool_arn")
    @classmethod
    def _user_pool(cls, value: str | None) -> str | None:
        if value is not None and not _USER_POOL.match(value):
            raise ValueError(
                f"got {value!r}; allowed: a Cognito user pool ARN (arn:aws:cognito-idp:REGION:ACCOUNT:userpool/ID)"
            )
        return value

    @field_validator("user_pool_client_id")
    @classmethod
    def _client_id(cls, value: str | None) -> str | None:
        if value is not None and not _CLIENT_ID.match(value):
            raise ValueError(f"got {value!r}; allowed: a Cognito app client id (1-128 letters, digits and '+')")
        return value

    @field_validator("user_pool_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is not None and not _COGNITO_DOMAIN.match(value):
            raise ValueError(
                f"got {value!r}; allowed: the domain prefix (my-domain) or a custom domain name, without https://"
            )
        return value

    @field_validator("issuer", "authorization_endpoint", "token_endpoint", "user_info_endpoint")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not _HTTPS_URL.match(value):
            raise ValueError(f"got {value!r}; allowed: an https:// URL")
        return value

    @field_validator("client_secret_name")
    @classmethod
    def _secret_name(cls, value: str | None) -> str | None:
        if value is not None and not _K8S_NAME.match(value):
            raise ValueError(f"got {value!r}; allowed: a Kubernetes Secret name (lowercase letters, digits, '-', '.')")
        return value

    @model_validator(mode="after")
    def _fields_of_type(self) -> Authentication:
        wanted, other = (COGNITO_FIELDS, OIDC_FIELDS) if self.type == "cognito" else (OIDC_FIELDS, COGNITO_FIELDS)
        other_type = "oidc" if self.type == "cognito" else "cognito"
        for name in wanted:
            if getattr(self, name) is None:
                raise ValueError(f"{name}: required with type {self.type}")
        for name in other:
            if getattr(self, name) is not None:
                raise ValueError(f"{name}: only applies to type {other_type}; type is {self.type}")
        return self

    def annotations(self) -> dict[str, str]:
        """The load balancer controller's annotations for this sign-in (its JSON field names)."""
        if self.type == "cognito":
            idp = {
                "userPoolARN": self.user_pool_arn,
                "userPoolClientID": self.user_pool_client_id,
                "userPoolDomain": self.user_pool_domain,
            }
        else:
            idp = {
                "issuer": self.issuer,
                "authorizationEndpoint": self.authorization_endpoint,
                "tokenEndpoint": self.token_endpoint,
                "userInfoEndpoint": self.user_info_endpoint,
                "secretName": self.client_secret_name,
            }
        prefix = "alb.ingress.kubernetes.io"
        return {
            f"{prefix}/auth-type": self.type,
            f"{prefix}/auth-idp-{self.type}": json.dumps(idp, separators=(",", ":")),
            f"{prefix}/auth-on-unauthenticated-request": "authenticate",
        }


class ServingSpec(ModelShape):
    """An endpoint: a :class:`ModelShape` plus how it is served.

    The planner derives the rest (instance type, devices, replicas per node, compile
    spec, container settings, cost) so the pieces always agree.
    """

    name: str = Field(description="Endpoint name: 1-32 lowercase letters, digits and '-'.")
    backend: Literal["eks", "sagemaker"]
    pool: str | None = Field(default=None, description="eks: the inference pool from the config that runs it.")
    replicas: Replicas = Field(default_factory=Replicas)
    exposure: Literal["internal", "public"] = "internal"
    certificate_arn: str | None = Field(
        default=None,
        description="ACM certificate: HTTPS on the load balancer (HTTP redirects to it). Required when public.",
    )
    allowed_cidrs: list[str] | None = Field(
        default=None,
        description="eks: IPv4 ranges that may reach the load balancer; default: the VPC's ranges when internal. "
        "A public endpoint needs these, authentication, or both.",
    )
    authentication: Authentication | None = Field(
        default=None, description="eks: sign-in at the load balancer (Cognito or OIDC); needs certificate_arn."
    )
    api_key_secret_arn: str | None = Field(
        default=None,
        description="eks: a Secrets Manager secret (full ARN) whose SecretString is the API key vLLM requires; "
        "default: a secret the platform creates for the endpoint.",
    )
    tokens_per_second: float | None = Field(
        default=None, gt=0, description="Output tokens/s one replica sustains (for cost per million tokens)."
    )
    neuron_sdk: str | None = Field(
        default=None,
        pattern=r"^\d+\.\d+\.\d+$",
        description="Neuron SDK the artifacts are compiled with; default: the pool's (eks) or the newest "
        "SageMaker image's (sagemaker). Set it to hold the endpoint to its artifacts across SDK moves.",
    )
    compile_image: str | None = Field(
        default=None,
        description="This endpoint's compile image, by digest, as make compile-image prints it: "
        "<account>.dkr.ecr.<region>.amazonaws.com/<project>-neuron@sha256:<digest>. It is part of the cache key "
        "that locates the endpoint's artifacts; unset, the endpoint has none to load.",
    )

    @field_validator("compile_image")
    @classmethod
    def _compile_image(cls, value: str | None) -> str | None:
        return value if value is None else spec_rules.check_image(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"got {value!r}; allowed: 1-32 lowercase letters, digits and '-', starting with a letter "
                "and not ending with '-'"
            )
        return value

    @field_validator("certificate_arn")
    @classmethod
    def _certificate(cls, value: str | None) -> str | None:
        if value is not None and not _CERTIFICATE.match(value):
            raise ValueError(f"got {value!r}; allowed: an ACM certificate ARN")
        return value

    @field_validator("api_key_secret_arn")
    @classmethod
    def _api_key_secret(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET.match(value):
            raise ValueError(
                f"got {value!r}; allowed: the full ARN of a Secrets Manager secret, with the six-character suffix "
                "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf)"
            )
        return value

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("got []; allowed: at least one IPv4 range, or leave the key out")
        if len(value) > MAX_ALLOWED_CIDRS:
            raise ValueError(
                f"got {len(value)} ranges; allowed: at most {MAX_ALLOWED_CIDRS} (each is a rule per listener port on "
                "the load balancer's security group)"
            )
        for cidr in value:
            try:
                network = ipaddress.IPv4Network(cidr, strict=True)
            except ValueError as err:
                raise ValueError(f"got {cidr!r}; allowed: an IPv4 CIDR block such as 203.0.113.0/24 ({err})") from None
            if network.prefixlen == 0:
                raise ValueError(
                    f"got {cidr!r}; allowed: the ranges your clients call from (to admit everyone, leave "
                    "allowed_cidrs out and set authentication)"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"got {value}; each range may appear once")
        return value

    @model_validator(mode="after")
    def _backend_fields(self) -> ServingSpec:
        if self.backend == "eks" and self.pool is None:
            raise ValueError("pool: required with backend eks (an inference pool from the config)")
        if self.backend == "sagemaker":
            if self.pool is not None:
                raise ValueError("pool: only applies to backend eks")
            eks_only = {
                "exposure": self.exposure if self.exposure != "internal" else None,
                "certificate_arn": self.certificate_arn,
                "allowed_cidrs": self.allowed_cidrs,
                "authentication": self.authentication,
                "api_key_secret_arn": self.api_key_secret_arn,
            }
            for name, value in eks_only.items():
                if value is not None:
                    shown = value.type if isinstance(value, Authentication) else value
                    raise ValueError(f"{name}: got {shown!r}; only applies to backend eks ({SIGV4_NOTE})")
        return self

    @model_validator(mode="after")
    def _exposure(self) -> ServingSpec:
        if self.backend != "eks":
            return self
        if self.exposure == "public" and self.certificate_arn is None:
            raise ValueError(
                "certificate_arn: required with exposure public (a public endpoint serves HTTPS only); allowed: an "
                "ACM certificate ARN in the project's region"
            )
        if self.authentication is not None and self.certificate_arn is None:
            raise ValueError(
                f"authentication: got type {self.authentication.type!r} without certificate_arn; the load balancer "
                "signs users in on HTTPS only: set certificate_arn"
            )
        if self.exposure == "public" and self.authentication is None and self.allowed_cidrs is None:
            raise ValueError(
                "exposure: got 'public' with neither authentication nor allowed_cidrs; allowed: public with "
                "authentication (cognito or oidc), allowed_cidrs (the ranges your clients call from), or both; "
                "or exposure internal"
            )
        return self

    @property
    def target_in_flight(self) -> int:
        return self.replicas.target_in_flight or self.batch_size
