"""The construct library works once built and installed away from this repository.

The package is built as a user would (``pip wheel ./constructs``, and from its sdist) from a
copy of ``constructs/`` and ``runtime_assets/``, so the build leaves nothing in the
checkout; a small CDK app then runs on the installed copy alone, from a directory outside
the repository, with ``aws_cdk`` taken from this virtualenv.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import pkgutil
import shutil
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path

import aws_cdk
import pytest

import neuron_platform
from neuron_platform import assets
from tests.conftest import REPO

RUNTIME_ASSETS = REPO / "runtime_assets"
PACKAGED_PREFIX = "neuron_platform/_runtime_assets/"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".*")


def _builds_offline() -> bool:
    """This virtualenv can build the wheel itself: setuptools with bdist_wheel (built in since
    70.1, else from the ``wheel`` package). Otherwise pip builds in an isolated environment,
    installing setuptools from the package index as ``pip install ./constructs`` does."""
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _pip(*args: str, cwd: Path) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    if args[0] == "wheel" and _builds_offline():
        command.append("--no-build-isolation")
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _source_files(folder: Path) -> dict[str, bytes]:
    """Files under ``folder`` by relative path, without bytecode."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
    }


def _packaged_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {
            name.removeprefix(PACKAGED_PREFIX): archive.read(name)
            for name in archive.namelist()
            if name.startswith(PACKAGED_PREFIX) and not name.endswith("/")
        }


def _shipped_sources() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for folder in assets.SHIPPED:
        out |= {f"{folder}/{name}": data for name, data in _source_files(RUNTIME_ASSETS / folder).items()}
    return out


@dataclass
class Built:
    tree: Path  # the copy of the repository parts the build reads
    wheel: Path
    site: Path  # the wheel installed with pip --target


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("reuse")
    tree = root / "checkout"
    shutil.copytree(REPO / "constructs", tree / "constructs", ignore=_IGNORE)
    shutil.copytree(RUNTIME_ASSETS, tree / "runtime_assets", ignore=_IGNORE)
    _pip("wheel", "--no-deps", "--wheel-dir", str(root / "wheels"), "./constructs", cwd=tree)
    (wheel,) = (root / "wheels").glob("neuron_platform_constructs-*.whl")
    site = root / "site"
    _pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel), cwd=root)
    return Built(tree, wheel, site)


def test_wheel_ships_runtime_assets_byte_identical_to_the_repository(built: Built) -> None:
    packaged = _packaged_files(built.wheel)
    expected = _shipped_sources()
    assert "karpenter_teardown/handler.py" in expected
    assert "serve/check_artifacts.py" in expected
    assert "compile/lambdas/validate.py" in expected
    assert sorted(packaged) == sorted(expected)  # nothing missing, nothing extra (no bytecode)
    drifted = [name for name in expected if packaged[name] != expected[name]]
    assert drifted == []


def test_wheel_built_from_the_sdist_ships_them_too(built: Built, tmp_path: Path) -> None:
    """``python -m build`` makes the wheel from the sdist, where runtime_assets/ is not beside constructs/."""
    script = "import sys, setuptools.build_meta as m; print(m.build_sdist(sys.argv[1]))"
    pytest.importorskip("setuptools")
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "sdist")],
        cwd=built.tree / "constructs",
        check=True,
        capture_output=True,
        text=True,
    )
    sdist = tmp_path / "sdist" / result.stdout.strip().splitlines()[-1]
    _pip("wheel", "--no-deps", "--wheel-dir", str(tmp_path / "wheels"), str(sdist), cwd=tmp_path)
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    assert _packaged_files(wheel) == _shipped_sources()


