"""Where the runtime code the constructs deploy by default is found, installed or not.

That code (Lambda handlers, the serving container's artifact check) lives in
``runtime_assets/`` at the top of the repository, next to its tests; the CDK code never
imports it, it only points assets at it. A built wheel or sdist carries a byte-for-byte
copy of the folders in :data:`SHIPPED` under ``neuron_platform/_runtime_assets``
(``constructs/setup.py`` copies them at build time), so the defaults work from an
installed package; an editable install (``pip install -e ./constructs``) reads the
checkout. This module imports only the standard library: the build loads it too.
"""

from __future__ import annotations

from pathlib import Path

# Folders of runtime_assets/ shipped in the package, relative to runtime_assets/.
SHIPPED: tuple[str, ...] = (
    "compile/lambdas",  # CompilePipeline and ClusterCompile Lambda steps
    "karpenter_teardown",  # KarpenterTeardown's handler
    "serve",  # EksEndpoint's artifact check (and the endpoint smoke client)
)
# Bytecode an interpreter may leave beside the sources; never part of an asset.
IGNORED = ("__pycache__", "*.pyc", "*.pyo")

_HERE = Path(__file__).resolve()
PACKAGED_ROOT = _HERE.parent / "_runtime_assets"
# constructs/src/neuron_platform/assets.py -> the repository root, when this file is in a checkout.
_CHECKOUT = _HERE.parent.parent.parent.parent
CHECKOUT_ROOT = _CHECKOUT / "runtime_assets"


def _in_checkout() -> bool:
    return (_CHECKOUT / "constructs" / "src" / "neuron_platform" / _HERE.name).resolve() == _HERE


def runtime_asset(relative: str) -> Path:
    """The path of ``runtime_assets/<relative>``: the copy shipped in the installed package,
    else the repository checkout this package runs from.

    ``relative`` must lie in one of the :data:`SHIPPED` folders, so a default that works in
    the repository also works from a wheel.

    Example::

        lambda_.Code.from_asset(str(runtime_asset("karpenter_teardown")), exclude=list(IGNORED))
        runtime_asset("serve/check_artifacts.py").read_text()
    """
    parts = Path(relative).parts
    if not any(parts[: len(Path(s).parts)] == Path(s).parts for s in SHIPPED) or ".." in parts:
        raise ValueError(
            f"runtime asset {relative!r} is not shipped with neuron_platform; allowed: paths under "
            f"{', '.join(SHIPPED)} (add the folder to neuron_platform.assets.SHIPPED to ship it)"
        )
    packaged = PACKAGED_ROOT / relative
    if packaged.exists():
        return packaged
    checkout = CHECKOUT_ROOT / relative
    if _in_checkout() and checkout.exists():
        return checkout
    raise FileNotFoundError(
        f"runtime asset {relative!r} not found: neither {packaged} (an installed package) nor "
        f"{checkout} (a repository checkout) exists; reinstall neuron-platform-constructs"
    )
