"""Pool plans for unit tests: one EFA training pool, changed where a test needs it."""

from __future__ import annotations

from neuron_platform.capacity import PoolPlan, plan_pool
from neuron_platform.config import PoolConfig


def training_plan(**overrides: object) -> PoolPlan:
    """An EFA training pool ``trn`` of trn1.32xlarge in us-east-1a, four nodes at most."""
    fields: dict[str, object] = {
        "name": "trn",
        "purpose": "training",
        "instance_types": ["trn1.32xlarge"],
        "efa": True,
        "zone": "us-east-1a",
        "max_nodes": 4,
    }
    fields.update(overrides)
    return plan_pool(PoolConfig.model_validate(fields))
