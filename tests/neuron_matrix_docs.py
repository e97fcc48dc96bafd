"""The Neuron matrix block of docs/neuron-stack.md, as `make neuron-matrix` writes it."""

from __future__ import annotations

from neuron_platform.config import load_config
from neuron_platform.neuron_matrix import with_matrix
from tests.conftest import ALL_CONFIGS, REPO, config_id

DOC = REPO / "docs" / "neuron-stack.md"


def current() -> str:
    return with_matrix(DOC.read_text(), {config_id(p): load_config(p) for p in ALL_CONFIGS})
