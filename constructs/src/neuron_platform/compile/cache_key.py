"""The cache key of a compile spec: same spec and SDK, same key; anything else, another key.

Only fields that change the compiled artifacts count (model and revision, task, target,
shapes, tensor parallelism, dtype, compiler flags in order, SDK version and image).
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


def canonical(spec: dict[str, Any]) -> str:
    model = spec["model"]
    identity = {
        "model": {k: model.get(k) for k in ("hf_id", "revision", "s3_uri")},
        **{k: spec[k] for k in KEY_FIELDS if k != "model"},
    }
    return json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def cache_key(spec: dict[str, Any]) -> str:
    digest = hashlib.sha256(canonical(spec).encode()).hexdigest()[:32]
    name = spec["model"].get("hf_id") or spec["model"]["s3_uri"].rstrip("/").rsplit("/", 1)[-1]
    slug = re.sub(r"[^a-z0-9]+", "-", name.rsplit("/", 1)[-1].lower()).strip("-")[:40]
    label = f"{slug}-{spec['target']}-tp{spec['tensor_parallel_size']}-b{spec['batch_size']}-s{spec['sequence_length']}"
    return f"{label}-{digest}"
