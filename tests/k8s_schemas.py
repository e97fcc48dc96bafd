"""Schema validation for every Kubernetes object the platform generates.

CRD-based kinds (Karpenter, Kubeflow) are validated with jsonschema against the vendored
CRDs in tests/schemas/; KEDA kinds with the validators the pinned npm package
@kubernetes-models/keda generates from KEDA's CRDs (types, enums and required fields)
plus the TypeScript compiler's excess-property check over the same package's types
(unknown fields); core kinds with
kubernetes-validate at the cluster's version. CEL rules (x-kubernetes-validations) are
not evaluated here; the API server does that.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from neuron_platform import versions

SCHEMAS = Path(__file__).resolve().parent / "schemas"
KEDA_VALIDATOR = Path(__file__).resolve().parent / "keda_validate.mjs"
REPO_ROOT = Path(__file__).resolve().parent.parent
TSC = REPO_ROOT / "node_modules" / ".bin" / "tsc"
KEDA_GROUP = "keda.sh/"


class SchemaError(AssertionError):
    """An object does not match its kind's schema."""


def validate_keda(objects: list[dict[str, Any]]) -> None:
    """Raise :class:`SchemaError` naming each invalid KEDA object.

    Two passes: the package's validators (types, enums, required fields), then the
    TypeScript compiler over the package's types, whose excess-property check rejects
    fields KEDA does not know (the API server would silently drop them).
    """
    result = subprocess.run(
        ["node", str(KEDA_VALIDATOR)], input=json.dumps(objects), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SchemaError(result.stdout.strip() or result.stderr.strip())
    _check_known_fields(objects)


def _check_known_fields(objects: list[dict[str, Any]]) -> None:
    lines = []
    for i, obj in enumerate(objects):
        group, version = obj["apiVersion"].split("/")
        kind = obj["kind"]
        lines.append(f'import type {{ I{kind} as T{i} }} from "@kubernetes-models/keda/{group}/{version}/{kind}";')
        lines.append(f"export const o{i}: T{i} = {json.dumps(obj)};")
    # Inside node_modules so the compiler resolves the package from the repository.
    workdir = Path(tempfile.mkdtemp(dir=_keda_cache()))
    source = workdir / "objects.ts"
    source.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [str(TSC), "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    shutil.rmtree(workdir, ignore_errors=True)
    if result.returncode != 0:
        messages = [line.split(": error ", 1)[-1] for line in result.stdout.splitlines() if ": error " in line]
        raise SchemaError("; ".join(messages) or result.stdout.strip() or result.stderr.strip())


def _keda_cache() -> Path:
    cache = REPO_ROOT / "node_modules" / ".cache" / "keda-check"
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _checked_files() -> dict[str, Path]:
    """CRD files whose sha256 matches their SOURCE.txt entry."""
    out: dict[str, Path] = {}
    for source in SCHEMAS.glob("*/SOURCE.txt"):
        for digest, name in re.findall(r"^([0-9a-f]{64})\s+(\S+\.yaml)$", source.read_text(), re.M):
            path = source.parent / name
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
            if actual != digest:
                raise AssertionError(f"{path} does not match the sha256 in {source}")
            out[name] = path
    return out


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema for every vendored CRD version."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in _checked_files().values():
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            out[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return out


def validate(obj: dict[str, Any]) -> None:
    """Raise if ``obj`` does not match its schema."""
    if obj["apiVersion"].startswith(KEDA_GROUP):
        validate_keda([obj])
        return
    key = (obj["apiVersion"], obj["kind"])
    schema = crd_schemas().get(key)
    if schema is not None:
        jsonschema.validate(obj, _strict(schema))
        return
    kubernetes_validate.validate(obj, f"{versions.KUBERNETES_VERSION}.0", strict=True)


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Forbid unknown fields where the CRD lists properties (the API server prunes them silently)."""
    if not isinstance(schema, dict):
        return schema
    out = {
        k: _strict(v) if isinstance(v, dict) else [_strict(i) for i in v] if isinstance(v, list) else v
        for k, v in schema.items()
    }
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out
