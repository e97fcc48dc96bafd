"""Which EC2 instance types exist: the ``InstanceType`` enum of the EC2 service model that
botocore ships (the model the AWS APIs validate requests against), not a hand-written list.

Plain Python (botocore only, no network, no credentials).
"""

from __future__ import annotations

import difflib
from functools import cache


@cache
def ec2_instance_types() -> frozenset[str]:
    """Every instance type name in botocore's EC2 model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("ec2")
    return frozenset(model.shape_for("InstanceType").enum)


def unknown_instance_type(name: str) -> str | None:
    """None when ``name`` is an EC2 instance type; else why not, with the closest names."""
    known = ec2_instance_types()
    if name in known:
        return None
    close = difflib.get_close_matches(name, sorted(known), n=2, cutoff=0.8)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return f"got {name!r}, which is not an EC2 instance type{hint}"
