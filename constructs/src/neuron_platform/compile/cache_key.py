"""The cache key of a compile spec: same spec, SDK and image, same key; anything else, another key.

Only fields that change the compiled artifacts count (model and revision, task, target,
shapes, tensor parallelism, dtype, compiler flags in order, SDK version and image). The
image counts as its full reference, registry host, repository and digest
(``<account>.dkr.ecr.<region>.amazonaws.com/<project>-neuron@sha256:...``, the only form the
pipeline accepts): a digest names one image's content forever, so the key says exactly
which code wrote the artifacts. Serving derives the same key at synth time from the
reference pinned per endpoint in the configuration (``compile_image``), with no lookup.
Canonical JSON (sorted keys, no whitespace) is hashed with SHA-256; the key is the first
32 hex digits, prefixed with a readable label for humans browsing S3.

Standard library only: the pipeline's Lambda steps carry a copy of this file.
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
# Ends the key of a spec whose compile image is not pinned yet: cache_key never produces it
# (its keys end in 32 hex digits), so nothing can ever be compiled or served under it.
UNPINNED_SUFFIX = "unpinned"


def canonical(spec: dict[str, Any]) -> str:
    model = spec["model"]
    identity = {
        "model": {k: model.get(k) for k in ("hf_id", "revision", "s3_uri")},
        **{k: spec[k] for k in KEY_FIELDS if k != "model"},
    }
    return json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def label(spec: dict[str, Any]) -> str:
    """``<model>-<target>-tp<N>-b<N>-s<N>``: what a human browsing the bucket reads first."""
    name = spec["model"].get("hf_id") or spec["model"]["s3_uri"].rstrip("/").rsplit("/", 1)[-1]
    slug = re.sub(r"[^a-z0-9]+", "-", name.rsplit("/", 1)[-1].lower()).strip("-")[:40]
    return f"{slug}-{spec['target']}-tp{spec['tensor_parallel_size']}-b{spec['batch_size']}-s{spec['sequence_length']}"


def cache_key(spec: dict[str, Any]) -> str:
    digest = hashlib.sha256(canonical(spec).encode()).hexdigest()[:32]
    return f"{label(spec)}-{digest}"


def unpinned_key(spec: dict[str, Any]) -> str:
    """The key of a spec without a pinned compile image: a location no compile ever fills."""
    return f"{label(spec)}-{UNPINNED_SUFFIX}"
