"""The cache key of a compile spec: same spec and SDK, same key; anything else, another key.

Only fields that change the compiled artifacts count (model and revision, task, target,
shapes, tensor parallelism, dtype, compiler flags in order, SDK version and image). The
image counts by repository and tag, not registry host: the same image pulled from another
account or region compiles the same artifacts, and serving derives keys at synth time,
before the deploying account is known.
Canonical JSON (sorted keys, no whitespace) is hashed with SHA-256; the key is the first
32 hex digits, prefixed with a readable label for humans browsing S3.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

KEY_FIELDS = (
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


def image_identity(image: str) -> str:
    """``registry.example.com:5000/team/repo:tag`` -> ``team/repo:tag``."""
    first, _, rest = image.partition("/")
    is_registry = rest and ("." in first or ":" in first or first == "localhost")
    return rest if is_registry else image


def canonical(spec: dict[str, Any]) -> str:
    model = spec["model"]
    identity = {
        "model": {k: model.get(k) for k in ("hf_id", "revision", "s3_uri")},
        **{k: spec[k] for k in KEY_FIELDS if k not in ("model", "image")},
        "image": image_identity(spec["image"]),
    }
    return json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def cache_key(spec: dict[str, Any]) -> str:
    digest = hashlib.sha256(canonical(spec).encode()).hexdigest()[:32]
    name = spec["model"].get("hf_id") or spec["model"]["s3_uri"].rstrip("/").rsplit("/", 1)[-1]
    slug = re.sub(r"[^a-z0-9]+", "-", name.rsplit("/", 1)[-1].lower()).strip("-")[:40]
    label = f"{slug}-{spec['target']}-tp{spec['tensor_parallel_size']}-b{spec['batch_size']}-s{spec['sequence_length']}"
    return f"{label}-{digest}"
