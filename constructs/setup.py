"""Build hook: ship the runtime code the constructs deploy by default inside the package.

The metadata is in pyproject.toml. runtime_assets/ at the top of the repository stays the
single source of that code (it runs in AWS and is tested there); every build copies the
folders listed in ``neuron_platform.assets.SHIPPED`` into
``neuron_platform/_runtime_assets`` of the wheel, and into the sdist (as ``runtime_assets/``
beside this file) so a wheel built from the sdist has them too. Editable installs copy
nothing: they read the checkout.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
PACKAGED = Path("neuron_platform") / "_runtime_assets"


def _assets_module() -> ModuleType:
    """neuron_platform/assets.py on its own (standard library only), without importing the package."""
    spec = importlib.util.spec_from_file_location("_neuron_platform_assets", HERE / "src/neuron_platform/assets.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _source() -> Path:
    """runtime_assets/: inside an unpacked sdist, or beside constructs/ in a checkout."""
    for candidate in (HERE / "runtime_assets", HERE.parent / "runtime_assets"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"runtime_assets/ not found beside {HERE} or in its parent: build from a checkout of the "
        "repository (pip install ./constructs) or from an sdist made by this setup.py"
    )


def copy_runtime_assets(destination: Path) -> None:
    """Copy the shipped folders of runtime_assets/ to ``destination`` (replacing what is there)."""
    assets = _assets_module()
    source = _source()
    shutil.rmtree(destination, ignore_errors=True)
    for folder in assets.SHIPPED:
        if not (source / folder).is_dir():
            raise FileNotFoundError(f"{source / folder} is listed in neuron_platform.assets.SHIPPED but missing")
        shutil.copytree(source / folder, destination / folder, ignore=shutil.ignore_patterns(*assets.IGNORED))


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if not getattr(self, "editable_mode", False):
            copy_runtime_assets(Path(self.build_lib) / PACKAGED)


class Sdist(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        copy_runtime_assets(Path(base_dir) / "runtime_assets")


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
