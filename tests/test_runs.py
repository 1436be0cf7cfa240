"""One way to open a run: `load_run` and `mmjsd inspect`, for model.pt, checkpoint.pt and run folders."""

from __future__ import annotations

import json

import pytest
import torch

import model_helpers as h
from mmjsd.cli import main
from mmjsd.core import files
from mmjsd.errors import DataError
from mmjsd.models import save_model
from mmjsd.training.runs import CHECKPOINT_CHECKSUMMED, CHECKPOINT_FORMAT, load_run


def write_checkpoint(path, model) -> None:
    state = {"format": CHECKPOINT_FORMAT, "run": {"seed": 3}, "spec": model.spec,
             "model": {k: v.detach().clone() for k, v in model.state_dict().items()}, "optimizer": {}, "rng": {},
             "position": json.dumps({"epoch": 2, "batch": 5, "step": 17, "curve": []}, sort_keys=True)}
    state["checksum"] = files.content_checksum({k: state[k] for k in CHECKPOINT_CHECKSUMMED})
    files.torch_save(path, state)


def test_a_model_file_a_checkpoint_and_a_folder_open_to_the_same_weights(tmp_path):
    model = h.make_model("mmjsd", "dsprites")
    save_model(tmp_path / "model.pt", model, fingerprint={"seed": 3})
    write_checkpoint(tmp_path / "checkpoint.pt", model)
    finished, paused, folder = load_run(tmp_path / "model.pt"), load_run(tmp_path / "checkpoint.pt"), load_run(tmp_path)
    assert finished.kind == "model" and paused.kind == "checkpoint" and folder.path.name == "model.pt"
    assert paused.position["step"] == 17 and finished.position is None and finished.fingerprint == {"seed": 3}
    for run in (finished, paused):
        assert not run.model.training
        assert all(torch.equal(a, b) for a, b in zip(run.model.state_dict().values(), model.state_dict().values()))


def test_damage_and_foreign_files_are_refused_in_one_line(tmp_path, capsys):
    model = h.make_model("mmpoe", "dsprites")
    write_checkpoint(tmp_path / "checkpoint.pt", model)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    next(iter(state["model"].values())).add_(1.0)                       # damage inside a tensor
    files.torch_save(tmp_path / "checkpoint.pt", state)
    with pytest.raises(DataError, match="checksum"):
        load_run(tmp_path / "checkpoint.pt")
    files.torch_save(tmp_path / "other.pt", {"something": 1})
    assert main(["inspect", str(tmp_path / "other.pt")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(DataError, match="neither model.pt nor checkpoint.pt"):
        load_run(tmp_path / "empty") if (tmp_path / "empty").mkdir() is None else None


def test_inspect_prints_the_spec_and_position(tmp_path, capsys):
    write_checkpoint(tmp_path / "checkpoint.pt", h.make_model("mmjsd", "dsprites"))
    assert main(["inspect", str(tmp_path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["kind"] == "checkpoint" and shown["position"] == {"epoch": 2, "batch": 5, "step": 17}
    assert shown["spec"]["model"] == "mmjsd" and shown["parameters"] > 0


def test_git_commit_is_dirty_for_code_but_not_for_the_pipelines_own_outputs(tmp_path, tmp_path_factory):
    import subprocess

    from mmjsd.artifacts.provenance import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    for name in ("config.yaml", "results/repro/table1.csv", "pipelines/repro/dvc.lock", "dvc.lock"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("a\n")
    git("add", ".")
    git("commit", "-q", "-m", "x")
    clean = git_commit(tmp_path)
    assert len(clean) == 40
    for output in ("results/repro/table1.csv", "pipelines/repro/dvc.lock", "dvc.lock"):
        (tmp_path / output).write_text("rewritten by a run\n")
    (tmp_path / "results" / "repro" / "new.json").write_text("{}")
    assert git_commit(tmp_path) == clean
    assert git_commit(tmp_path / "results") == clean            # asked from a subfolder
    (tmp_path / "config.yaml").write_text("b\n")
    assert git_commit(tmp_path) == clean + "-dirty"
    assert git_commit(tmp_path_factory.mktemp("outside-git")) == "unknown"
