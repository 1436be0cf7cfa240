import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CELEBA = REPO.parent / "shared" / "data" / "celeba"
BIN = Path(sys.executable).parent


@pytest.fixture
def repo_env():
    """Environment for subprocesses: the venv's bin first on PATH (rules call `mmjsd` by name)."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def workdir(tmp_path):
    """A scratch copy of the workflow files (Snakefile, config, workflow/, profiles/) to run in."""
    for name in ("Snakefile", "config.yaml", "dvc.yaml", "environment.yml", "requirements.txt"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, tmp_path / name)
    for name in ("workflow", "profiles"):
        shutil.copytree(REPO / name, tmp_path / name)
    (tmp_path / "src").symlink_to(REPO / "src")
    return tmp_path


@pytest.fixture(autouse=True)
def pipeline_holdout(monkeypatch):
    """Every test starts as the pipeline (MMJSD_HOLDOUT unset): importing a selection tool turns
    selection on for its process; tests of selection runs set it themselves."""
    monkeypatch.delenv("MMJSD_HOLDOUT", raising=False)
