"""The package as installed from its wheel: `pip install .` (not editable) gives an `mmjsd` that runs
from any folder, with every file it reads shipped as package data, and pyproject.toml declares
every third-party package that src/mmjsd imports."""

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO

SRC = REPO / "src" / "mmjsd"
# Needed at run time although no module imports them by name: torchvision's CelebA download
# imports gdown (only a torchvision extra), and the pipeline's two engines.
RUNTIME_ONLY = {"gdown", "snakemake", "dvc"}


def third_party_imports() -> dict[str, list[str]]:
    """Top-level modules that src/mmjsd imports (absolute imports, stdlib and mmjsd left out),
    each with the files that import it."""
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "mmjsd":
                    found.setdefault(top, []).append(str(path.relative_to(SRC)))
    return found


def declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(text).name) for text in project["dependencies"]}


def test_pyproject_declares_every_third_party_import():
    imports = third_party_imports()
    assert {"torch", "numpy", "yaml", "jsonschema", "scipy"} <= set(imports)   # the scan sees imports
    providers = metadata.packages_distributions()
    undeclared = {}
    for module, files in imports.items():
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"{module} (imported by {files[0]}) is not installed: no distribution provides it"
        if not dists & declared():
            undeclared[module] = (sorted(dists), files)
    assert undeclared == {}, "add these to [project] dependencies in pyproject.toml"
    assert RUNTIME_ONLY <= declared()


def _clean_env() -> dict[str, str]:
    """This environment minus what would let the checkout's sources in (PYTHONPATH)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(args, cwd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=600, **kwargs)


@pytest.mark.slow
def test_the_wheel_installs_and_runs_outside_the_repository(tmp_path):
    """Build, install and run the wheel, offline, in well under a minute.

    Build: `pip wheel --no-deps --no-build-isolation --no-index` on a copy of pyproject.toml,
    README.md and src/ (setuptools writes build/ and *.egg-info beside the sources, so the
    checkout stays untouched), with this environment's setuptools (pinned in the lock).

    Install: a fresh venv made by this interpreter with `--without-pip` (no download, no copy of
    pip). Its site-packages gets a .pth file naming this environment's site-packages, so torch and
    the other dependencies come from here instead of gigabytes of copies; the venv's own
    site-packages comes first on sys.path, so `import mmjsd` finds the wheel's copy. (A .pth line
    only appends the folder: the .pth files inside it, such as this environment's editable mmjsd,
    are not run.) pip, found through that .pth, installs the wheel `--no-deps --no-index` with the
    venv's interpreter, which puts the `mmjsd` console script into the venv's bin/.

    Run: from an empty folder outside the repository, without PYTHONPATH.
    """
    build = tmp_path / "build"
    build.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, build / name)
    shutil.copytree(REPO / "src", build / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = tmp_path / "dist"
    done = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                 "--quiet", "-w", dist, "."], cwd=build)
    assert done.returncode == 0, done.stderr
    (wheel,) = dist.glob("mmjsd-*.whl")
    print(f"wheel: {wheel.name}, {wheel.stat().st_size} bytes")
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("mmjsd/schemas/config.schema.yaml")
    assert shipped == (SRC / "schemas" / "config.schema.yaml").read_bytes()

    venv = tmp_path / "venv"
    done = _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", wheel], cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([python, "-c", "import mmjsd, mmjsd.config; print(mmjsd.__file__); print(mmjsd.config.SCHEMA)"], cwd=elsewhere)
    assert where.returncode == 0, where.stderr
    module_file, schema = where.stdout.split()
    print(f"mmjsd.__file__ = {module_file}")
    assert Path(module_file).is_relative_to(site) and not Path(module_file).is_relative_to(REPO)
    assert Path(schema).is_file() and Path(schema).is_relative_to(site)

    mmjsd = venv / "bin" / "mmjsd"
    done = _run([mmjsd, "--config", REPO / "config.yaml", "--scale", "ci", "check-config"], cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert "scale: ci" in done.stdout

    done = _run([mmjsd, "--scale", "ci", "check-config"], cwd=elsewhere)   # no config.yaml here
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("mmjsd: error: config file config.yaml not found"), lines[0]
    problem, fix = lines[0].split(" -- fix: ")
    assert "--config FILE" in fix and "config.yaml ships with the repository" in fix
    assert "snakemake" not in lines[0]
    assert not any(elsewhere.iterdir())   # check-config wrote nothing
