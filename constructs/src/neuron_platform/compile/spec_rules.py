"""The rules of a compile spec, in plain Python: one copy for the CLI and the pipeline.

The CLI's pydantic model (:mod:`neuron_platform.compile.spec`) calls these functions from
its validators, and the pipeline's Validate Lambda calls :func:`spec_problems` on the
execution input; ``CompilePipeline`` copies this file into the Lambda's asset beside the
handlers at synth (like ``cache_key.py``), so the two never drift. Standard library only:
the Lambda runtime has no pydantic and synthesis downloads nothing.

Each ``check_*`` function returns the value or raises :class:`RuleError` (a ``ValueError``,
so pydantic reports it as the field's error) with the bad value and what is allowed.

The compile image rule is the pipeline's integrity anchor: an image of the compile stack's
own ECR repository, referenced by digest (``<account>.dkr.ecr.<region>.amazonaws.com/
<project>-neuron@sha256:<64 hex>``). A digest names one image forever, and the full
reference is part of the cache key, so whoever starts a compile cannot choose the code that
writes another spec's artifacts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

TARGETS = ("inf2", "trn1", "trn2")
TASKS = ("text-generation",)
DTYPES = ("bfloat16", "float16")
INTEGER_BOUNDS: dict[str, tuple[int, int]] = {
    "batch_size": (1, 256),
    "sequence_length": (128, 131072),
    "tensor_parallel_size": (1, 128),
}
# Every key of a spec as the pipeline receives it (the CLI drops its sizing-only "architecture").
SPEC_KEYS = (
    "model",
    "task",
    "target",
    "batch_size",
    "sequence_length",
    "tensor_parallel_size",
    "dtype",
    "compiler_flags",
    "sdk_version",
    "image",
)
MODEL_KEYS = ("hf_id", "revision", "s3_uri")

HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# A commit sha, or a version tag; never a branch (a branch moves, so the key would lie).
REVISION = re.compile(r"^(?:[0-9a-f]{40}|v?\d+(?:\.\d+)*)$")
S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9!_.*'()/=+-]+$")
SDK_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
FLAG = re.compile(r"^--[a-z][a-z0-9-]*(?:=[A-Za-z0-9_.,:/-]+)?$")
# <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>@sha256:<digest>, nothing else.
ECR_IMAGE = re.compile(
    r"^(?P<repository>(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*))"
    r"@sha256:(?P<digest>[0-9a-f]{64})$"
)
IMAGE_ALLOWED = (
    "an image of the compile stack's ECR repository by digest, "
    "<account>.dkr.ecr.<region>.amazonaws.com/<project>-neuron@sha256:<64 hex digits> "
    "(make compile-image prints it)"
)


class RuleError(ValueError):
    """A value the spec may not have (the message names the value and what is allowed)."""


def _type_name(value: object) -> str:
    names = {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer", float: "number"}
    return names.get(type(value), "null" if value is None else type(value).__name__)


def check_hf_id(value: str) -> str:
    if not HF_ID.match(value):
        raise RuleError(f"got {value!r}; allowed: a Hugging Face repository id like org/name")
    return value


def check_s3_uri(value: str) -> str:
    key = value[5:].partition("/")[2] if value.startswith("s3://") else ""
    if not S3_URI.match(value) or any(part in (".", "..") for part in key.split("/")):
        raise RuleError(f"got {value!r}; allowed: s3://<bucket>/<prefix>/ (no '.' or '..' path segments)")
    return value


def model_problem(hf_id: str | None, revision: str | None, s3_uri: str | None) -> str | None:
    """What is wrong with a model source as a whole (None: nothing)."""
    if (hf_id is None) == (s3_uri is None):
        return "give exactly one of hf_id (with revision) or s3_uri"
    if hf_id is not None and (revision is None or not REVISION.match(revision)):
        return (
            f"revision: got {revision!r}; allowed: a 40-hex commit sha or a version tag "
            "(a branch like main moves, so the cache key would lie)"
        )
    if s3_uri is not None and revision is not None:
        return "revision: only applies to hf_id; version S3 sources by their prefix"
    return None


def check_choice(value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise RuleError(f"got {value!r}; allowed: {', '.join(allowed)}")
    return str(value)


def check_integer(name: str, value: int) -> int:
    low, high = INTEGER_BOUNDS[name]
    if not low <= value <= high:
        raise RuleError(f"got {value!r}; allowed: an integer from {low} to {high}")
    return value


def check_flags(value: Sequence[str]) -> list[str]:
    for flag in value:
        if not FLAG.match(flag):
            raise RuleError(f"got {flag!r}; allowed: flags like --optlevel=2 (letters, digits, -, =, ., :, /)")
    return list(value)


def check_sdk_version(value: str) -> str:
    if not SDK_VERSION.match(value):
        raise RuleError(f"got {value!r}; allowed: a Neuron SDK release like 2.26.1")
    return value


def check_image(value: str, *, repository: str | None = None) -> str:
    """``value`` must be ``<ECR repository>@sha256:<digest>``; with ``repository`` (a repository
    URI), exactly that repository."""
    match = ECR_IMAGE.match(value)
    if match is None:
        raise RuleError(f"got {value!r}; allowed: {IMAGE_ALLOWED}")
    if repository is not None and match["repository"] != repository:
        raise RuleError(f"got {value!r}; allowed: {repository}@sha256:<64 hex digits> (this pipeline's repository)")
    return value


def image_parts(value: str) -> dict[str, str]:
    """account, region, name (repository name), repository (URI) and digest of a checked reference."""
    match = ECR_IMAGE.match(value)
    if match is None:
        raise RuleError(f"got {value!r}; allowed: {IMAGE_ALLOWED}")
    return {k: match[k] for k in ("account", "region", "name", "repository", "digest")}


def compile_image_problems(value: str, *, repository_name: str, region: str | None = None) -> list[str]:
    """A compile image pinned in a project's configuration: the project's repository
    (``<project>-neuron``), in the project's region when ``region`` is given, by digest. The
    account is checked where it is known: by the pipeline (its own repository URI) and by
    ``compile submit`` (the caller's account)."""
    try:
        parts = image_parts(value)
    except RuleError as err:
        return [str(err)]
    problems = []
    if parts["name"] != repository_name:
        problems.append(f"got {value!r}; allowed: an image of repository {repository_name} (the compile stack's)")
    if region is not None and parts["region"] != region:
        problems.append(f"got {value!r}; allowed: an image in {region} (the project's region)")
    return problems


def spec_problems(spec: Any, *, repository: str | None = None) -> list[str]:
    """Every problem of a spec given as plain data, one ``field: problem`` line each: the
    rules the CLI's model applies, for input that did not come through the CLI."""
    if not isinstance(spec, Mapping):
        return [f"spec: got a {_type_name(spec)}; expected a mapping"]
    problems = [f"{k}: unknown key; allowed keys here: {', '.join(SPEC_KEYS)}" for k in spec if k not in SPEC_KEYS]
    problems += [f"{k}: required key is missing" for k in SPEC_KEYS if k not in spec and k != "compiler_flags"]

    def rule(name: str, check: Any, *args: Any, expected: type = str, **kwargs: Any) -> None:
        if name not in spec:
            return
        value = spec[name]
        if not isinstance(value, expected) or isinstance(value, bool):
            problems.append(f"{name}: got {value!r} ({_type_name(value)}); expected {_EXPECTED[expected]}")
            return
        try:
            check(*args, value, **kwargs)
        except RuleError as err:
            problems.append(f"{name}: {err}")

    model = spec.get("model")
    if "model" in spec and not isinstance(model, Mapping):
        problems.append(f"model: got {model!r} ({_type_name(model)}); expected a mapping")
    elif isinstance(model, Mapping):
        extra = [k for k in model if k not in MODEL_KEYS]
        problems += [f"model.{k}: unknown key; allowed keys here: {', '.join(MODEL_KEYS)}" for k in extra]
        fields = {k: model.get(k) for k in MODEL_KEYS}
        typed = True
        for name, value in fields.items():
            if value is not None and not isinstance(value, str):
                problems.append(f"model.{name}: got {value!r} ({_type_name(value)}); expected a string")
                typed = False
        if typed:
            for name, check in (("hf_id", check_hf_id), ("s3_uri", check_s3_uri)):
                value = fields[name]
                if isinstance(value, str):
                    try:
                        check(value)
                    except RuleError as err:
                        problems.append(f"model.{name}: {err}")
            whole = model_problem(fields["hf_id"], fields["revision"], fields["s3_uri"])
            if whole:
                problems.append(f"model: {whole}")
    rule("task", check_choice, expected=str, allowed=TASKS)
    rule("target", check_choice, expected=str, allowed=TARGETS)
    rule("dtype", check_choice, expected=str, allowed=DTYPES)
    for name in INTEGER_BOUNDS:
        rule(name, check_integer, name, expected=int)
    flags = spec.get("compiler_flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        problems.append(f"compiler_flags: got {flags!r}; expected a list of strings")
    else:
        rule("compiler_flags", check_flags, expected=list)
    rule("sdk_version", check_sdk_version)
    rule("image", check_image, repository=repository)
    return problems


_EXPECTED: dict[type, str] = {str: "a string", int: "an integer", list: "a list"}
