"""Load the compile pipeline's runtime modules the way Lambda and the job image do."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tests.conftest import REPO

COMPILE = REPO / "runtime_assets" / "compile"


def load(path: Path, name: str) -> ModuleType:
    # Lambda puts the asset root on sys.path: validate.py imports its sibling cache_key.py.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
