"""Serve only verified artifacts of this pod's own SDK line: ``check_artifacts.py DIR``.

Runs in the serving container before vLLM starts (the EKS Deployment's command), with
Python's standard library only. It reads ``DIR/manifest.json`` (written by the compile job,
published by the pipeline's promote step after it checked every file) and refuses to serve
unless:

- every file the manifest lists is in ``DIR``, inside it, with the listed size and sha256,
  and ``DIR`` holds nothing else: what serving loads is byte for byte what the pipeline
  verified, whatever happened to the bucket or the copy since;
- with ``NEURON_PLATFORM_CACHE_KEY`` set: the manifest is that cache key's (the key the
  endpoint was synthesized with, which names the spec and the compile image by digest);
- the artifacts were compiled by this pod's toolchain: ``NEURON_PLATFORM_SDK`` (the image's
  Neuron SDK release), ``NEURON_PLATFORM_ENGINE`` (vllm-nxdi, vllm-neuron),
  ``NEURON_PLATFORM_NEURONX_CC`` (the compiler that SDK ships), and the compiler actually
  installed in this image (``neuronx-cc``), when it is installed. Compiled Neuron artifacts
  load only under the compiler and runtime line that produced them; a mismatch otherwise
  shows up as a load failure, or as vLLM recompiling for a quarter of an hour.

Prints one line and exits 0 when all hold, 1 (with what to do) when they do not, 2 when the
manifest is missing or unreadable.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 8 * 1024 * 1024
SHOWN = 3  # problems named in the one line; the rest are counted


def installed_compiler() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("neuronx-cc").split("+")[0]
    except metadata.PackageNotFoundError:
        return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _listed_path(entry: Any) -> str | None:
    """The entry's relative path, if it is one that stays inside the directory."""
    path = entry.get("path") if isinstance(entry, dict) else None
    if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path or path == MANIFEST:
        return None
    if any(part in ("", ".", "..") for part in path.split("/")):
        return None
    return path


def integrity_problems(directory: Path, manifest: Mapping[str, Any]) -> list[str]:
    """What differs between ``directory`` and the manifest's file list (empty: identical)."""
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        return ["the manifest lists no files"]
    found: list[str] = []
    listed: set[str] = set()
    root = directory.resolve()
    for entry in files:
        path = _listed_path(entry)
        if path is None:
            found.append(
                f"{entry.get('path') if isinstance(entry, dict) else entry!r}: not a path inside the artifacts"
            )
            continue
        listed.add(path)
        local = (directory / path).resolve()
        if not local.is_relative_to(root) or not local.is_file():
            found.append(f"{path}: missing")
            continue
        size, expected = entry.get("size"), entry.get("sha256")
        if not isinstance(expected, str) or not SHA256.match(expected):
            found.append(f"{path}: the manifest's sha256 {expected!r} is not 64 hex digits")
        elif local.stat().st_size != size:
            found.append(f"{path}: {local.stat().st_size} bytes, the manifest says {size}")
        elif sha256_of(local) != expected:
            found.append(f"{path}: sha256 differs from the manifest's")
    for local in sorted(p for p in directory.rglob("*") if p.is_file() or p.is_symlink()):
        relative = local.relative_to(directory).as_posix()
        if relative != MANIFEST and relative not in listed:
            found.append(f"{relative}: not in the manifest")
    return found


def problems(manifest: Mapping[str, Any], env: Mapping[str, str], compiler: str | None) -> list[str]:
    """What differs between the artifacts' record and this pod (empty: serve them)."""
    neuron = manifest.get("neuron") or {}
    found: list[str] = []
    checks = (
        ("cache key", manifest.get("cache_key"), env.get("NEURON_PLATFORM_CACHE_KEY")),
        ("Neuron SDK", neuron.get("sdk"), env.get("NEURON_PLATFORM_SDK")),
        ("engine", neuron.get("engine"), env.get("NEURON_PLATFORM_ENGINE")),
        ("neuronx-cc (SDK)", neuron.get("neuronx_cc"), env.get("NEURON_PLATFORM_NEURONX_CC")),
        ("neuronx-cc (this image)", neuron.get("neuronx_cc"), compiler),
    )
    for name, compiled, serving in checks:
        if serving and compiled != serving:
            found.append(f"{name}: compiled with {compiled or 'unrecorded'}, serving with {serving}")
    return found


def _summary(found: list[str]) -> str:
    return "; ".join(found[:SHOWN]) + (f" (+{len(found) - SHOWN} more)" if len(found) > SHOWN else "")


def main(argv: list[str], env: Mapping[str, str], compiler: Callable[[], str | None] = installed_compiler) -> int:
    if len(argv) != 2:
        print("usage: check_artifacts.py ARTIFACTS_DIR", file=sys.stderr)
        return 2
    directory = Path(argv[1])
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        print(f"artifacts: cannot read {path}: {err}", file=sys.stderr)
        return 2
    if not isinstance(manifest, dict):
        print(f"artifacts: {path} is not a JSON object", file=sys.stderr)
        return 2
    tampered = integrity_problems(directory, manifest)
    if tampered:
        print(
            f"artifacts: refusing to serve {manifest.get('cache_key')}: the files are not the ones the pipeline "
            f"verified: {_summary(tampered)}. Recompile (python -m neuron_platform compile submit --endpoint NAME) "
            "or restore the promoted versions.",
            file=sys.stderr,
        )
        return 1
    found = problems(manifest, env, compiler())
    if found:
        print(
            f"artifacts: refusing to serve {manifest.get('cache_key')}: {'; '.join(found)}. "
            "Recompile for this endpoint (python -m neuron_platform compile submit --endpoint NAME).",
            file=sys.stderr,
        )
        return 1
    neuron = manifest.get("neuron") or {}
    print(
        f"artifacts: ok: {manifest.get('cache_key')} compiled by {neuron.get('engine')} on Neuron SDK "
        f"{neuron.get('sdk')} (neuronx-cc {neuron.get('neuronx_cc')}); {len(manifest['files'])} files match "
        "their sha256"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv, os.environ))
