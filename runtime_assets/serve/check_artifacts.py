"""Refuse to serve artifacts that another Neuron SDK line compiled: ``check_artifacts.py DIR``.

Runs in the serving container before vLLM starts (the EKS Deployment's command), with
Python's standard library only. Compiled Neuron artifacts load only under the compiler
and runtime line that produced them; a mismatch otherwise shows up as a load failure, or
as vLLM recompiling for a quarter of an hour. This reads ``DIR/manifest.json`` (written by
the compile job) and compares it with what this pod serves:

- ``NEURON_PLATFORM_SDK``: the Neuron SDK release of this image (the pool's);
- ``NEURON_PLATFORM_ENGINE``: the serving engine (vllm-nxdi, vllm-neuron);
- ``NEURON_PLATFORM_NEURONX_CC``: the compiler that SDK ships; and the compiler actually
  installed in this image (``neuronx-cc``), when it is installed.

Prints one line and exits 0 when they agree, 1 (with what to do) when they do not, 2 when
the manifest is missing or unreadable.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def installed_compiler() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("neuronx-cc").split("+")[0]
    except metadata.PackageNotFoundError:
        return None


def problems(manifest: Mapping[str, Any], env: Mapping[str, str], compiler: str | None) -> list[str]:
    """What differs between the artifacts' record and this pod (empty: serve them)."""
    neuron = manifest.get("neuron") or {}
    found: list[str] = []
    checks = (
        ("Neuron SDK", neuron.get("sdk"), env.get("NEURON_PLATFORM_SDK")),
        ("engine", neuron.get("engine"), env.get("NEURON_PLATFORM_ENGINE")),
        ("neuronx-cc (SDK)", neuron.get("neuronx_cc"), env.get("NEURON_PLATFORM_NEURONX_CC")),
        ("neuronx-cc (this image)", neuron.get("neuronx_cc"), compiler),
    )
    for name, compiled, serving in checks:
        if serving and compiled != serving:
            found.append(f"{name}: compiled with {compiled or 'unrecorded'}, serving with {serving}")
    return found


def main(argv: list[str], env: Mapping[str, str], compiler: Callable[[], str | None] = installed_compiler) -> int:
    if len(argv) != 2:
        print("usage: check_artifacts.py ARTIFACTS_DIR", file=sys.stderr)
        return 2
    path = Path(argv[1]) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        print(f"artifacts: cannot read {path}: {err}", file=sys.stderr)
        return 2
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
        f"{neuron.get('sdk')} (neuronx-cc {neuron.get('neuronx_cc')})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv, os.environ))
