"""The selection protocol: settings are chosen on `val`, and a selection tool cannot open test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmjsd.core import paths
from mmjsd.data import processed
from mmjsd.errors import DataError
from mmjsd.lab import holdout

REPO = Path(__file__).resolve().parents[1]
SELECTION_TOOLS = [REPO / "benchmarks" / "fidelity.py", *sorted((REPO / "benchmarks" / "diagnostics").glob("*.py")),
                   *sorted((REPO / "benchmarks" / "selection").glob("*.py"))]


def tiny_split(n: int = 6) -> dict:
    return {"images": torch.zeros(n, 1, 64, 64, dtype=torch.uint8), "text": torch.zeros(n, 64, dtype=torch.uint8),
            "alphabet": "*abc", "labels": torch.zeros(n, 5, dtype=torch.int64),
            "label_names": ["shape", "scale", "orientation", "posX", "posY"], "source": "render", "seed": 0,
            "dataset": "dsprites", "notes": ""}


@pytest.fixture
def split_folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv(holdout.ENV, raising=False)
    for name in paths.SPLITS:
        processed.save_split(tmp_path / f"{name}.pt", tiny_split())
    return tmp_path


def test_the_pipeline_reads_test_and_a_selection_run_reads_val(split_folder, monkeypatch):
    assert holdout.splits() == ("test", "test_fit", "test_eval")
    processed.load_split(split_folder / "test.pt")                       # the final evaluation may
    monkeypatch.setenv(holdout.ENV, "val")
    assert holdout.splits() == ("val", "val_fit", "val_eval")
    for name in holdout.splits():
        processed.load_split(split_folder / f"{name}.pt")


@pytest.mark.parametrize("name", ["test", "test_fit", "test_eval"])
def test_a_selection_run_cannot_open_any_test_split(split_folder, monkeypatch, name):
    monkeypatch.setenv(holdout.ENV, "val")
    with pytest.raises(DataError, match="selection run") as exc:
        processed.load_split(split_folder / f"{name}.pt")
    assert "\n" not in str(exc.value) and " -- fix: " in str(exc.value)


def test_an_unknown_holdout_is_refused(monkeypatch):
    monkeypatch.setenv(holdout.ENV, "train")
    with pytest.raises(DataError, match="not a held-out split"):
        holdout.splits()


def test_every_selection_tool_enters_selection_before_it_reads_data():
    """Importing a selection tool (fidelity.py, choose.py, each diagnostic) turns the guard on for
    its process and every command it starts; then the test split cannot be opened at all. One
    child process imports every tool in turn, with the guard off before each."""
    for tool in SELECTION_TOOLS:
        assert "torch.load(" not in tool.read_text(), f"{tool.name} bypasses the checked loaders"
    code = "\n".join([
        "import importlib.util, os, sys",
        "sys.argv = ['x']",
        f"for path in {[str(t) for t in SELECTION_TOOLS]!r}:",
        f"    os.environ.pop({holdout.ENV!r}, None)",
        "    spec = importlib.util.spec_from_file_location('tool', path)",
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))",
        f"    print(os.path.basename(path), os.environ.get({holdout.ENV!r}))",
    ])
    env = {k: v for k, v in os.environ.items() if k != holdout.ENV}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = dict(line.split() for line in out.stdout.splitlines() if line.endswith((" val", " None", " test")))
    assert seen == {tool.name: "val" for tool in SELECTION_TOOLS}, out.stdout