APP = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_kms as kms

    import neuron_platform
    from neuron_platform.assets import runtime_asset
    from neuron_platform.cluster import KarpenterTeardown
    from neuron_platform.compile.artifact_store import ArtifactStore
    from neuron_platform.compile.compile_pipeline import CompilePipeline

    site = Path(sys.argv[1]).resolve()
    assert Path(neuron_platform.__file__).resolve().is_relative_to(site), neuron_platform.__file__

    app = cdk.App(outdir="cdk.out", context={"aws:cdk:disable-stack-trace": True})
    stack = cdk.Stack(app, "Reuser", env=cdk.Environment(region="us-east-2"))
    key = kms.Key(stack, "Key")
    KarpenterTeardown(stack, "Teardown", cluster_name="reused", log_key=key)
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["us-east-2a", "us-east-2b"], nat_gateways=0)
    CompilePipeline(
        stack, "Compile", project="reused", vpc=vpc, subnets=vpc.isolated_subnets or vpc.private_subnets,
        store=ArtifactStore(stack, "Artifacts"), instance_types=["r7i.4xlarge"], log_key=key,
    )
    app.synth()

    # Every default the constructs use resolves inside the installed copy.
    for relative in ("karpenter_teardown", "compile/lambdas", "serve/check_artifacts.py"):
        assert runtime_asset(relative).is_relative_to(site), runtime_asset(relative)
    """
)


def _asset_dirs(outdir: Path) -> dict[str, list[str]]:
    manifest = json.loads((outdir / "Reuser.assets.json").read_text())
    out = {}
    for asset in manifest["files"].values():
        path = outdir / asset["source"]["path"]
        if path.is_dir():
            out[path.name] = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    return out


def test_installed_package_synthesizes_its_default_handlers(built: Built, tmp_path: Path) -> None:
    workdir = tmp_path / "app"  # outside the repository
    workdir.mkdir()
    (workdir / "app.py").write_text(APP)
    cdk_site = Path(aws_cdk.__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_", "PYTHON")) and k != "VIRTUAL_ENV"}
    env |= {
        # -S below: no site-packages and no .pth files, so the editable install's path to this
        # checkout is not on sys.path; only the installed copy and the CDK's packages are.
        "PYTHONPATH": os.pathsep.join([str(built.site), str(cdk_site)]),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = subprocess.run(
        [sys.executable, "-S", "app.py", str(built.site)], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    dirs = _asset_dirs(workdir / "cdk.out")
    assert ["handler.py"] in dirs.values()  # the teardown Lambda: the handler and nothing else (no bytecode)
    (lambdas,) = [files for files in dirs.values() if "validate.py" in files]
    assert {"validate.py", "verify.py", "cluster_job.py", "cache_key.py"} <= set(lambdas)
    (teardown,) = [name for name, files in dirs.items() if files == ["handler.py"]]
    handler = (workdir / "cdk.out" / teardown / "handler.py").read_bytes()
    assert handler == (RUNTIME_ASSETS / "karpenter_teardown" / "handler.py").read_bytes()


# --- the resolver ---------------------------------------------------------------------


def test_runtime_asset_prefers_the_packaged_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "serve").mkdir()
    (tmp_path / "serve" / "check_artifacts.py").write_text("packaged")
    monkeypatch.setattr(assets, "PACKAGED_ROOT", tmp_path)
    assert assets.runtime_asset("serve/check_artifacts.py") == tmp_path / "serve" / "check_artifacts.py"


def test_runtime_asset_falls_back_to_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "PACKAGED_ROOT", tmp_path / "absent")
    assert assets.runtime_asset("karpenter_teardown") == RUNTIME_ASSETS / "karpenter_teardown"


def test_runtime_asset_refuses_what_is_not_shipped() -> None:
    with pytest.raises(ValueError, match=r"'training/llama_sft' is not shipped.*allowed: paths under compile/lambdas"):
        assets.runtime_asset("training/llama_sft")
    with pytest.raises(ValueError, match="not shipped"):
        assets.runtime_asset("serve/../training")


def test_runtime_asset_names_both_places_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "PACKAGED_ROOT", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"serve/nothing\.py.*absent.*runtime_assets"):
        assets.runtime_asset("serve/nothing.py")


def test_shipped_folders_exist() -> None:
    assert all((RUNTIME_ASSETS / folder).is_dir() for folder in assets.SHIPPED)


# --- the package docstring ------------------------------------------------------------


def test_package_docstring_names_every_module() -> None:
    doc = neuron_platform.__doc__ or ""
    modules = [m.name for m in pkgutil.iter_modules(neuron_platform.__path__) if not m.name.startswith("_")]
    assert "cluster" in modules
    assert [m for m in modules if f"``{m}``" not in doc and f"neuron_platform.{m}``" not in doc] == []


def test_every_public_function_of_capacity_has_a_docstring() -> None:
    tree = ast.parse((Path(neuron_platform.__file__).parent / "capacity.py").read_text())
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    assert "plan_pool" in [f.name for f in functions]
    assert [f.name for f in functions if not ast.get_docstring(f)] == []
