"""The serving spec: one endpoint, its model shape, replicas, exposure and backend."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from neuron_platform.compile.spec import ModelShape
from neuron_platform.validation import StrictModel

_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$")


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
    certificate_arn: str | None = Field(default=None, description="ACM certificate: HTTPS on the load balancer.")
    tokens_per_second: float | None = Field(
        default=None, gt=0, description="Output tokens/s one replica sustains (for cost per million tokens)."
    )
    neuron_sdk: str | None = Field(
        default=None,
        pattern=r"^\d+\.\d+\.\d+$",
        description="Neuron SDK the artifacts are compiled with; default: the pool's (eks) or the newest "
        "SageMaker image's (sagemaker). Set it to hold the endpoint to its artifacts across SDK moves.",
    )

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
        if value is not None and not re.match(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$", value):
            raise ValueError(f"got {value!r}; allowed: an ACM certificate ARN")
        return value

    @model_validator(mode="after")
    def _backend_fields(self) -> ServingSpec:
        if self.backend == "eks" and self.pool is None:
            raise ValueError("pool: required with backend eks (an inference pool from the config)")
        if self.backend == "sagemaker" and self.pool is not None:
            raise ValueError("pool: only applies to backend eks")
        return self

    @property
    def target_in_flight(self) -> int:
        return self.replicas.target_in_flight or self.batch_size
