"""Which EC2 instance types exist: the ``InstanceType`` enum of the EC2 service model that
botocore ships (the model the AWS APIs validate requests against), not a hand-written list.

Plain Python (botocore only, no network, no credentials).
"""

from __future__ import annotations

import difflib
import gzip
import importlib.util
import json
import re
from functools import cache
from pathlib import Path

# The shape in botocore's EC2 model file: {"InstanceType": {"type": "string", "enum": [...]}}.
_INSTANCE_TYPE_SHAPE = re.compile(r'"InstanceType":\s*\{\s*"type":\s*"string",\s*"enum":\s*(\[[^\]]*\])')


@cache
def ec2_instance_types() -> frozenset[str]:
    """Every instance type name in botocore's EC2 model.

    Read from the model file botocore ships (its newest EC2 API version, the one botocore's
    loader picks) rather than through ``botocore.session``: every synth validates the
    config, and importing the session and parsing the whole multi-megabyte model costs about
    a quarter of a second of it. A test keeps this equal to the session's answer.
    """
    spec = importlib.util.find_spec("botocore")
    if spec is None or spec.origin is None:
        raise RuntimeError("botocore is not installed (it is in requirements.txt)")
    data = Path(spec.origin).parent / "data" / "ec2"
    version = max(p.name for p in data.iterdir() if (p / "service-2.json.gz").is_file())
    text = gzip.decompress((data / version / "service-2.json.gz").read_bytes()).decode()
    found = _INSTANCE_TYPE_SHAPE.search(text)
    if found is None:
        raise RuntimeError(f"no InstanceType enum in botocore's EC2 model {version}")
    return frozenset(json.loads(found.group(1)))


def unknown_instance_type(name: str) -> str | None:
    """None when ``name`` is an EC2 instance type; else why not, with the closest names."""
    known = ec2_instance_types()
    if name in known:
        return None
    close = difflib.get_close_matches(name, sorted(known), n=2, cutoff=0.8)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return f"got {name!r}, which is not an EC2 instance type{hint}"
